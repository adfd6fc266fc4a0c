//! The parameters of an SDK call, read from its input's `Debug` text.
//!
//! Every aws-sdk-rust operation input is a generated struct (`DeleteBucketInput { bucket:
//! Some("logs"), expected_bucket_owner: None }`) that the orchestrator holds type-erased;
//! downcasting needs the concrete type of every operation of every service, but `Debug` is
//! always there and the generated implementations already print sensitive members as
//! `"*** Sensitive Data Redacted ***"`. This module turns that text into the JSON botocore
//! would have been given (`{"Bucket": "logs"}`): member names in PascalCase, absent
//! members left out, unit enum variants as their kebab-case wire value (`PublicRead` →
//! `public-read`), so classification escalations and Cedar's resource see the same
//! parameters as the Python front end.
//!
//! Bytes, blobs and streams are described (`"<ByteStream>"`, `"<3 bytes>"`), not copied,
//! as the Python package does; times become RFC 3339 text. The text is bounded: long
//! literals (an in-memory request body) are cut to [`MAX_LITERAL`] characters and the whole
//! text to [`MAX_TEXT`] bytes; members past that cut are not seen. Formatting still walks
//! an in-memory body once (a few milliseconds per megabyte).

use std::cell::Cell;
use std::fmt::{self, Write};

use serde_json::{Map, Value};

/// Longest string literal kept, in bytes.
pub const MAX_LITERAL: usize = 4096;
/// Longest `Debug` text read, in bytes.
pub const MAX_TEXT: usize = 256 * 1024;
/// Largest text buffer kept for the thread's next call.
const KEPT_BUFFER: usize = 16 * 1024;

/// The botocore-style parameters of an input whose `Debug` is `input`.
pub fn from_debug(input: &dyn fmt::Debug) -> Value {
    thread_local! {
        /// The text buffer, kept between calls: one allocation less on every call.
        static TEXT: Cell<String> = const { Cell::new(String::new()) };
    }
    // `try_with`: a call made while the thread's locals are torn down still works.
    let mut out = TEXT.try_with(Cell::take).unwrap_or_default();
    out.clear();
    // Room for a typical input's text: no regrowth on the way.
    out.reserve(512);
    // A text shorter than the longest literal kept is the same with or without cutting:
    // written as it comes, up to that length, and written again through `Bounded` only
    // when it is longer. Most inputs are a few hundred bytes; not looking for quotes in
    // each of their fragments took 0.4% off a governed call (see the crate README).
    let mut short = Short { out };
    let out = if write!(short, "{input:?}").is_ok() {
        short.out
    } else {
        let mut out = short.out;
        out.clear();
        let mut sink = Bounded {
            out,
            ..Bounded::default()
        };
        let _ = write!(sink, "{input:?}");
        sink.out
    };
    let value = from_text(&out);
    // A buffer grown by a large body is not kept.
    if out.capacity() <= KEPT_BUFFER {
        let _ = TEXT.try_with(|cell| cell.set(out));
    }
    value
}

