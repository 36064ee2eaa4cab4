//! Where the tenant configuration lives, for every command that reads or
//! writes it.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::aws_name;
use crate::tenant::StoreConfig;

/// Which tenant store backs the configuration items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TenantStoreKind {
    /// A DynamoDB table (production).
    Dynamodb,
    /// An embedded SQLite file under the data directory.
    Sqlite,
}

/// Where the tenant configuration lives.
#[derive(Debug, Args)]
pub struct TenantStoreArgs {
    /// Tenant store backend [default: dynamodb in `controller` and `run`,
    /// sqlite in `local`].
    #[arg(long, env = "VOICE_OPERATOR_TENANT_STORE", value_enum)]
    pub tenant_store: Option<TenantStoreKind>,

    #[command(flatten)]
    pub table: TableArg,

    /// SQLite file for `--tenant-store sqlite` [default: <data-dir>/tenants.sqlite3].
    #[arg(long, env = "VOICE_OPERATOR_SQLITE_FILE")]
    pub sqlite_file: Option<PathBuf>,
}

impl TenantStoreArgs {
    /// The store these flags name; `default` when no backend is named.
    pub fn config(&self, default: TenantStoreKind, data_dir: &Path) -> StoreConfig {
        match self.tenant_store.unwrap_or(default) {
            TenantStoreKind::Dynamodb => StoreConfig::DynamoDb {
                table: self.table.dynamodb_table.clone(),
            },
            TenantStoreKind::Sqlite => StoreConfig::Sqlite {
                path: self
                    .sqlite_file
                    .clone()
                    .unwrap_or_else(|| data_dir.join("tenants.sqlite3")),
            },
        }
    }
}

/// The DynamoDB tenant table, for every command that uses it.
#[derive(Debug, Args)]
pub struct TableArg {
    /// Name of the DynamoDB tenant table. Region, endpoint and credentials
    /// come from the AWS SDK's environment.
    #[arg(long, env = "DYNAMODB_ELEVENLABS_AGENTS_TABLE", default_value = crate::tenant::DEFAULT_TABLE,
          value_parser = aws_name("a DynamoDB table name", 3, 255, "--dynamodb-table", "DYNAMODB_ELEVENLABS_AGENTS_TABLE"))]
    pub dynamodb_table: String,
}
