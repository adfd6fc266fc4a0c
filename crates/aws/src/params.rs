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
//! The text is bounded: long literals (in-memory request bodies) are cut to
//! [`MAX_LITERAL`] characters and the whole text to [`MAX_TEXT`]; members past the cut are
//! not seen.

use std::fmt::{self, Write};

use serde_json::{Map, Value};

/// Longest string literal kept, in characters.
pub const MAX_LITERAL: usize = 4096;
/// Longest `Debug` text read, in bytes.
pub const MAX_TEXT: usize = 256 * 1024;

/// The botocore-style parameters of an input whose `Debug` is `input`.
pub fn from_debug(input: &dyn fmt::Debug) -> Value {
    let mut sink = Bounded::default();
    let _ = write!(sink, "{input:?}");
    let text = sink.out.as_str();
    // `Input(TypeErasedBox[!Clone]:DeleteBucketInput { … })`
    let text = match (text.find("TypeErasedBox["), text.find("]:")) {
        (Some(start), Some(end)) if start < 16 && start < end => &text[end + 2..],
        _ => text,
    };
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

/// A `fmt::Write` that keeps at most [`MAX_LITERAL`] characters of each string literal and
/// stops (with an error, which ends formatting) after [`MAX_TEXT`] bytes.
#[derive(Default)]
struct Bounded {
    out: String,
    in_string: bool,
    escaped: bool,
    literal_len: usize,
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.out.len() >= MAX_TEXT {
                return Err(fmt::Error);
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_string = false;
                    self.out.push(c);
                    continue;
                }
                self.literal_len += 1;
                if self.literal_len <= MAX_LITERAL {
                    self.out.push(c);
                } else if self.literal_len == MAX_LITERAL + 1 && self.out.ends_with('\\') {
                    // Never leave a dangling escape at the cut.
                    self.out.pop();
                }
            } else {
                if c == '"' {
                    self.in_string = true;
                    self.escaped = false;
                    self.literal_len = 0;
                }
                self.out.push(c);
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// The members of the outermost struct read before a parse error.
    partial: Option<Map<String, Value>>,
}

impl Parser<'_> {
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

    fn ident(&mut self) -> &str {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || self.s[self.i] == b'_'
                || (self.s[self.i] == b':' && self.s.get(self.i + 1) == Some(&b':'))
                || (self.i > start && self.s[self.i] == b':' && self.s[self.i - 1] == b':'))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'b' if self.s.get(self.i + 1) == Some(&b'"') => {
                self.i += 1;
                self.string().map(Value::String)
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
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 2)?).ok()?;
                            self.i += 2;
                            out.push(char::from(u8::from_str_radix(hex, 16).ok()?));
                        }
                        b'u' => {
                            let end = self.i + self.s[self.i..].iter().position(|&b| b == b'}')?;
                            let hex = std::str::from_utf8(&self.s[self.i + 1..end]).ok()?;
                            self.i = end + 1;
                            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
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
        let name = self.ident().to_string();
        let name = name.rsplit("::").next().unwrap_or("").to_string();
        match name.as_str() {
            "None" => return Some(Value::Null),
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ => {}
        }
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                self.fields()
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
            _ => Some(Value::String(kebab(&name))),
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
            let field = self.ident().to_string();
            if field.is_empty() || !self.eat(b':') {
                return self.give_up(outermost, map);
            }
            let Some(value) = self.value() else {
                return self.give_up(outermost, map);
            };
            if !value.is_null() {
                map.insert(pascal(&field), value);
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

        struct Broken;
        impl fmt::Debug for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("In { bucket: Some(\"b\"), weird: <?> , key: Some(\"k\") }")
            }
        }
        assert_eq!(from_debug(&Broken), json!({"Bucket": "b"}));
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
