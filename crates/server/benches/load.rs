//! Load benchmark, loopback only, bounded in count and time. Starts the platform
//! in-process on SQLite (its own runtime) and measures, in one run:
//! 1. `POST /api/v1/actions/submit` of a LOW action vs `GET /healthz`: requests/s with
//!    32 and with 256 concurrent clients (medians of 5 interleaved 1 s rounds), and their
//!    ratios; beside each rate the process's CPU time per request and how many cores it
//!    kept busy, and for submits the bytes written to the disk per submit and how many
//!    submits shared a commit. Every submit waits for its commit's fsync; concurrent
//!    submits share one (group commit), so how many are in flight decides how far the
//!    fsync is spread;
//! 2. submit latency (p50/p99) of one client back to back, and at a fixed 1,000
//!    requests/s for 5 s;
//! 3. approve → waiting long-poll answer latency (p50/p95) over 200 rounds.
//!
//! Run: `cargo bench -p ascend-server --bench load` (`ASCEND_BENCH_DIR=/dev/shm` to put the
//! SQLite file on tmpfs; `ASCEND_BENCH_ONLY=submit|healthz` runs only that throughput
//! loop, 256 clients (`ASCEND_BENCH_CLIENTS`) for 10 s (`ASCEND_BENCH_SECS`), to profile
//! it or to compare two builds in alternating short runs;
//! `ASCEND_BENCH_ONLY=latency` skips the throughput loops; `ASCEND_BENCH_SYNCHRONOUS=normal`
//! runs the platform with `--sqlite-synchronous normal`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ascend_server::{ServerConfig, SqliteSync, StoreConfig, serve};
use serde_json::{Value, json};
use tokio::sync::Mutex;

// The allocator the `ascend` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ADMIN: &str = "owkai_admin_benchmarkbenchmarkbenchmark";

fn start_server(dir: &std::path::Path) -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = ServerConfig {
        listen,
        store: StoreConfig {
            data_dir: dir.to_path_buf(),
            database_url: None,
            sqlite_synchronous: synchronous(),
        },
        pending_ttl_secs: 3600,
        rate_limit_per_sec: 0,
        bootstrap_key: Some(ADMIN.into()),
        webhooks: Default::default(),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("server")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(config, std::future::pending())).unwrap();
    });
    listen
}

