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

use serde_json::Value;

mod bounded;
mod parser;

use bounded::{Bounded, Short};
use parser::parse;

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
        let mut sink = Bounded::new(out);
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

#[cfg(test)]
mod tests {
    use super::parser::{kebab, pascal};
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
