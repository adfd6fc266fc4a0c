//! Action ids: `act_` followed by a ULID (time-sortable, 80 random bits).
//!
//! The random bits come from the operating system, not from a user-space generator: a
//! forked child (multiprocessing) would otherwise repeat its parent's sequence, and the
//! audit upload, idempotent by id, would drop one of two colliding calls. They are read in
//! blocks of [`IDS_PER_READ`] ids per thread (one `getrandom` system call per block, not
//! per call: on the call path a system call costs more than the rest of the id), and a
//! block is thrown away in a forked child before it gives out a single byte: on Unix a
//! `pthread_atfork` handler counts forks, and a block read before the last fork is stale.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Random bytes of one id.
const RANDOM_BYTES: usize = 10;
/// Ids per read of OS randomness.
const IDS_PER_READ: usize = 128;

/// Forks this process (or its ancestors since it was loaded) went through; bumped in the
/// child by the `pthread_atfork` handler.
static FORKS: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn count_fork_in_child() {
    // Async-signal-safe: one atomic add.
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// Whether forks are counted; without that, every id reads the OS directly.
fn forks_counted() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: registers a handler that only does an atomic add; it lives for the
            // whole process (the function is static).
            unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) == 0 }
        }
        #[cfg(not(unix))]
        {
            // No fork() to survive.
            true
        }
    })
}

struct Block {
    bytes: [u8; RANDOM_BYTES * IDS_PER_READ],
    /// Bytes given out.
    used: usize,
    /// `FORKS` when the block was read.
    forks: u64,
}

thread_local! {
    static BLOCK: RefCell<Block> = const {
        RefCell::new(Block {
            bytes: [0; RANDOM_BYTES * IDS_PER_READ],
            used: RANDOM_BYTES * IDS_PER_READ,
            forks: 0,
        })
    };
}

/// Ten bytes of OS randomness never given out before, in this process or any other.
fn random_bits() -> Option<[u8; RANDOM_BYTES]> {
    let mut out = [0u8; RANDOM_BYTES];
    if !forks_counted() {
        return getrandom::fill(&mut out).ok().map(|()| out);
    }
    BLOCK
        .try_with(|block| {
            let mut block = block.borrow_mut();
            let forks = FORKS.load(Ordering::SeqCst);
            if block.forks != forks || block.used + RANDOM_BYTES > block.bytes.len() {
                getrandom::fill(&mut block.bytes).ok()?;
                block.used = 0;
                block.forks = forks;
            }
            let start = block.used;
            out.copy_from_slice(&block.bytes[start..start + RANDOM_BYTES]);
            // Never hand the same bytes out twice, also not after a panic elsewhere.
            block.bytes[start..start + RANDOM_BYTES].fill(0);
            block.used += RANDOM_BYTES;
            Some(out)
        })
        .ok()
        .flatten()
        .or_else(|| getrandom::fill(&mut out).ok().map(|()| out))
}

/// A fresh `act_…` id, made by the client for calls it decides itself. It is the
/// idempotency key of the audit upload and, for submitted calls, the suggested action id.
pub fn new_action_id() -> String {
    action_id_at(SystemTime::now())
}

/// [`new_action_id`] with its time part from `now` (read once by a caller that needs the
/// time anyway).
pub(crate) fn action_id_at(now: SystemTime) -> String {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let Some(random) = random_bits() else {
        // No OS randomness: fall back to the library's generator.
        return format!("act_{}", ulid::Ulid::new());
    };
    let mut bytes = [0u8; 16];
    bytes[6..].copy_from_slice(&random);
    let ulid = ulid::Ulid::from_parts(millis, u128::from_be_bytes(bytes));
    let mut text = [0u8; ulid::ULID_LEN];
    let mut id = String::with_capacity(4 + ulid::ULID_LEN);
    id.push_str("act_");
    id.push_str(ulid.array_to_str(&mut text));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let a = new_action_id();
        let b = new_action_id();
        assert_ne!(a, b);
        assert!(a.starts_with("act_"));
        assert_eq!(a.len(), 4 + 26);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        let many: std::collections::HashSet<String> =
            (0..10 * IDS_PER_READ).map(|_| new_action_id()).collect();
        assert_eq!(many.len(), 10 * IDS_PER_READ);
    }

    #[cfg(unix)]
    #[test]
    fn a_forked_child_does_not_repeat_its_parents_bytes() {
        // Half a block used: the child and the parent would both give out the other half.
        for _ in 0..IDS_PER_READ / 2 {
            new_action_id();
        }
        let mut pipe = [0; 2];
        // SAFETY: a valid two-int array.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: the child only makes ids (no locks held by other threads are taken:
        // the block is this thread's), writes them to the pipe and exits at once.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ids: String = (0..IDS_PER_READ).map(|_| new_action_id() + ",").collect();
            // SAFETY: writes a valid buffer to the pipe, then ends the child.
            unsafe {
                libc::write(pipe[1], ids.as_ptr().cast(), ids.len());
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(pipe[1]) };
        let mine: Vec<String> = (0..IDS_PER_READ).map(|_| new_action_id()).collect();
        let mut theirs = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: reads into a valid buffer.
            let n = unsafe { libc::read(pipe[0], buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                break;
            }
            theirs.extend_from_slice(&buffer[..n as usize]);
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe {
            libc::waitpid(pid, &mut status, 0);
            libc::close(pipe[0]);
        }
        let theirs = String::from_utf8(theirs).unwrap();
        let theirs: Vec<&str> = theirs.split(',').filter(|s| !s.is_empty()).collect();
        assert_eq!(theirs.len(), IDS_PER_READ);
        // The same millisecond is likely: compare the random parts only.
        let random = |id: &str| id[4 + 10..].to_string();
        for id in &theirs {
            assert!(
                !mine.iter().any(|m| random(m) == random(id)),
                "the child repeated {id}"
            );
        }
    }
}