/// `ASCEND_BENCH_SYNCHRONOUS=normal` runs the platform with `--sqlite-synchronous normal`.
fn synchronous() -> SqliteSync {
    match std::env::var("ASCEND_BENCH_SYNCHRONOUS").as_deref() {
        Ok("normal") => SqliteSync::Normal,
        Ok("full") | Err(_) => SqliteSync::Full,
        Ok(other) => panic!("ASCEND_BENCH_SYNCHRONOUS must be full or normal, not {other}"),
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// CPU time this process (client and server) has used.
fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Bytes this process has had written to a block device (`write_bytes` of
/// `/proc/self/io`; 0 where it cannot be read): the WAL frames and checkpoints a submit
/// costs, a figure that does not move with what else the machine runs.
fn disk_bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What one closed-loop round measured.
struct Round {
    /// Requests/s.
    rate: f64,
    /// The process's CPU time per request (client and server: what decides the rate once
    /// the cores are busy, and what other load on the machine does not change).
    cpu: Duration,
    /// The process's CPU time per second of the round: how many of the cores it kept busy
    /// (2.0 is all of this machine's). Below that, requests were waiting on something other
    /// than a core, such as a commit's sync.
    cores: f64,
}

/// `clients` clients sending back to back for `secs` seconds.
async fn closed_loop(
    make: &impl Fn() -> reqwest::RequestBuilder,
    clients: usize,
    secs: u64,
) -> Round {
    let cpu = cpu_time();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let template = make();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline && done < 1_000_000 {
                let r = template.try_clone().unwrap().send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                let _ = r.bytes().await;
                done += 1;
            }
            done
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let used = cpu_time() - cpu;
    Round {
        rate: total as f64 / elapsed,
        cpu: used / total.max(1) as u32,
        cores: used.as_secs_f64() / elapsed,
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // ASCEND_BENCH_DIR puts the SQLite file elsewhere (e.g. /dev/shm to take the disk's
    // fsync out of the figures).
    let dir = match std::env::var("ASCEND_BENCH_DIR") {
        Ok(base) => tempfile::tempdir_in(base).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    println!(
        "data dir: {}, SQLite synchronous = {}",
        dir.path().display(),
        synchronous().name()
    );
    let addr = start_server(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(format!("http://{addr}")));
}

async fn run(base: String) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let key: Value = client
        .post(format!("{base}/api/v1/keys"))
        .header("X-API-Key", ADMIN)
        .json(&json!({"role": "agent", "name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = key["key"].as_str().unwrap().to_string();
    let submit_body = json!({"service": "s3", "operation": "list_buckets", "parameters": {}, "agent_id": "bench", "region": "us-east-1"});
    let submit = {
        let (c, b, k, body) = (
            client.clone(),
            base.clone(),
            agent.clone(),
            submit_body.clone(),
        );
        move || {
            c.post(format!("{b}/api/v1/actions/submit"))
                .header("X-API-Key", &k)
                .json(&body)
        }
    };
    let health = {
        let (c, b) = (client.clone(), base.clone());
        move || c.get(format!("{b}/healthz"))
    };
    let clients = std::env::var("ASCEND_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let secs = std::env::var("ASCEND_BENCH_SECS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .clamp(1, 60);
    match std::env::var("ASCEND_BENCH_ONLY").as_deref() {
        Ok("submit") => {
            let (written, commits) = (disk_bytes_written(), Commits::now(&client, &base).await);
            let Round { rate, cpu, cores } = closed_loop(&submit, clients, secs).await;
            let per_submit = (disk_bytes_written() - written) as f64 / (rate * secs as f64);
            let per_commit = commits.jobs_per_commit_since(&client, &base).await;
            println!(
                "POST /api/v1/actions/submit  {rate:>9.0} req/s  {cpu:?} CPU/request  {cores:.2} cores busy  {per_submit:.0} bytes written to disk per submit  {per_commit:.0} submits/commit"
            );
            return;
        }
        Ok("healthz") => {
            let Round { rate, cpu, cores } = closed_loop(&health, clients, secs).await;
            println!("GET /healthz  {rate:>9.0} req/s  {cpu:?} CPU/request  {cores:.2} cores busy");
            return;
        }
        _ => {}
    }
    // Warm up.
    let _ = closed_loop(&submit, 32, 1).await;
    if std::env::var("ASCEND_BENCH_ONLY").as_deref() == Ok("latency") {
        return latencies(&client, &base, &agent, &submit).await;
    }
    // Interleaved one-second rounds, so that a change in what else the machine runs
    // falls on both sides of the ratio.
    println!("throughput (closed loop, median of 5 interleaved 1 s rounds each):");
    for clients in [32, 256] {
        let (mut healthz, mut submits) = (Vec::new(), Vec::new());
        let (mut written, mut submitted) = (0, 0.0);
        let commits = Commits::now(&client, &base).await;
        for _ in 0..5 {
            healthz.push(closed_loop(&health, clients, 1).await);
            let before = disk_bytes_written();
            let started = Instant::now();
            let round = closed_loop(&submit, clients, 1).await;
            written += disk_bytes_written() - before;
            submitted += round.rate * started.elapsed().as_secs_f64();
            submits.push(round);
        }
        let per_commit = commits.jobs_per_commit_since(&client, &base).await;
        let (healthz, submits) = (Medians::of(&healthz), Medians::of(&submits));
        println!(
            "  {clients:>3} clients  GET /healthz                 {:>9.0} req/s   {:>5.1} µs CPU/request   {:.2} cores busy",
            healthz.rate, healthz.cpu_us, healthz.cores
        );
        println!(
            "  {clients:>3} clients  POST /api/v1/actions/submit  {:>9.0} req/s   {:>5.1} µs CPU/request   {:.2} cores busy   {:>5.0} bytes to disk/request   {per_commit:.0} submits/commit   (LOW action, SQLite)",
            submits.rate,
            submits.cpu_us,
            submits.cores,
            written as f64 / submitted.max(1.0)
        );
        println!(
            "  {clients:>3} clients  ratio submit / healthz       {:>9.2}         CPU ratio healthz / submit {:.2}",
            submits.rate / healthz.rate,
            healthz.cpu_us / submits.cpu_us
        );
    }

    latencies(&client, &base, &agent, &submit).await;
}

/// Submit latency alone and at a fixed rate, and approve → long-poll.
async fn latencies(
    client: &reqwest::Client,
    base: &str,
    agent: &str,
    submit: &impl Fn() -> reqwest::RequestBuilder,
) {
    // One client, back to back: the latency floor without queueing.
    let mut seq = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        let r = submit().send().await.unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await;
        seq.push(t.elapsed());
    }
    seq.sort();
    println!("submit latency, one client back to back (500 requests):");
    println!(
        "  p50 {:.2} ms   p99 {:.2} ms",
        ms(pct(&seq, 0.50)),
        ms(pct(&seq, 0.99))
    );

    // Fixed rate: 1,000 req/s for 5 s.
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(5_000)));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(5_000);
    let started = Instant::now();
    for _ in 0..5_000 {
        ticker.tick().await;
        let (req, lat) = (submit(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await;
            lat.lock().await.push(t.elapsed());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let offered = 5_000.0 / started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().await.clone();
    lat.sort();
    println!("submit latency at a fixed {offered:.0} req/s for 5 s (5,000 requests):");
    println!(
        "  p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );

    // Approve → waiting long-poll.
    let approver: Value = client
        .post(format!("{base}/api/v1/keys"))
        .header("X-API-Key", ADMIN)
        .json(&json!({"role": "approver"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approver = approver["key"].as_str().unwrap().to_string();
    let mut wake = Vec::with_capacity(200);
    for i in 0..200 {
        let body = json!({"action_type": "s3.delete_bucket", "parameters": {"Bucket": format!("b{i}")}, "agent_id": "bench"});
        let v: Value = client
            .post(format!("{base}/api/v1/actions/submit"))
            .header("X-API-Key", agent)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let waiter = {
            let req = client
                .get(format!("{base}/api/v1/actions/{id}/status?wait=30"))
                .header("X-API-Key", agent);
            tokio::spawn(async move {
                let v: Value = req.send().await.unwrap().json().await.unwrap();
                (v, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let t0 = Instant::now();
        let r = client
            .post(format!("{base}/api/v1/actions/{id}/approve"))
            .header("X-API-Key", &approver)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let (v, t1) = waiter.await.unwrap();
        assert_eq!(v["status"], "approved");
        wake.push(t1 - t0);
    }
    wake.sort();
    println!("approve → waiting long-poll answer (200 rounds):");
    println!(
        "  p50 {:.2} ms   p95 {:.2} ms   max {:.2} ms",
        ms(pct(&wake, 0.50)),
        ms(pct(&wake, 0.95)),
        ms(*wake.last().unwrap())
    );
}

/// Medians of a few rounds, each figure on its own.
struct Medians {
    rate: f64,
    cpu_us: f64,
    cores: f64,
}

impl Medians {
    fn of(rounds: &[Round]) -> Self {
        let of = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        Medians {
            rate: of(|r| r.rate),
            cpu_us: of(|r| r.cpu.as_secs_f64() * 1e6),
            cores: of(|r| r.cores),
        }
    }
}

/// How many jobs the platform's SQLite writer has committed, and in how many commits
/// (`ascend_sqlite_commit_batch_jobs`, from `/metrics`).
struct Commits {
    jobs: f64,
    commits: f64,
}

impl Commits {
    async fn now(client: &reqwest::Client, base: &str) -> Self {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let read = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Commits {
            jobs: read("ascend_sqlite_commit_batch_jobs_sum"),
            commits: read("ascend_sqlite_commit_batch_jobs_count"),
        }
    }

    /// Jobs per commit on average since `self` was read.
    async fn jobs_per_commit_since(&self, client: &reqwest::Client, base: &str) -> f64 {
        let now = Commits::now(client, base).await;
        (now.jobs - self.jobs) / (now.commits - self.commits).max(1.0)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
