//! `ascend serve` and `ascend orgs create`: wiring only; the platform is `ascend-server`.

use std::process::ExitCode;

use ascend_server::{ServerConfig, SqliteSync, StoreConfig};

use super::args::{OrgsCommand, ServeArgs, SqliteSynchronous, StoreArgs};
use crate::CliError;

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

fn store_config(args: StoreArgs) -> StoreConfig {
    StoreConfig {
        data_dir: args.data_dir,
        database_url: args.database_url.filter(|u| !u.trim().is_empty()),
        sqlite_synchronous: match args.sqlite_synchronous {
            SqliteSynchronous::Full => SqliteSync::Full,
            SqliteSynchronous::Normal => SqliteSync::Normal,
        },
    }
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASCEND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let bootstrap_key = std::env::var("ASCEND_BOOTSTRAP_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if bootstrap_key
        .as_deref()
        .is_some_and(|k| !k.starts_with("owkai_admin_"))
    {
        return Err(CliError::usage(
            "ASCEND_BOOTSTRAP_KEY must start with owkai_admin_",
        ));
    }
    let config = ServerConfig {
        listen: args.listen,
        store: store_config(args.store),
        pending_ttl_secs: args.pending_ttl.max(1),
        rate_limit_per_sec: args.rate_limit,
        bootstrap_key,
        webhooks: ascend_server::WebhookSettings {
            retry_base_ms: args.webhook_retry_base_ms,
            max_attempts: args.webhook_max_attempts,
            refuse_private_networks: args.webhook_refuse_private_networks,
        },
    };
    runtime()?
        .block_on(ascend_server::serve(
            config,
            ascend_server::shutdown_signal(),
        ))
        .map_err(|e| CliError::failed(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn orgs(command: OrgsCommand) -> Result<ExitCode, CliError> {
    match command {
        OrgsCommand::Create { name, store } => {
            let config = store_config(store);
            let key = runtime()?
                .block_on(ascend_server::create_organisation(&config, &name))
                .map_err(|e| match e {
                    ascend_server::StoreError::Bootstrap(m) => CliError::usage(m),
                    other => CliError::failed(other.to_string()),
                })?;
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