/// A `fmt::Write` that stops (with an error, which ends formatting) before the text grows
/// past [`MAX_LITERAL`] bytes.
struct Short {
    out: String,
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

/// The parameters of a whole `Debug` text, type-erased wrapper included.
fn from_text(text: &str) -> Value {
    // `Input(TypeErasedBox[!Clone]:DeleteBucketInput { … })`: the type-erased wrapper is
    // looked for near the start only (byte compares: cheaper than a substring searcher).
    let bytes = text.as_bytes();
    const WRAPPER: &[u8] = b"TypeErasedBox[";
    let text = match bytes
        .windows(WRAPPER.len())
        .take(16)
        .position(|w| w == WRAPPER)
    {
        Some(start) => match bytes[start..].windows(2).position(|w| w == b"]:") {
            Some(end) => &text[start + end + 2..],
            None => text,
        },
        None => text,
    };
    memo::get_or_parse(text, parse)
}

/// The parameters a `Debug` text (without the type-erased wrapper) describes.
fn parse(text: &str) -> Value {
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

/// The parameters of the texts this thread read last. An agent repeats its calls
/// (`list_buckets()`, `describe_instances()` with the same filters), and parsing costs
/// more than comparing the text with one read before; a different text of the same length
/// differs within its first bytes (the input's type name) or is compared once with a
/// vectorised `memcmp`.
mod memo {
    use std::cell::RefCell;

    use serde_json::Value;

    /// Texts remembered per thread, and the longest one remembered (a long text is
    /// rarely repeated, and costs its size to keep).
    const SLOTS: usize = 32;
    const LONGEST: usize = 1024;

    #[derive(Default)]
    struct Memo {
        slots: Vec<(Box<str>, Value)>,
        /// The slot the next new text replaces, once all are taken.
        next: usize,
    }

    thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
    }

    pub(super) fn get_or_parse(text: &str, parse: impl FnOnce(&str) -> Value) -> Value {
        if text.len() > LONGEST {
            return parse(text);
        }
        MEMO.with(|memo| {
            // Not re-entered: `parse` runs outside the borrow.
            if let Ok(memo) = memo.try_borrow()
                && let Some((_, value)) = memo.slots.iter().find(|(t, _)| **t == *text)
            {
                return value.clone();
            }
            let value = parse(text);
            if let Ok(mut memo) = memo.try_borrow_mut() {
                let entry = (Box::from(text), value.clone());
                if memo.slots.len() < SLOTS {
                    memo.slots.push(entry);
                } else {
                    let next = memo.next;
                    memo.slots[next] = entry;
                    memo.next = (next + 1) % SLOTS;
                }
            }
            value
        })
    }
}

/// A `fmt::Write` that keeps at most [`MAX_LITERAL`] bytes of each string literal and
/// stops (with an error, which ends formatting) after [`MAX_TEXT`] bytes.
#[derive(Default)]
struct Bounded {
    out: String,
    in_string: bool,
    escaped: bool,
    literal_len: usize,
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
fn pascal(field: &str) -> String {
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
fn kebab(variant: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Acl {
        PublicRead,
        Unknown(String),
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct IpRange {
        cidr_ip: Option<String>,
        description: Option<String>,
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Input {
        acl: Option<Acl>,
        bucket: Option<String>,
        expected_bucket_owner: Option<String>,
        max_keys: Option<i32>,
        policy: Option<String>,
        ip_ranges: Option<Vec<IpRange>>,
        tags: Option<std::collections::BTreeMap<String, String>>,
        body: Vec<u8>,
        dry_run: Option<bool>,
        key: Option<String>,
    }

    fn input() -> Input {
        Input {
            acl: Some(Acl::PublicRead),
            bucket: Some("prod-logs".into()),
            expected_bucket_owner: None,
            max_keys: Some(-5),
            policy: Some(r#"{"Statement": [{"Effect": "Allow", "Principal": "*"}]}"#.into()),
            ip_ranges: Some(vec![IpRange {
                cidr_ip: Some("0.0.0.0/0".into()),
                description: None,
            }]),
            tags: Some([("env".to_string(), "prod é\n".to_string())].into()),
            body: vec![0, 1, 2],
            dry_run: Some(false),
            key: Some("a/\"b\"".into()),
        }
    }

    #[test]
    fn remembered_texts_give_what_parsing_gives() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct DeleteBucketInput {
            bucket: Option<String>,
        }
        let of = |name: &str| {
            from_debug(&DeleteBucketInput {
                bucket: Some(name.into()),
            })
        };
        // Same length, different bucket: never the other's parameters.
        for _ in 0..3 {
            assert_eq!(of("logs-a"), json!({"Bucket": "logs-a"}));
            assert_eq!(of("logs-b"), json!({"Bucket": "logs-b"}));
        }
        // More texts than the memo holds: every one still parsed right, old ones too.
        for round in 0..2 {
            for i in 0..100 {
                assert_eq!(
                    of(&format!("b-{i}")),
                    json!({"Bucket": format!("b-{i}")}),
                    "{round}"
                );
            }
        }
        // The first text again, after it was replaced.
        assert_eq!(of("logs-a"), json!({"Bucket": "logs-a"}));
        assert_eq!(from_debug(&input()), parse(&format!("{:?}", input())));
    }

    #[test]
    fn generated_input_debug_becomes_botocore_parameters() {
        let params = from_debug(&input());
        assert_eq!(
            params,
            json!({
                "ACL": "public-read",
                "Bucket": "prod-logs",
                "MaxKeys": -5,
                "Policy": r#"{"Statement": [{"Effect": "Allow", "Principal": "*"}]}"#,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Tags": {"env": "prod é\n"},
                "Body": [0, 1, 2],
                "DryRun": false,
                "Key": "a/\"b\"",
            })
        );
    }

    #[test]
    fn unknown_variants_and_type_erased_prefix() {
        struct Erased(Input);
        impl fmt::Debug for Erased {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Input(TypeErasedBox[!Clone]:")?;
                fmt::Debug::fmt(&self.0, f)?;
                f.write_str(")")
            }
        }
        let mut i = input();
        i.acl = Some(Acl::Unknown("authenticated-read".into()));
        let params = from_debug(&Erased(i));
        assert_eq!(params["ACL"], "authenticated-read");
        assert_eq!(params["Bucket"], "prod-logs");
    }

    #[test]
    fn long_literals_are_cut_and_members_before_a_broken_one_survive() {
        let mut i = input();
        i.policy = Some("x".repeat(MAX_LITERAL * 3));
        let params = from_debug(&i);
        assert_eq!(params["Policy"].as_str().unwrap().len(), MAX_LITERAL);
        assert_eq!(params["Key"], "a/\"b\"");
        for nasty in ["\\", "\"", "é", "\u{1}", "\n"] {
            let mut i = input();
            i.policy = Some(nasty.repeat(MAX_LITERAL));
            let params = from_debug(&i);
            assert!(
                params["Policy"].as_str().unwrap().len() <= MAX_LITERAL,
                "{nasty}"
            );
            assert_eq!(params["Key"], "a/\"b\"", "{nasty}");
        }

        struct Broken;
        impl fmt::Debug for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("In { bucket: Some(\"b\"), weird: <?> , key: Some(\"k\") }")
            }
        }
        assert_eq!(from_debug(&Broken), json!({"Bucket": "b"}));

        struct Paths;
        impl fmt::Debug for Paths {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "In { acl: Some(types::ObjectCannedAcl::PublicRead), noneish: Some(NoneSuch), \
                     key: None, owner: ::std::option::Option::None }",
                )
            }
        }
        assert_eq!(
            from_debug(&Paths),
            json!({"ACL": "public-read", "Noneish": "none-such"})
        );
    }

