//! decide() end to end against a realistic 50-policy set, classification, and catalog
//! start-up. Targets (issue 3): ≤ 5 µs median when 5 policies name the call, ≤ 1 µs when
//! none can match, ≤ 1 µs to classify a catalog operation, catalog ready ≤ 20 ms.

//!
//! Each case runs twice: `wall/…` is wall-clock time, `cpu/…` is the CPU time of the
//! benchmark thread, which other processes on a busy machine do not inflate.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ascend_core::{Call, OperationName, PolicyEngine, Settings, catalog, classify, decide};
use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// CPU time of the measuring thread (CLOCK_THREAD_CPUTIME_ID).
struct ThreadCpu;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;
    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, started: ThreadTime) -> Duration {
        started.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// 50 policies: 5 name s3:DeleteBucket, the rest spread over 45 other actions.
fn fifty_policies() -> String {
    let mut text = String::from(
        r#"
@id("approve-prod-bucket-delete") @reason("Bucket deletion requires manager approval") @approval("required")
permit(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "prod*" };
@id("deny-audit-bucket") @reason("audit buckets are kept")
forbid(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "*audit*" };
@id("deny-critical-deletes") forbid(principal, action == Action::"s3:DeleteBucket", resource) when { context.risk_level == "critical" && context.region == "us-gov-west-1" };
@id("sandbox-deletes") permit(principal, action == Action::"s3:DeleteBucket", resource) when { resource.name like "sandbox-*" };
@id("intern-no-delete") forbid(principal == Agent::"intern", action == Action::"s3:DeleteBucket", resource);
"#,
    );
    let others: Vec<_> = catalog()
        .operations()
        .iter()
        .filter(|op| op.service == "ec2" && op.access.is_some())
        .take(45)
        .collect();
    for (i, op) in others.iter().enumerate() {
        let effect = if i % 3 == 0 { "forbid" } else { "permit" };
        text.push_str(&format!(
            "@id(\"p{i}\") {effect}(principal, action == Action::\"{}\", resource) when {{ context.risk_score > {} && resource.name like \"team-{i}-*\" }};\n",
            op.cedar_action(),
            i + 10
        ));
    }
    text
}

/// Resident set size of this process in MiB (Linux), for the catalog's memory figure.
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn startup() {
    let before = resident_mib();
    let started = Instant::now();
    let count = catalog().operations().len();
    let ready = started.elapsed();
    // Touch every service's other-spelling index too, as a long-running server would.
    for op in catalog().operations() {
        black_box(catalog().find(op.service, op.api_name));
    }
    let after = resident_mib();
    println!("catalog: {count} operations ready in {ready:?} (target ≤ 20 ms)");
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "catalog: resident {after:.1} MiB for the whole bench process, {:.1} MiB of it the catalog with every index built (target ≤ 20 MB)",
            after - before
        );
    }
}

fn wall(c: &mut Criterion) {
    startup();
    cases(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    cases(c, "cpu");
}

fn cases<M: Measurement>(c: &mut Criterion<M>, label: &str) {
    let mut c = c.benchmark_group(label);

    let engine = PolicyEngine::compile(&fifty_policies()).expect("bench policies are valid");
    assert_eq!(engine.policies().len(), 50);
    let settings = Settings::default();

    let delete = OperationName::parse("s3.delete_bucket").unwrap();
    let delete_params = json!({"Bucket": "prod-logs"});
    c.bench_function("decide/5-policies-name-the-call", |b| {
        let call = Call {
            agent_id: "agent-7",
            name: &delete,
            params: &delete_params,
            region: "us-east-1",
        };
        b.iter(|| black_box(decide(black_box(&call), &settings, &engine, None)))
    });

    let get = OperationName::parse("s3.get_object").unwrap();
    let get_params = json!({"Bucket": "reports", "Key": "q1.csv"});
    c.bench_function("decide/no-policy-can-match", |b| {
        let call = Call {
            agent_id: "agent-7",
            name: &get,
            params: &get_params,
            region: "us-east-1",
        };
        b.iter(|| black_box(decide(black_box(&call), &settings, &engine, None)))
    });

    let put = OperationName::parse("dynamodb.put_item").unwrap();
    let put_params = json!({"TableName": "orders", "Item": {"id": {"S": "1"}}});
    c.bench_function("classify/catalog-operation", |b| {
        b.iter(|| black_box(classify(black_box(&put), black_box(&put_params))))
    });
    let glue = OperationName::parse("glue.get_table").unwrap();
    c.bench_function("classify/catalog-access-level", |b| {
        b.iter(|| {
            black_box(classify(
                black_box(&glue),
                black_box(&serde_json::Value::Null),
            ))
        })
    });
    c.bench_function("parse/any-spelling", |b| {
        b.iter(|| black_box(OperationName::parse(black_box("s3:DeleteBucket")).unwrap()))
    });
    c.finish();
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
