//! A governed LOW call (`s3.list_buckets`, allowed locally with the policy bundle) against
//! the same call without the interceptor, over the SDK's in-process HTTP client (a fixed
//! response, no network). The governor needs a bundle to decide locally, so a tiny HTTP
//! server on loopback (std only) answers `GET /api/v1/bundle` and accepts audit uploads.
//! Prints the ratio of the medians (target ≤ 1.05×), the same for the calling thread's CPU
//! time (the audit upload runs on the governor's own thread), and where the difference
//! goes. `ASCEND_BENCH_ROUNDS=1` also prints every round, with a third client whose
//! interceptor bypasses `s3` (the interceptor's own cost without a decision);
//! `ASCEND_BENCH_ONLY=plain|governed|bypassed` measures one client alone (for `perf`,
//! callgrind; `bypassed` in the governed column);
//! `ASCEND_BENCH_QUIET_UPLOADER=1` turns off the uploader's timer (it still wakes for
//! each full batch of 500 events);
//! `ASCEND_BENCH_CALLS=n` makes rounds of `n` calls instead of 2,000 (for callgrind);
//! `ASCEND_BENCH_AA=1` times a second plain client in the governed column (an A/A run: how
//! far from 1.000× the ratio lands by noise alone).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use ascend_aws::{Ascend, Config};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use criterion::{Criterion, criterion_group, criterion_main};

const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>1</ID><DisplayName>me</DisplayName></Owner><Buckets><Bucket><Name>reports</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"#;

const BUNDLE: &str = r#"{"etag":"\"b-1\"","policies":"","agent":{"agent_id":"bench","blocked":false,"blocked_reason":null},"settings":{"auto_approve_low_risk":true,"auto_approve_medium_risk":false}}"#;

/// Answers every request: the bundle (held for `wait` like the real one when current),
/// `{"accepted": n}` for anything else.
fn fake_platform() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut etag) = (0usize, false);
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        etag |= lower.starts_with("if-none-match:");
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let response = if line.contains("/api/v1/bundle") && etag {
                        std::thread::sleep(Duration::from_secs(20));
                        "HTTP/1.1 304 Not Modified\r\ncontent-length: 0\r\n\r\n".to_string()
                    } else if line.contains("/api/v1/bundle") {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: \"b-1\"\r\ncontent-length: {}\r\n\r\n{BUNDLE}",
                            BUNDLE.len()
                        )
                    } else {
                        let b = r#"{"accepted":1,"duplicates":0,"ok":true}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
                            b.len()
                        )
                    };
                    if stream.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
}

