//! The built binary's subcommands.

mod create_table;
mod run_binary;
