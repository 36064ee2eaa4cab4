//! Flags of `dashboard`: the consumer's source, the store and the HTTP
//! listener; `dashboard token create`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::FollowArgs;

/// `dashboard`: serve it, or manage its tokens.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DashboardArgs {
    #[command(subcommand)]
    pub command: Option<DashboardCommand>,

    #[command(flatten)]
    pub serve: DashboardServeArgs,
}

/// `dashboard` subcommands.
#[derive(Debug, Subcommand)]
pub enum DashboardCommand {
    /// Read-only tokens, one business each.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `dashboard token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token that reads one business's data; it is printed once
    /// and only its SHA-256 is stored.
    Create(TokenCreateArgs),
}

/// Arguments of `dashboard token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The business the token reads.
    #[arg(long)]
    pub business: String,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where the dashboard keeps its data.
#[derive(Debug, Default, Args)]
pub struct StoreArgs {
    /// The dashboard's SQLite file [default: <data-dir>/dashboard.sqlite].
    #[arg(long, env = "VOICE_OPERATOR_DASHBOARD_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store file.
    pub fn path(&self, data_dir: &Path) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| data_dir.join("dashboard.sqlite"))
    }
}

/// Arguments of `dashboard` itself.
#[derive(Debug, Args)]
pub struct DashboardServeArgs {
    /// HTTP listen address of the dashboard's API; port 0 takes a free
    /// port (logged at start).
    #[arg(
        long,
        env = "VOICE_OPERATOR_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: std::net::SocketAddr,

    #[command(flatten)]
    pub follow: FollowArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}
