//! The on-disk part of the audit queue: this process's own append-only JSON Lines file,
//! locked while the process lives, and the files of dead processes of the same owner,
//! adopted and uploaded before anything newer. One line per [`Item`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::AuditEvent;

/// What waits to be uploaded, in memory or on disk (one JSON object per line:
/// `{"kind":"event","event":{…}}` or `{"kind":"result","action_id":…,"body":{…}}`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// The event's JSON text (see [`AuditEvent::write_json`]), serialized once.
    Event {
        event: String,
    },
    Result {
        action_id: String,
        body: Value,
    },
}

/// [`Item`] as read back from a queue file.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredItem {
    Event { event: Value },
    Result { action_id: String, body: Value },
}

impl Item {
    pub(super) fn event(event: &AuditEvent) -> Option<Self> {
        let mut out = Vec::with_capacity(512);
        event.write_json(&mut out);
        // serde_json writes UTF-8.
        String::from_utf8(out)
            .ok()
            .filter(|text| !text.is_empty())
            .map(|event| Self::Event { event })
    }

    /// One line of a queue file, newline included.
    pub(super) fn write_line(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Self::Event { event } => {
                out.extend_from_slice(b"{\"kind\":\"event\",\"event\":");
                out.extend_from_slice(event.as_bytes());
                out.push(b'}');
            }
            Self::Result { action_id, body } => {
                serde_json::to_writer(
                    &mut *out,
                    &json!({"kind": "result", "action_id": action_id, "body": body}),
                )
                .map_err(std::io::Error::other)?;
            }
        }
        out.push(b'\n');
        Ok(())
    }

    pub(super) fn parse_line(line: &str) -> Option<Self> {
        Some(match serde_json::from_str::<StoredItem>(line).ok()? {
            StoredItem::Event { event } => Self::Event {
                event: event.to_string(),
            },
            StoredItem::Result { action_id, body } => Self::Result { action_id, body },
        })
    }
}