fn client(ascend: Option<&Ascend>) -> aws_sdk_s3::Client {
    let http = infallible_client_fn(|_request| {
        http::Response::builder()
            .status(200)
            .body(SdkBody::from(LIST))
            .unwrap()
    });
    let mut builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .http_client(http);
    if let Some(ascend) = ascend {
        builder = builder.interceptor(ascend.interceptor());
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let queue = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_bench", fake_platform(), "bench");
    config.queue_dir = Some(queue.path().to_path_buf());
    if std::env::var_os("ASCEND_BENCH_QUIET_UPLOADER").is_some() {
        // Fewer upload wake-ups (only full batches of 500 go out before the end).
        config.upload_interval = Duration::from_secs(3600);
        config.memory_queue_limit = 1_000_000;
    }
    let ascend = Ascend::new(config).unwrap();
    assert!(
        runtime.block_on(ascend.ready(Duration::from_secs(10))),
        "no bundle"
    );
    let queue2 = tempfile::tempdir().unwrap();
    let mut config = Config::new("owkai_agent_bench", fake_platform(), "bench");
    config.queue_dir = Some(queue2.path().to_path_buf());
    config.settings.bypass_services = vec!["s3".into()];
    let bypassing = Ascend::new(config).unwrap();
    let bypassed = client(Some(&bypassing));
    let plain = client(None);
    let governed = client(Some(&ascend));
    let aa = std::env::var_os("ASCEND_BENCH_AA").is_some();
    let plain_again = client(None);
    runtime.block_on(async {
        plain.list_buckets().send().await.unwrap();
        governed.list_buckets().send().await.unwrap();
    });
    assert_eq!(ascend.governor().stats().sync_requests, 0);

    let mut group = c.benchmark_group("list_buckets");
    group.bench_function("plain", |b| {
        b.to_async(&runtime)
            .iter(|| async { plain.list_buckets().send().await.unwrap() })
    });
    group.bench_function("governed", |b| {
        b.to_async(&runtime)
            .iter(|| async { governed.list_buckets().send().await.unwrap() })
    });
    group.finish();

    // Interleaved rounds for the ratio (criterion's two runs are minutes apart on a busy
    // machine; alternating cancels drift).
    let rounds = 21;
    let per_round = std::env::var("ASCEND_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let mut ratios = Vec::with_capacity(rounds);
    let (mut plain_ns, mut governed_ns) = (Vec::new(), Vec::new());
    let (mut plain_cpu, mut governed_cpu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let time = |client: &aws_sdk_s3::Client| {
            runtime.block_on(async {
                let start = std::time::Instant::now();
                let cpu = thread_cpu_ns();
                for _ in 0..per_round {
                    client.list_buckets().send().await.unwrap();
                }
                (
                    start.elapsed().as_nanos() as f64 / per_round as f64,
                    (thread_cpu_ns() - cpu) / per_round as f64,
                )
            })
        };
        let only = std::env::var("ASCEND_BENCH_ONLY").unwrap_or_default();
        let (p, pc) = if only.is_empty() || only == "plain" {
            time(&plain)
        } else {
            (1.0, 1.0)
        };
        let (g, gc) = match only.as_str() {
            "" | "governed" if aa => time(&plain_again),
            "" | "governed" => time(&governed),
            // The interceptor's cost without a decision, alone (for callgrind).
            "bypassed" => time(&bypassed),
            _ => (1.0, 1.0),
        };
        if std::env::var_os("ASCEND_BENCH_ROUNDS").is_some() {
            let (b, bc) = time(&bypassed);
            println!(
                "round: plain {:.1} governed {:.1} bypassed {:.1} µs (cpu {:.1} {:.1} {:.1})",
                p / 1e3,
                g / 1e3,
                b / 1e3,
                pc / 1e3,
                gc / 1e3,
                bc / 1e3
            );
        }
        plain_ns.push(p);
        governed_ns.push(g);
        plain_cpu.push(pc);
        governed_cpu.push(gc);
        ratios.push(g / p);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (p, g, r) = (
        median(&mut plain_ns),
        median(&mut governed_ns),
        median(&mut ratios),
    );
    println!(
        "list_buckets: plain {:.1} µs, governed {:.1} µs, ratio {:.3}x (median of {rounds} interleaved rounds of {per_round}; target <= 1.05x)",
        p / 1e3,
        g / 1e3,
        r
    );
    // Where the difference goes: the governor's decision alone, and reading parameters.
    let n = 10 * per_round;
    let start = std::time::Instant::now();
    for _ in 0..n {
        let request = ascend_client::CallRequest {
            service: "s3",
            operation: "ListBuckets",
            params: serde_json::json!({}),
            region: "us-east-1",
        };
        if let ascend_client::Prepared::Done(ruling) = ascend.governor().prepare(request) {
            ascend
                .governor()
                .finish(ruling, ascend_client::CallOutcome::succeeded());
        }
    }
    let decide_ns = start.elapsed().as_nanos() as f64 / n as f64;
    #[derive(Debug)]
    #[allow(dead_code)]
    struct ListBucketsInput {
        max_buckets: Option<i32>,
        continuation_token: Option<String>,
        prefix: Option<String>,
        bucket_region: Option<String>,
    }
    let input = ListBucketsInput {
        max_buckets: None,
        continuation_token: None,
        prefix: None,
        bucket_region: None,
    };
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(ascend_aws::params::from_debug(std::hint::black_box(&input)));
    }
    let params_ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "breakdown: Governor::prepare + finish {:.2} µs, parameters from Debug {:.2} µs",
        decide_ns / 1e3,
        params_ns / 1e3
    );
    let (pc, gc) = (median(&mut plain_cpu), median(&mut governed_cpu));
    println!(
        "calling-thread CPU per call: plain {:.1} µs, governed {:.1} µs, ratio {:.3}x (the audit upload runs on the governor's own thread)",
        pc / 1e3,
        gc / 1e3,
        gc / pc
    );
    let flushed = runtime.block_on(ascend.flush(Duration::from_secs(10)));
    let stats = ascend.governor().stats();
    println!(
        "audit: flushed {flushed}, queued {}, uploaded {}, spilled to disk {}, dropped {}",
        stats.events_queued, stats.events_uploaded, stats.events_spilled, stats.events_dropped
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = overhead
}
criterion_main!(benches);
