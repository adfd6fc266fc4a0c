//! A reader for the `Debug` text of a generated input: structs, `Some(…)`, lists, maps,
//! string and number literals, enum variants, into botocore-shaped JSON. It never panics
//! on text it does not know; what it cannot read it leaves out.

use serde_json::{Map, Value};

use super::MAX_LITERAL;

/// The parameters a `Debug` text (without the type-erased wrapper) describes.
pub(super) fn parse(text: &str) -> Value {
    let mut parser = Parser {
        s: text.as_bytes(),
        i: 0,
        partial: None,
    };
    match parser.value() {
        Some(Value::Object(map)) => Value::Object(map),
        _ => parser
            .partial
            .take()
            .map_or_else(|| Value::Object(Map::new()), Value::Object),
    }
}

/// Bytes of a Rust name: ASCII letters, digits and `_` (a table: one load per byte).
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// The members of the outermost struct read before a parse error.
    partial: Option<Map<String, Value>>,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Where the name at the cursor starts and ends (after blanks); takes `::` paths whole
    /// (`aws_sdk_s3::types::Tag`).
    fn ident_span(&mut self) -> (usize, usize) {
        self.ws();
        let s = self.s;
        let start = self.i;
        let mut i = start;
        while let Some(&b) = s.get(i) {
            if NAME_BYTE[usize::from(b)] {
                i += 1;
            } else if b == b':' && s.get(i + 1) == Some(&b':') {
                i += 2;
            } else {
                break;
            }
        }
        self.i = i;
        (start, i)
    }

    /// Borrows from the input, not from the parser: no allocation per name.
    fn ident(&mut self) -> &'a str {
        let (start, end) = self.ident_span();
        let s: &'a [u8] = self.s;
        std::str::from_utf8(&s[start..end]).unwrap_or("")
    }

    /// Whether the text at the cursor is `word`, not followed by more of a name.
    fn at_word(&self, word: &[u8]) -> bool {
        self.s[self.i..].starts_with(word)
            && self
                .s
                .get(self.i + word.len())
                .is_none_or(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'b' if self.s.get(self.i + 1) == Some(&b'"') => {
                // Bytes are described, not copied (as the Python package does).
                self.i += 1;
                let bytes = self.string()?;
                Some(Value::String(if bytes.chars().count() < MAX_LITERAL {
                    format!("<{} bytes>", bytes.chars().count())
                } else {
                    "<bytes>".to_string()
                }))
            }
            b'\'' => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'\'' {
                    self.i += if self.s[self.i] == b'\\' { 2 } else { 1 };
                }
                let text = String::from_utf8_lossy(self.s.get(start..self.i)?).into_owned();
                self.i += 1;
                Some(Value::String(text))
            }
            b'[' => {
                self.i += 1;
                let items = self.items(b']')?;
                Some(Value::Array(items))
            }
            b'{' => {
                self.i += 1;
                self.map()
            }
            b'.' if self.s.get(self.i + 1) == Some(&b'.') => {
                self.i += 2;
                Some(Value::Null)
            }
            c if c == b'-' || c.is_ascii_digit() => Some(self.number()),
            // Most members of most inputs are absent: settle `None` before the general case.
            b'N' if self.at_word(b"None") => {
                self.i += 4;
                Some(Value::Null)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => self.named(),
            _ => None,
        }
    }

    fn number(&mut self) -> Value {
        let start = self.i;
        while self.i < self.s.len() && !b",)]} ".contains(&self.s[self.i]) {
            self.i += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]);
        if let Ok(n) = text.parse::<i64>() {
            Value::from(n)
        } else if let Ok(x) = text.parse::<f64>() {
            Value::from(x)
        } else {
            Value::String(text.into_owned())
        }
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'0' => out.push('\0'),
                        b'x' => {
                            let byte = self
                                .s
                                .get(self.i..self.i + 2)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            if let Some(byte) = byte {
                                self.i += 2;
                                out.push(char::from(byte));
                            }
                        }
                        b'u' => {
                            // `\u{1f600}`; anything else (a literal cut short) is dropped.
                            let window = &self.s[self.i..self.s.len().min(self.i + 10)];
                            if let Some(close) = window.iter().position(|&b| b == b'}') {
                                let hex = std::str::from_utf8(&window[1.min(close)..close]).ok();
                                self.i += close + 1;
                                if let Some(c) = hex
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .and_then(char::from_u32)
                                {
                                    out.push(c);
                                }
                            }
                        }
                        other => out.push(char::from(other)),
                    }
                }
                _ => {
                    // Copy a run of plain bytes at once (keeps UTF-8 intact).
                    let start = self.i - 1;
                    while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') {
                        self.i += 1;
                    }
                    out.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                }
            }
        }
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn map(&mut self) -> Option<Value> {
        let mut map = Map::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            let key = self.value()?;
            if !self.eat(b':') {
                return None;
            }
            let value = self.value()?;
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            map.insert(key, value);
            if !self.eat(b',') {
                return self.eat(b'}').then_some(Value::Object(map));
            }
        }
    }

    fn named(&mut self) -> Option<Value> {
        let path = self.ident();
        // The last segment of a path (byte compares: cheaper than a substring searcher).
        let name = match path.as_bytes().windows(2).rposition(|w| w == b"::") {
            Some(at) => &path[at + 2..],
            None => path,
        };
        match name {
            "None" => return Some(Value::Null),
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ => {}
        }
        match self.peek() {
            Some(b'{') => {
                // `Blob { inner: 0a0b0c }`: the contents as unquoted hex.
                let hex_len = (name == "Blob").then(|| {
                    let rest = &self.s[self.i..];
                    let start = rest
                        .windows(7)
                        .position(|w| w == b"inner: ")
                        .map_or(rest.len(), |p| p + 7);
                    rest[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .count()
                });
                self.i += 1;
                let value = self.fields()?;
                if let Some(hex_len) = hex_len {
                    return Some(Value::String(format!("<{} bytes>", hex_len / 2)));
                }
                Some(match name {
                    // Streams and blobs are described, not copied.
                    "ByteStream" | "SdkBody" => Value::String(format!("<{name}>")),
                    "DateTime" => date_time(&value).unwrap_or(value),
                    _ => value,
                })
            }
            Some(b'(') => {
                self.i += 1;
                let mut items = self.items(b')')?;
                Some(if items.len() == 1 {
                    items.pop().unwrap_or(Value::Null)
                } else {
                    Value::Array(items)
                })
            }
            _ => Some(Value::String(kebab(name))),
        }
    }

    /// `member: value, …}` of a struct; absent (`None`) members are left out.
    fn fields(&mut self) -> Option<Value> {
        let outermost = self.partial.is_none();
        let mut map = Map::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            if self.peek() == Some(b'.') {
                // `..` of a non-exhaustive struct
                self.i += 2;
                continue;
            }
            // The member's name is read as text only when it has a value.
            let (start, end) = self.ident_span();
            if start == end || !self.eat(b':') {
                return self.give_up(outermost, map);
            }
            let Some(value) = self.value() else {
                return self.give_up(outermost, map);
            };
            if !value.is_null() {
                let field = std::str::from_utf8(&self.s[start..end]).unwrap_or("");
                map.insert(pascal(field), value);
            }
            if !self.eat(b',') {
                if self.eat(b'}') {
                    return Some(Value::Object(map));
                }
                return self.give_up(outermost, map);
            }
        }
    }

    fn give_up(&mut self, outermost: bool, map: Map<String, Value>) -> Option<Value> {
        if outermost {
            self.partial = Some(map);
        }
        None
    }
}

/// `expected_bucket_owner` → `ExpectedBucketOwner`, with botocore's acronyms (`acl` →
/// `ACL`, `sse_customer_key` → `SSECustomerKey`).
pub(super) fn pascal(field: &str) -> String {
    let field = field.strip_prefix("r#").unwrap_or(field);
    let mut out = String::with_capacity(field.len());
    for part in field.split('_').filter(|p| !p.is_empty()) {
        match part {
            "acl" | "sse" | "ssekms" | "mfa" | "ttl" => {
                if part == "ssekms" {
                    out.push_str("SSEKMS");
                } else {
                    out.push_str(&part.to_ascii_uppercase());
                }
            }
            _ => {
                let mut chars = part.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            }
        }
    }
    out
}

/// `DateTime { seconds: …, subsecond_nanos: … }` → RFC 3339.
fn date_time(value: &Value) -> Option<Value> {
    let seconds = value.get("Seconds")?.as_i64()?;
    let nanos = value
        .get("SubsecondNanos")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let time = aws_smithy_types::DateTime::from_secs_and_nanos(seconds, nanos as u32);
    time.fmt(aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(Value::String)
}

/// `PublicRead` → `public-read`.
pub(super) fn kebab(variant: &str) -> String {
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
