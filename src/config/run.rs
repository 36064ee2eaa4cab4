//! Flags of `run`: the controller's, the bridge's and the action log's.

use clap::Args;

use super::{ActionLogArgs, ControllerArgs, bridge};

/// Settings of `run`: the controller's, the bridge's and the action log's.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub bridge: bridge::BridgeArgs,
    #[command(flatten)]
    pub action_log: ActionLogArgs,
}
