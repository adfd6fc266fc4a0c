//! A governed LOW call (`s3.list_buckets`, allowed locally with the policy bundle) against
//! the same call without the interceptor, over the SDK's in-process HTTP client (a fixed
//! response, no network). The governor needs a bundle to decide locally, so a tiny HTTP
//! server on loopback (std only) answers `GET /api/v1/bundle` and accepts audit uploads.
//! Prints the ratio of the medians (target ≤ 1.05×), the same for the calling thread's CPU
//! time (the audit upload runs on the governor's own thread), and where the difference
//! goes. The governed client is built as `governed_client!` builds it (a permanent
//! interceptor); a second one with the one-line `.interceptor(ascend.interceptor())` is
//! timed beside it. `ASCEND_BENCH_ROUNDS=1` also prints every round, with a client whose
//! interceptor bypasses `s3` (the interceptor's own cost without a decision);
//! `ASCEND_BENCH_ONLY=plain|governed|one-line|bypassed` measures one client alone (for
//! `perf`, callgrind);
//! `ASCEND_BENCH_QUIET_UPLOADER=1` turns off the uploader's timer (it still wakes for
//! each full batch of 500 events);
//! `ASCEND_BENCH_CALLS=n` makes rounds of `n` calls instead of 400 and
//! `ASCEND_BENCH_ROUND_COUNT=n` makes `n` rounds instead of 101 (small ones for callgrind);
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

/// How a client is governed.
#[derive(Clone, Copy)]
enum Setup<'a> {
    Plain,
    /// `governed_client!`: the interceptor pushed as a permanent `SharedInterceptor`.
    Governed(&'a Ascend),
    /// The one-line `.interceptor(ascend.interceptor())`.
    OneLine(&'a Ascend),
}

fn client(setup: Setup<'_>) -> aws_sdk_s3::Client {
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
    match setup {
        Setup::Plain => {}
        Setup::Governed(ascend) => {
            builder.push_interceptor(ascend.permanent_interceptor());
        }
        Setup::OneLine(ascend) => builder = builder.interceptor(ascend.interceptor()),
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
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
    let plain = client(Setup::Plain);
    let governed = if std::env::var_os("ASCEND_BENCH_AA").is_some() {
        client(Setup::Plain)
    } else {
        client(Setup::Governed(&ascend))
    };
    let one_line = client(Setup::OneLine(&ascend));
    let bypassed = client(Setup::Governed(&bypassing));
    runtime.block_on(async {
        plain.list_buckets().send().await.unwrap();
        governed.list_buckets().send().await.unwrap();
        one_line.list_buckets().send().await.unwrap();
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
    // machine; alternating cancels drift). Many short rounds, the clients in a rotating
    // order: this machine's speed wanders by several per cent within a second, and a long
    // round pairs a slow stretch with a fast one.
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("ASCEND_BENCH_ROUND_COUNT", 101);
    let per_round = env("ASCEND_BENCH_CALLS", 400);
    let only = std::env::var("ASCEND_BENCH_ONLY").unwrap_or_default();
    let print_rounds = std::env::var_os("ASCEND_BENCH_ROUNDS").is_some();
    // Plain, governed, one-line, and (printed per round only) bypassed.
    let clients: [(&str, &aws_sdk_s3::Client); 4] = [
        ("plain", &plain),
        ("governed", &governed),
        ("one-line", &one_line),
        ("bypassed", &bypassed),
    ];
    let timed = |i: usize| {
        let name = clients[i].0;
        if only.is_empty() {
            i < 3 || print_rounds
        } else {
            only == name
        }
    };
    // Wall-clock and calling-thread CPU nanoseconds per call, per client and round.
    let mut wall: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(rounds)).collect();
    let mut cpu: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..rounds {
        for k in 0..4 {
            let i = (round + k) % 4;
            if !timed(i) {
                continue;
            }
            let client = clients[i].1;
            let (w, c) = runtime.block_on(async {
                let start = std::time::Instant::now();
                let cpu = thread_cpu_ns();
                for _ in 0..per_round {
                    client.list_buckets().send().await.unwrap();
                }
                (
                    start.elapsed().as_nanos() as f64 / per_round as f64,
                    (thread_cpu_ns() - cpu) / per_round as f64,
                )
            });
            wall[i].push(w);
            cpu[i].push(c);
        }
        if print_rounds {
            let at = |v: &Vec<f64>| v.last().map_or(0.0, |x| x / 1e3);
            println!(
                "round: plain {:.1} governed {:.1} one-line {:.1} bypassed {:.1} µs",
                at(&wall[0]),
                at(&wall[1]),
                at(&wall[2]),
                at(&wall[3]),
            );
        }
    }
    let ratio = |times: &Vec<Vec<f64>>, i: usize| {
        if times[0].len() != times[i].len() || times[i].is_empty() {
            return f64::NAN;
        }
        let mut r: Vec<f64> = times[i].iter().zip(&times[0]).map(|(g, p)| g / p).collect();
        median(&mut r)
    };
    let med = |v: &Vec<f64>| {
        if v.is_empty() {
            f64::NAN
        } else {
            median(&mut v.clone()) / 1e3
        }
    };
    println!(
        "list_buckets: plain {:.1} µs, governed {:.1} µs, ratio {:.3}x (median of {rounds} interleaved rounds of {per_round}; target <= 1.05x)",
        med(&wall[0]),
        med(&wall[1]),
        ratio(&wall, 1)
    );
    println!(
        "  with .interceptor(ascend.interceptor()) instead of governed_client!: governed {:.1} µs, ratio {:.3}x",
        med(&wall[2]),
        ratio(&wall, 2)
    );
    if print_rounds {
        println!(
            "  bypassing s3 (the interceptor without a decision): {:.1} µs, ratio {:.3}x",
            med(&wall[3]),
            ratio(&wall, 3)
        );
    }
    // Where the difference goes: the governor's decision alone, and reading parameters.
    let n = 20 * per_round;
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
    println!(
        "calling-thread CPU per call: plain {:.1} µs, governed {:.1} µs, ratio {:.3}x (the audit upload runs on the governor's own thread)",
        med(&cpu[0]),
        med(&cpu[1]),
        ratio(&cpu, 1)
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
