//! What each subcommand runs: parsing is in [`crate::config`], the
//! building and running in [`crate::app`] (and [`crate::local`]).

use std::process::ExitCode;

use crate::app;
use crate::config::Secrets;
use crate::config::{ActionLogCommand, Cli, Command, DynamodbCommand};

/// Runs the command `cli` names, with the secrets of the environment.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let secrets = Secrets::from_env();
    match cli.command {
        Command::ActionLog(ActionLogCommand::Replay(args)) => {
            app::replay_command(&args, &cli.data_dir).await
        }
        Command::ActionLog(ActionLogCommand::Tail(args)) => {
            app::tail_command(&args, &cli.data_dir).await
        }
        Command::Dynamodb(DynamodbCommand::CreateTable(args)) => {
            app::create_table_command(&args).await
        }
        Command::Crd => {
            print!(
                "{}---\n{}",
                crate::crd::crd_yaml(),
                crate::crd::template_crd_yaml()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller(args) => app::controller(&args, None, &secrets, &cli.data_dir).await,
        Command::Run(args) => {
            app::controller(&args.controller, Some(&args), &secrets, &cli.data_dir).await
        }
        Command::Local(args) => crate::local::run(&args, &secrets, &cli.data_dir).await,
        Command::Dashboard(args) => {
            app::dashboard::command(&args, secrets.admin.clone(), &cli.data_dir).await
        }
    }
}
