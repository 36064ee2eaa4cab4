use std::process::ExitCode;

use clap::Parser;
use voice_operator::config::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    voice_operator::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(voice_operator::cli::run(cli));
    // A read of standard input cannot be cancelled; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
