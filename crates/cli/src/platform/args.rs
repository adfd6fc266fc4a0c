//! Arguments of the platform commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the store is (for `serve` and `orgs`).
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite file and admin.key (created if missing).
    #[arg(long, env = "ASCEND_DATA_DIR", default_value = "./ascend-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite: postgres://user@host:5432/db
    #[arg(long, env = "ASCEND_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// SQLite only. `full`: every commit waits for the disk, so an answered write survives
    /// a power cut. `normal`: it survives `kill -9` but a power cut may lose the last
    /// commits; answers no longer wait for the disk's fsync.
    #[arg(
        long,
        env = "ASCEND_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: SqliteSynchronous,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ASCEND_LISTEN", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Seconds a pending action waits for a person before it is denied.
    #[arg(long, env = "ASCEND_PENDING_TTL", default_value_t = 3600)]
    pub pending_ttl: u64,
    /// Requests per second per API key (0: no limit).
    #[arg(long, env = "ASCEND_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,
    /// Milliseconds before a failed webhook delivery is retried; doubles each attempt.
    #[arg(long, env = "ASCEND_WEBHOOK_RETRY_BASE_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_retry_base_ms: u64,
    /// Attempts per webhook delivery, the first included, before it is marked failed.
    #[arg(long, env = "ASCEND_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub webhook_max_attempts: u32,
    /// Refuse webhook URLs on loopback and private networks (RFC 1918, 100.64.0.0/10,
    /// fc00::/7, `localhost`), at registration and when delivering; cloud metadata and
    /// this host are always refused.
    #[arg(long, env = "ASCEND_WEBHOOK_REFUSE_PRIVATE_NETWORKS",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_refuse_private_networks: bool,
}

#[derive(Subcommand, Debug)]
pub enum OrgsCommand {
    /// Create an organisation; prints its first admin key.
    Create {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How to reach a running server.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// The platform's base URL.
    #[arg(
        long,
        env = "ASCEND_URL",
        default_value = "http://127.0.0.1:8700",
        global = true
    )]
    pub url: String,
    /// An API key of the organisation.
    #[arg(long, env = "ASCEND_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    pub remote: Remote,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; prints it (shown only once).
    Create {
        /// admin, approver or agent
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List the organisation's keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id (key_…); it stops working at once.
    Revoke { id: String },
}

#[derive(Args, Debug)]
pub struct ActionsArgs {
    #[command(flatten)]
    pub remote: Remote,
    #[command(subcommand)]
    pub command: ActionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// approved, denied or pending_approval
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one action in full (JSON).
    Show { id: String },
    /// Approve a pending action.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a pending action.
    Reject {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct AgentsArgs {
    #[command(flatten)]
    pub remote: Remote,
    #[command(subcommand)]
    pub command: AgentsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List agents with their counts and block state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Kill switch: deny every call of the agent.
    Block {
        agent_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift the kill switch.
    Unblock { agent_id: String },
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub remote: Remote,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Export the audit log as JSON Lines.
    Export {
        #[arg(long)]
        agent: Option<String>,
        /// approved, denied or pending
        #[arg(long)]
        decision: Option<String>,
        /// RFC 3339 time (inclusive)
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time (inclusive)
        #[arg(long)]
        until: Option<String>,
        /// Write to this file (with a progress bar) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify the hash chain; exit 1 when it is broken.
    Verify,
}
