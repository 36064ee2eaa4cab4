//! What each subcommand does, on top of the library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::io::BufReader;

use crate::actionlog::ActionLog;
use crate::actionlog::replay::replay;
use crate::config::{ActionLogCommand, Cli, Command, CreateTableArgs, DynamodbCommand, ReplayArgs};
use crate::tenant::dynamodb::{TableOutcome, create_table, sdk_config};

/// Runs the command `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::ActionLog(ActionLogCommand::Replay(args)) => {
            replay_command(&args, &cli.data_dir).await
        }
        Command::Dynamodb(DynamodbCommand::CreateTable(args)) => create_table_command(&args).await,
        Command::Crd => {
            print!("{}", crate::crd::crd_yaml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn create_table_command(args: &CreateTableArgs) -> anyhow::Result<ExitCode> {
    let sdk = sdk_config().await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = &args.dynamodb_table;
    let outcome = create_table(&client, table, Duration::from_secs(args.wait_secs)).await?;
    match outcome {
        TableOutcome::Created => println!("created table {table}; it is ACTIVE"),
        TableOutcome::AlreadyExisted => {
            println!("table {table} already exists with the expected key schema; it is ACTIVE")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay_command(args: &ReplayArgs, data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = args.action_log.config(data_dir)?;
    let (log, shipper) = ActionLog::open(&config).await?;
    let summary = if args.input.as_os_str() == "-" {
        replay(
            &mut BufReader::new(tokio::io::stdin()),
            &log,
            shutdown_signal(),
        )
        .await
    } else {
        let file = tokio::fs::File::open(&args.input)
            .await
            .with_context(|| format!("cannot open --input {}", args.input.display()))?;
        replay(&mut BufReader::new(file), &log, shutdown_signal()).await
    }
    .with_context(|| format!("reading {}", args.input.display()))?;
    let report = shipper.shutdown(args.action_log.shutdown_grace()).await;
    let metrics = log.metrics();
    eprintln!(
        "replay: {} lines, {} queued, {} rejected; {report}; retried sends {}",
        summary.lines, summary.queued, summary.rejected, metrics.retried
    );
    let clean = summary.rejected == 0 && report.undelivered == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("interrupted; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
