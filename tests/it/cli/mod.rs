//! The built binary's subcommands.

mod create_table;
mod dashboard;
mod run_binary;
