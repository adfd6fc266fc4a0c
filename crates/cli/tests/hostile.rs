//! Hostile input against the real binary (docs/reliability.md §4): bodies just over
//! 1 MiB (declared, and chunked without a length), JSON nested 10 000 deep, invalid UTF-8,
//! parameter maps of 100 000 entries, huge header values, wrong content types. Each is
//! sent as raw HTTP/1.1 on a connection of its own (see `exchange`) and must be a 4xx
//! with `{"detail","error_code","timestamp"}` that stores nothing; after each, `/healthz`
//! and a normal submit still work, and the server's peak RSS (VmHWM from
//! /proc/<pid>/status) stays under a bound. Runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Server, low};
use reqwest::StatusCode;
use serde_json::Value;

suite!(hostile_requests_are_4xx_and_the_server_keeps_serving);

/// Peak resident memory the server may reach over the whole suite. A debug build idles
/// near 30 MiB; parsing a 1 MiB body into a `serde_json::Value` costs a few tens of MiB.
const PEAK_RSS_BOUND_KIB: u64 = 256 * 1024;

const MIB: usize = 1024 * 1024;

enum Payload {
    Bytes(Vec<u8>),
    /// Sent as `Transfer-Encoding: chunked`, no `Content-Length`.
    Chunked(Vec<u8>),
}

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    payload: Payload,
    status: StatusCode,
    code: &'static str,
    /// False where hyper answers before the application sees the request (no JSON body).
    app_answers: bool,
}

fn submit(name: &'static str, body: Vec<u8>, status: StatusCode, code: &'static str) -> Case {
    Case {
        name,
        method: reqwest::Method::POST,
        path: "/api/v1/actions/submit",
        headers: vec![("Content-Type", "application/json".into())],
        payload: Payload::Bytes(body),
        status,
        code,
        app_answers: true,
    }
}

/// A submit whose `parameters` holds `inner` (raw JSON text).
fn with_parameters(inner: &str) -> Vec<u8> {
    format!(r#"{{"action_type": "s3.put_object", "agent_id": "hostile", "parameters": {inner}}}"#)
        .into_bytes()
}

/// `{"k0": 0, …}` with `n` distinct short keys (base 62), compact enough to stay under 1 MiB.
fn wide_map(n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::with_capacity(n * 9);
    out.push('{');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let (mut k, mut key) = (i, Vec::new());
        loop {
            key.push(DIGITS[k % 62]);
            k /= 62;
            if k == 0 {
                break;
            }
        }
        out.push('"');
        out.push_str(std::str::from_utf8(&key).unwrap());
        out.push_str("\":0");
    }
    out.push('}');
    out
}

