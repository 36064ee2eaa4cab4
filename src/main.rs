use std::process::ExitCode;

use clap::Parser;
use voice_operator::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    voice_operator::telemetry::init(cli.log_format);
    match voice_operator::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