/// A short, stable tag of the platform and key, so a process only adopts queue files
/// written for the same organisation.
pub(super) fn owner_tag(base_url: &str, api_key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in base_url.bytes().chain([0u8]).chain(api_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Our own locked file plus the files of dead processes.
#[derive(Debug)]
pub(super) struct Spool {
    dir: PathBuf,
    tag: String,
    own_path: PathBuf,
    own: Option<File>,
    own_lines: u64,
    own_bytes: u64,
    /// The most `own` may hold ([`crate::Config::disk_queue_limit`]).
    limit: u64,
    adopted: Vec<Adopted>,
}

/// A dead process's queue file, held locked until the platform has its items. Nothing
/// writes to it any more, so its lines are counted once, when it is adopted.
#[derive(Debug)]
struct Adopted {
    path: PathBuf,
    _lock: File,
    lines: u64,
}

impl Spool {
    pub(super) fn new(dir: PathBuf, tag: String, limit: u64) -> Self {
        let own_path = dir.join(format!(
            "{tag}-{}-{}.jsonl",
            std::process::id(),
            ulid::Ulid::new()
        ));
        let mut spool = Self {
            dir,
            tag,
            own_path,
            own: None,
            own_lines: 0,
            own_bytes: 0,
            limit,
            adopted: Vec::new(),
        };
        spool.adopt_orphans();
        spool
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn own_path(&self) -> &Path {
        &self.own_path
    }

    pub(super) fn own_bytes(&self) -> u64 {
        self.own_bytes
    }

    /// Nothing waits on disk.
    pub(super) fn is_empty(&self) -> bool {
        self.own_lines == 0 && self.adopted.is_empty()
    }

    /// Files of this owner tag that no live process holds locked.
    fn adopt_orphans(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&format!("{}-", self.tag))
                || !name.ends_with(".jsonl")
                || path == self.own_path
            {
                continue;
            }
            let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                let lines = Self::lines_of(&path);
                self.adopted.push(Adopted {
                    lines,
                    path,
                    _lock: file,
                });
            }
        }
    }

    fn lines_of(path: &Path) -> u64 {
        File::open(path)
            .map(|f| BufReader::new(f).lines().count() as u64)
            .unwrap_or(0)
    }

    /// Lines waiting on disk, ours and adopted.
    pub(super) fn pending_lines(&self) -> u64 {
        self.own_lines + self.adopted.iter().map(|a| a.lines).sum::<u64>()
    }

    /// Appends the items that fit under the size limit, oldest first; how many did.
    pub(super) fn append(&mut self, items: &[Item]) -> std::io::Result<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        if self.own.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&self.own_path)?;
            file.try_lock().map_err(std::io::Error::other)?;
            self.own = Some(file);
        }
        let file = self.own.as_mut().expect("opened above");
        let room = self.limit.saturating_sub(self.own_bytes);
        let mut buffer = Vec::with_capacity(items.len() * 512);
        let mut fitting = 0;
        for item in items {
            let before = buffer.len();
            item.write_line(&mut buffer)?;
            if buffer.len() as u64 > room {
                buffer.truncate(before);
                break;
            }
            fitting += 1;
        }
        if fitting == 0 {
            return Ok(0);
        }
        file.write_all(&buffer)?;
        file.sync_data()?;
        self.own_lines += fitting as u64;
        self.own_bytes += buffer.len() as u64;
        Ok(fitting)
    }

    fn read(path: &Path) -> Vec<Item> {
        let Ok(file) = File::open(path) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| Item::parse_line(&line))
            .collect()
    }

    /// The items of the oldest adopted file, if one is left.
    pub(super) fn oldest_adopted(&self) -> Option<Vec<Item>> {
        self.adopted.first().map(|a| Self::read(&a.path))
    }

    /// Deletes the oldest adopted file: the platform has its items.
    pub(super) fn remove_oldest_adopted(&mut self) {
        if !self.adopted.is_empty() {
            // Unlocked (dropped) before it is deleted.
            let Adopted { path, .. } = self.adopted.remove(0);
            let _ = std::fs::remove_file(path);
        }
    }

    /// The items of our own file, if it holds any.
    pub(super) fn own_items(&self) -> Option<Vec<Item>> {
        (self.own_lines > 0).then(|| Self::read(&self.own_path))
    }

    /// Empties our own file: the platform has its items.
    pub(super) fn clear_own(&mut self) {
        if let Some(file) = &self.own {
            let _ = file.set_len(0);
            let _ = file.sync_data();
        }
        self.own_lines = 0;
        self.own_bytes = 0;
    }

    /// Removes our own file when it holds nothing (on shutdown).
    pub(super) fn close_if_empty(&mut self) {
        if self.own_lines == 0
            && let Some(file) = self.own.take()
        {
            drop(file);
            let _ = std::fs::remove_file(&self.own_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_keeps_what_fits_under_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let item = |i: usize| Item::Event {
            event: format!(r#"{{"action_id":"act_{i:04}"}}"#),
        };
        let mut line = Vec::new();
        item(0).write_line(&mut line).unwrap();
        // Room for three lines and a half.
        let limit = (line.len() * 7 / 2) as u64;
        let mut spool = Spool::new(dir.path().to_path_buf(), owner_tag("http://x", "k"), limit);
        assert_eq!(spool.append(&[item(1), item(2)]).unwrap(), 2);
        assert_eq!(spool.append(&[item(3), item(4), item(5)]).unwrap(), 1);
        assert_eq!(spool.append(&[item(6)]).unwrap(), 0);
        let size = std::fs::metadata(&spool.own_path).unwrap().len();
        assert!(size <= limit, "{size} > {limit}");
        // The oldest are kept, in order, whole.
        assert_eq!(
            Spool::read(&spool.own_path),
            vec![item(1), item(2), item(3)]
        );
        assert_eq!((spool.own_lines, spool.own_bytes), (3, size));
    }

    #[test]
    fn spool_appends_reads_and_adopts_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let tag = owner_tag("http://x", "k");
        let item = Item::Event {
            event: r#"{"action_id":"act_1"}"#.to_string(),
        };
        let result = Item::Result {
            action_id: "act_2".into(),
            body: json!({"status": "succeeded"}),
        };
        {
            let mut spool = Spool::new(dir.path().to_path_buf(), tag.clone(), u64::MAX);
            spool.append(&[item.clone(), result.clone()]).unwrap();
            assert_eq!(spool.own_lines, 2);
            assert_eq!(Spool::read(&spool.own_path), vec![item.clone(), result]);
            let text = std::fs::read_to_string(&spool.own_path).unwrap();
            assert!(
                text.starts_with("{\"kind\":\"event\",\"event\":{\"action_id\":\"act_1\"}}\n"),
                "{text}"
            );
            // While it is held, another spool does not adopt it.
            let other = Spool::new(dir.path().to_path_buf(), tag.clone(), u64::MAX);
            assert!(other.adopted.is_empty());
        }
        // Its owner is gone: the next one adopts it; another owner tag does not.
        let stranger = Spool::new(
            dir.path().to_path_buf(),
            owner_tag("http://y", "k"),
            u64::MAX,
        );
        assert!(stranger.adopted.is_empty());
        let heir = Spool::new(dir.path().to_path_buf(), tag, u64::MAX);
        assert_eq!(heir.adopted.len(), 1);
        assert_eq!(heir.pending_lines(), 2);
    }

    #[test]
    fn uploaded_files_are_emptied_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let tag = owner_tag("http://x", "k");
        let item = Item::Event {
            event: r#"{"action_id":"act_1"}"#.to_string(),
        };
        let orphan_path = {
            let mut orphan = Spool::new(dir.path().to_path_buf(), tag.clone(), u64::MAX);
            orphan.append(std::slice::from_ref(&item)).unwrap();
            orphan.own_path.clone()
        };
        let mut spool = Spool::new(dir.path().to_path_buf(), tag, u64::MAX);
        assert!(spool.own_items().is_none());
        spool.append(std::slice::from_ref(&item)).unwrap();
        assert_eq!(spool.oldest_adopted(), Some(vec![item.clone()]));
        spool.remove_oldest_adopted();
        assert!(spool.oldest_adopted().is_none());
        assert!(!orphan_path.exists());
        assert!(!spool.is_empty());
        assert_eq!(spool.own_items(), Some(vec![item]));
        spool.clear_own();
        assert!(spool.is_empty());
        assert_eq!(std::fs::metadata(&spool.own_path).unwrap().len(), 0);
        spool.close_if_empty();
        assert!(!spool.own_path.exists());
    }

    #[test]
    fn owner_tags_differ_by_key_and_url() {
        assert_ne!(owner_tag("a", "b"), owner_tag("a", "c"));
        assert_ne!(owner_tag("ab", ""), owner_tag("a", "b"));
    }
}
