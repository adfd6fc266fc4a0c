//! The two `fmt::Write` sinks an input's `Debug` text is written into: `Short`, which
//! gives up past the longest literal kept, and `Bounded`, which cuts long literals and
//! the whole text (`from_debug` says why there are two).

use std::fmt::{self, Write};

use super::{MAX_LITERAL, MAX_TEXT};

/// A `fmt::Write` that stops (with an error, which ends formatting) before the text grows
/// past [`MAX_LITERAL`] bytes.
pub(super) struct Short {
    pub(super) out: String,
}

impl Write for Short {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len() + s.len() > MAX_LITERAL {
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// A `fmt::Write` that keeps at most [`MAX_LITERAL`] bytes of each string literal and
/// stops (with an error, which ends formatting) after [`MAX_TEXT`] bytes.
#[derive(Default)]
pub(super) struct Bounded {
    pub(super) out: String,
    in_string: bool,
    escaped: bool,
    literal_len: usize,
}

impl Bounded {
    /// Writes after what `out` holds, reusing its allocation.
    pub(super) fn new(out: String) -> Self {
        Self {
            out,
            ..Self::default()
        }
    }
}

impl Write for Bounded {
    fn write_str(&mut self, mut s: &str) -> fmt::Result {
        while !s.is_empty() {
            if self.out.len() >= MAX_TEXT {
                return Err(fmt::Error);
            }
            if !self.in_string {
                // Most fragments are a few bytes (`None`, `: `, a member name): a plain
                // loop finds the quote sooner than `memchr`'s set-up.
                let quote = if s.len() <= 32 {
                    s.bytes().position(|b| b == b'"')
                } else {
                    s.find('"')
                };
                let Some(i) = quote else {
                    self.out.push_str(s);
                    return Ok(());
                };
                self.out.push_str(&s[..=i]);
                self.in_string = true;
                self.escaped = false;
                self.literal_len = 0;
                s = &s[i + 1..];
                continue;
            }
            let bytes = s.as_bytes();
            let mut end = None;
            for (i, &b) in bytes.iter().enumerate() {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    end = Some(i);
                    break;
                }
            }
            let content = &s[..end.unwrap_or(s.len())];
            let room = MAX_LITERAL.saturating_sub(self.literal_len);
            if room > 0 {
                let mut keep = content.len().min(room);
                while !content.is_char_boundary(keep) {
                    keep -= 1;
                }
                self.out.push_str(&content[..keep]);
                if keep < content.len() {
                    // Never leave half an escape at the cut.
                    let tail = self.out.bytes().rev().take_while(|&b| b == b'\\').count();
                    if tail % 2 == 1 {
                        self.out.pop();
                    }
                }
            }
            self.literal_len += content.len();
            match end {
                Some(e) => {
                    self.out.push('"');
                    self.in_string = false;
                    s = &s[e + 1..];
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }
}
