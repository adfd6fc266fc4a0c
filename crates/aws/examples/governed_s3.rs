//! A small governed S3 program.
//!
//! ```sh
//! ascend serve --listen 127.0.0.1:8700 --data-dir ./ascend-data &
//! python3 -m moto.server -H 127.0.0.1 -p 5000 &          # or real AWS: leave AWS_ENDPOINT_URL unset
//! ASCEND_API_KEY=owkai_agent_… ASCEND_API_URL=http://127.0.0.1:8700 \
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 RUST_LOG=info \
//!     cargo run -p ascend-aws --example governed_s3 -- my-bucket
//! ```
//!
//! Creates the bucket (MEDIUM) and deletes it (HIGH) — each held until someone approves it
//! on the dashboard or with `ascend actions approve`, then run, or the typed denial printed
//! — and lists buckets in between (LOW: runs at once).

use std::time::Duration;

use ascend_aws::Ascend;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bucket = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ascend-example".into());
    // Print the governance log lines (targets `ascend_aws` and `ascend_aws::metrics`).
    log::set_logger(&StderrLogger).ok();
    log::set_max_level(log::LevelFilter::Info);

    let ascend = Ascend::from_env()?;
    ascend.ready(Duration::from_secs(5)).await;

    // Usually `aws_config::load_from_env().await`; kept to the SDK crate here.
    let mut conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .interceptor(ascend.interceptor()); // ← the one line that turns governance on
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        conf = conf
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "example",
            ));
    }
    let s3 = aws_sdk_s3::Client::from_conf(conf.build());

    // create_bucket is MEDIUM: held for approval unless auto_approve_medium_risk.
    if let Err(err) = s3.create_bucket().bucket(&bucket).send().await {
        explain("create_bucket", err)?;
    }
    let buckets = s3.list_buckets().send().await?; // LOW: runs at once
    for b in buckets.buckets() {
        println!("bucket: {}", b.name().unwrap_or("?"));
    }
    match s3.delete_bucket().bucket(&bucket).send().await {
        Ok(_) => println!("deleted {bucket}"),
        Err(err) => explain("delete_bucket", err)?,
    }
    ascend.flush(Duration::from_secs(5)).await;
    Ok(())
}

/// Prints a governance denial; any other error is returned.
fn explain<E>(what: &str, err: E) -> Result<(), Box<dyn std::error::Error>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match ascend_aws::denial(&err) {
        Some(denied) => {
            println!(
                "{what} not run: {} (action {}, risk {} {})",
                denied.reason,
                denied.action_id,
                denied.risk_level.label(),
                denied.risk_score
            );
            Ok(())
        }
        None => Err(err.into()),
    }
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("ascend_aws")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}: {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}