    #[test]
    fn short_texts_read_as_the_cutting_writer_reads_them() {
        let via_bounded = |input: &dyn fmt::Debug| {
            let mut sink = Bounded::default();
            let _ = write!(sink, "{input:?}");
            from_text(&sink.out)
        };
        // Around the length where the short writer gives up and `Bounded` takes over.
        let (mut short, mut long) = (0, 0);
        for len in (MAX_LITERAL - 400..MAX_LITERAL + 60).step_by(7) {
            let mut i = input();
            // Four bytes of `Debug` text each (`\"é`).
            i.policy = Some("\"é".repeat(len / 4));
            if format!("{i:?}").len() <= MAX_LITERAL {
                short += 1;
            } else {
                long += 1;
            }
            let params = from_debug(&i);
            assert_eq!(params, via_bounded(&i), "{len}");
            assert_eq!(params["Key"], "a/\"b\"", "{len}");
        }
        assert!(short > 5 && long > 5, "{short} {long}");
    }

    #[test]
    fn bodies_are_described_and_times_are_rfc3339() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Put {
            body: aws_smithy_types::byte_stream::ByteStream,
            blob: Option<aws_smithy_types::Blob>,
            expires: Option<aws_smithy_types::DateTime>,
            bucket: Option<String>,
        }
        let put = Put {
            body: aws_smithy_types::byte_stream::ByteStream::from(vec![b'x'; 100_000]),
            blob: Some(aws_smithy_types::Blob::new(vec![1, 2, 3])),
            expires: Some(aws_smithy_types::DateTime::from_secs(1_767_225_600)),
            bucket: Some("after-the-body".into()),
        };
        assert_eq!(
            from_debug(&put),
            json!({
                "Body": "<ByteStream>",
                "Blob": "<3 bytes>",
                "Expires": "2026-01-01T00:00:00Z",
                "Bucket": "after-the-body",
            })
        );
    }

    #[test]
    fn names() {
        assert_eq!(pascal("sse_customer_key"), "SSECustomerKey");
        assert_eq!(pascal("ssekms_key_id"), "SSEKMSKeyId");
        assert_eq!(pascal("function_name"), "FunctionName");
        assert_eq!(pascal("r#type"), "Type");
        assert_eq!(kebab("BucketOwnerFullControl"), "bucket-owner-full-control");
    }
}
