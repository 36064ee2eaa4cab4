//! Flags of `dynamodb create-table`.

use clap::{Args, Subcommand};

use super::{TableArg, whole};

/// DynamoDB subcommands.
#[derive(Debug, Subcommand)]
pub enum DynamodbCommand {
    /// Create the tenant table (HASH businessId, RANGE locationId, pay per
    /// request) and wait until it is ACTIVE.
    ///
    /// Safe to run again: an existing table with the right key schema is
    /// left as it is; one with another key schema is an error. Region,
    /// endpoint and credentials come from the AWS SDK's environment
    /// (AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ...).
    CreateTable(CreateTableArgs),
}

/// Arguments of `dynamodb create-table`.
#[derive(Debug, Args)]
pub struct CreateTableArgs {
    #[command(flatten)]
    pub table: TableArg,

    /// Longest time to wait for the table to become ACTIVE, in seconds.
    #[arg(long, default_value_t = 300,
          env = "VOICE_OPERATOR_TABLE_WAIT_SECS",
          value_parser = whole("--wait-secs", "VOICE_OPERATOR_TABLE_WAIT_SECS", 1, 3600))]
    pub wait_secs: u64,
}