fn cases() -> Vec<Case> {
    use reqwest::Method as M;
    let over = MIB + 1;
    let declared = with_parameters(&format!(r#"{{"Body": "{}"}}"#, "x".repeat(over)));
    let mut chunked = Vec::with_capacity(over);
    chunked.extend_from_slice(br#"{"action_type": "s3.put_object", "parameters": {"Body": ""#);
    chunked.resize(over, b'y');
    let arrays = format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}0{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let wide = wide_map(100_000);
    assert!(wide.len() < MIB, "the wide map must pass the size limit");
    let mut invalid_utf8 = with_parameters(r#"{"Bucket": "AB"}"#);
    let at = invalid_utf8.iter().position(|&b| b == b'A').unwrap();
    invalid_utf8[at] = 0xff;
    invalid_utf8[at + 1] = 0xfe;
    let huge = "k".repeat(64 * 1024);
    let wide_events = format!(
        r#"{{"events": [{{"action_id": "act_wide", "agent_id": "hostile", "decision": "approved", "service": "s3", "operation": "put_object", "parameters": {wide}}}]}}"#
    );
    vec![
        submit(
            "declared body over 1 MiB",
            declared,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        Case {
            payload: Payload::Chunked(chunked),
            ..submit(
                "chunked body over 1 MiB",
                Vec::new(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            )
        },
        Case {
            method: M::PUT,
            path: "/api/v1/policies",
            headers: vec![("Content-Type", "text/plain".into())],
            payload: Payload::Chunked(vec![b' '; over]),
            ..submit(
                "chunked policies over 1 MiB",
                Vec::new(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            )
        },
        submit(
            "arrays nested 10k deep",
            with_parameters(&arrays),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        submit(
            "objects nested 10k deep",
            with_parameters(&objects),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        submit(
            "invalid UTF-8 in a JSON string",
            invalid_utf8,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        submit(
            "lone surrogate escape",
            with_parameters(r#"{"Bucket": "\ud800"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        submit(
            "number out of range",
            br#"{"action_type": "s3.list_buckets", "risk_score": 1e400}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        submit(
            "100k-entry parameter map",
            with_parameters(&wide),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        Case {
            path: "/api/v1/audit/events",
            ..submit(
                "100k-entry parameter map in an audit upload",
                wide_events.into_bytes(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            )
        },
        submit(
            "action_type of 900 KiB",
            format!(
                r#"{{"action_type": "{}", "agent_id": "hostile"}}"#,
                "a".repeat(900 * 1024)
            )
            .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        Case {
            method: M::PUT,
            path: "/api/v1/policies",
            headers: vec![("Content-Type", "text/plain".into())],
            payload: Payload::Bytes(
                b"forbid(principal, action, resource) when { \xff\xfe };".to_vec(),
            ),
            ..submit(
                "invalid UTF-8 policies",
                Vec::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            )
        },
        Case {
            method: M::PUT,
            path: "/api/v1/policies",
            headers: vec![("Content-Type", "text/plain".into())],
            payload: Payload::Bytes(
                format!(
                    "{}permit(principal, action, resource);{}",
                    "(".repeat(10_000),
                    ")".repeat(10_000)
                )
                .into_bytes(),
            ),
            ..submit(
                "policies nested 10k deep",
                Vec::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "POLICY_INVALID",
            )
        },
        Case {
            headers: vec![("Content-Type", "application/x-www-form-urlencoded".into())],
            ..submit(
                "form-encoded submit",
                b"action_type=s3.list_buckets&agent_id=x".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            )
        },
        Case {
            headers: vec![("Content-Type", "multipart/form-data; boundary=zz".into())],
            ..submit(
                "multipart submit",
                b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--zz--\r\n"
                    .to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            )
        },
        Case {
            method: M::PUT,
            path: "/api/v1/policies",
            headers: vec![("Content-Type", "application/json".into())],
            payload: Payload::Bytes(b"permit(principal, action, resource);".to_vec()),
            ..submit(
                "policies declared JSON but not JSON",
                Vec::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            )
        },
        Case {
            headers: vec![("X-API-Key", huge.clone())],
            ..submit(
                "64 KiB X-API-Key",
                br#"{"action_type": "s3.list_buckets"}"#.to_vec(),
                StatusCode::UNAUTHORIZED,
                "AUTH_FAILED",
            )
        },
        Case {
            headers: vec![("X-API-Key", format!("owkai_agent_{huge}"))],
            ..submit(
                "64 KiB owkai_ key",
                br#"{"action_type": "s3.list_buckets"}"#.to_vec(),
                StatusCode::UNAUTHORIZED,
                "AUTH_FAILED",
            )
        },
        Case {
            headers: vec![("Authorization", format!("Bearer {huge}"))],
            ..submit(
                "64 KiB bearer token",
                br#"{"action_type": "s3.list_buckets"}"#.to_vec(),
                StatusCode::UNAUTHORIZED,
                "AUTH_FAILED",
            )
        },
        Case {
            headers: vec![("X-Filler", "f".repeat(MIB))],
            app_answers: false,
            ..submit(
                "1 MiB header (hyper's head limit)",
                br#"{"action_type": "s3.list_buckets"}"#.to_vec(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "",
            )
        },
    ]
}

/// `VmRSS` and `VmHWM` (peak) of a process, KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The request's bytes as a client would send them, on a connection of its own that the
/// server closes after answering (`Connection: close`).
fn raw_request(case: &Case, addr: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        case.method, case.path
    )
    .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    match &case.payload {
        Payload::Bytes(body) => {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        Payload::Chunked(body) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in body.chunks(64 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    out
}

/// Sends `request` and returns the answer's status and body. Not through an HTTP client:
/// the server refuses some of these requests before it has read them whole (a body over
/// the limit, a head over hyper's), answers and closes, and a client still writing then
/// fails on the write (`EPIPE`) without reading the answer that is already there. Here a
/// thread of its own writes, ignoring such errors, while this one reads to the end.
fn exchange(addr: &str, request: Vec<u8>) -> (StatusCode, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a read timeout");
    let mut writer = stream
        .try_clone()
        .expect("a second handle on the connection");
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut answer = Vec::new();
    // Ends where the server closes: at EOF, or a reset once its answer has been read (a
    // reset sent because this side was still writing leaves what arrived before it).
    let _ = stream.read_to_end(&mut answer);
    // Unblocks the writer wherever the server stopped reading without closing.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<StatusCode>().ok())
        .unwrap_or_else(|| {
            // By characters: a byte cut could split one and panic in the message itself.
            let start: String = head.chars().take(200).collect();
            panic!("no status line in the answer: {start:?}")
        });
    (status, body.to_string())
}

async fn totals(s: &Server) -> (i64, i64, usize) {
    let (_, actions) = s.get("/api/v1/actions?limit=1", &s.admin).await;
    let (_, audit) = s.get("/api/v1/audit/verify", &s.admin).await;
    let (_, agents) = s.get("/api/v1/agents", &s.admin).await;
    (
        actions["total"].as_i64().expect("total"),
        audit["events"].as_i64().expect("events"),
        agents["agents"].as_array().expect("agents").len(),
    )
}

async fn hostile_requests_are_4xx_and_the_server_keeps_serving(b: Backend) {
    let s = Server::start(b).await;
    let (_, policies) = s.get("/api/v1/policies", &s.admin).await;
    let mut before = totals(&s).await;
    let (rss_start, _) = memory_kib(s.pid());
    let addr = s.url.trim_start_matches("http://").to_string();
    for case in cases() {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if !case
            .headers
            .iter()
            .any(|(h, _)| h.starts_with("X-API-Key") || *h == "Authorization")
        {
            headers.push(("X-API-Key", s.admin.clone()));
        }
        headers.extend(case.headers.iter().cloned());
        let request = raw_request(&case, &addr, &headers);
        let (status, text) = tokio::task::spawn_blocking({
            let addr = addr.clone();
            move || exchange(&addr, request)
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(status, case.status, "{}: {text}", case.name);
        if case.app_answers {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: error body is not JSON ({e}): {text}", case.name));
            assert_eq!(v["error_code"], case.code, "{}: {v}", case.name);
            assert!(
                v["detail"].as_str().is_some_and(|d| !d.is_empty()) && v["timestamp"].is_string(),
                "{}: {v}",
                case.name
            );
            assert!(
                text.len() < 16 * 1024,
                "{}: the error echoes the input ({} bytes)",
                case.name,
                text.len()
            );
        }
        assert_eq!(
            totals(&s).await,
            before,
            "{}: something was stored",
            case.name
        );
        let (st, _) = s.get("/healthz", "").await;
        assert_eq!(st, StatusCode::OK, "{}: /healthz after it", case.name);
        let v = s.submit(&s.admin, low("after-hostile")).await;
        assert_eq!(
            v["status"], "approved",
            "{}: normal submit after it",
            case.name
        );
        before = totals(&s).await;
        let (rss, peak) = memory_kib(s.pid());
        println!("{:<45} {status}  rss {rss} KiB  peak {peak} KiB", case.name);
        assert!(
            peak < PEAK_RSS_BOUND_KIB,
            "{}: peak RSS {peak} KiB over the bound",
            case.name
        );
    }
    let (st, after) = s.get("/api/v1/policies", &s.admin).await;
    assert_eq!(
        (st, &after),
        (StatusCode::OK, &policies),
        "policies changed"
    );
    let (rss, peak) = memory_kib(s.pid());
    println!(
        "figures: rss at start {rss_start} KiB, at end {rss} KiB, peak {peak} KiB (bound {PEAK_RSS_BOUND_KIB} KiB)"
    );
}
