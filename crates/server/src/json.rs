//! JSON written by hand on the submit's hot paths (its answer, its audit text, canonical
//! JSON's strings): strings escaped exactly as `serde_json` escapes them, objects written
//! field by field into one buffer. Through serde's `Json` a submit's answer cost some 18.9k
//! instructions, most of them escaping constant keys and plain values byte by byte and
//! growing the buffer; here a string is checked once for anything to escape and copied
//! whole when, as nearly always, there is none. Property tests hold every writer here to
//! serde's bytes.

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_str_body(out, s);
    out.push(b'"');
}

/// The body of a JSON string: `s` escaped, without quotes (for a string written in parts).
pub fn push_str_body(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // The rare string with something to escape goes through serde_json, quotes and
        // all, and loses its quotes after. Writing a `str` into a `Vec` cannot fail.
        let start = out.len();
        let _ = serde_json::to_writer(&mut *out, s);
        out.pop();
        out.remove(start);
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Whether `bytes` hold anything `serde_json` escapes: control characters, `"` and `\`.
fn needs_escape(bytes: &[u8]) -> bool {
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    // Fixed-size chunks without an early exit, which the compiler turns into vector
    // compares; a byte at a time cost three instructions a byte.
    let mut chunks = bytes.chunks_exact(16);
    let in_chunks = chunks.by_ref().fold(false, |any, c| {
        any | c.iter().fold(false, |a, &b| a | special(b))
    });
    in_chunks || chunks.remainder().iter().any(|&b| special(b))
}

pub fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// An object written field by field, keys in the order they are written. Keys are
/// `'static` literals that need no escaping (checked in debug builds).
#[derive(Debug)]
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"key":` and leaves the value to the caller.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(key.as_bytes()), "{key} needs escaping");
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, key: &'static str, value: &str) {
        push_str(self.key(key), value);
    }

    /// `null` for `None`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    pub fn int(&mut self, key: &'static str, value: i64) {
        push_int(self.key(key), value);
    }

    pub fn bool(&mut self, key: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    /// A value that is already JSON text.
    pub fn raw(&mut self, key: &'static str, json: &str) {
        self.key(key).extend_from_slice(json.as_bytes());
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Strings with what JSON must escape (quotes, backslashes, control characters),
    /// what it must not (DEL, `/`, non-ASCII) and plain text.
    pub(crate) fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_.:-]{0,24}",
            "[\\x00-\\x7f]{0,12}",
            "[\"\\\\/\u{7f}é€😀\t\n\r\u{1}a]{0,8}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in any_text()) {
            let mut out = Vec::new();
            push_str(&mut out, &s);
            prop_assert_eq!(&out, &serde_json::to_vec(&s).unwrap());
            let mut body = b"x".to_vec();
            push_str_body(&mut body, &s);
            let quoted = serde_json::to_vec(&s).unwrap();
            prop_assert_eq!(&body[1..], &quoted[1..quoted.len() - 1]);
        }

        #[test]
        fn integers_are_written_as_serde_json_writes_them(n in any::<i64>()) {
            let mut out = Vec::new();
            push_int(&mut out, n);
            prop_assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }

    #[test]
    fn objects_are_written_in_order_with_nulls() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.str("a", "x\"y");
        o.opt_str("b", None);
        o.int("c", -3);
        o.bool("d", true);
        o.raw("e", "[1]");
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x\"y","b":null,"c":-3,"d":true,"e":[1]}"#
        );
        let mut empty = Vec::new();
        Object::new(&mut empty).end();
        assert_eq!(empty, b"{}");
    }
}
