//! Flags of `run`: the controller's, the bridge's and the action log's.

use clap::Args;

use super::{ActionLogArgs, ConfigError, ControllerArgs, Secrets, bridge};

/// Settings of `run`: the controller's, the bridge's and the action log's.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub bridge: bridge::BridgeArgs,
    #[command(flatten)]
    pub action_log: ActionLogArgs,

    /// Start even though VOICE_OPERATOR_LLM_SECRET is not set, serving the
    /// custom-LLM route WITHOUT authentication: anyone who can reach it
    /// and guess a tenant id can run that tenant's agent, book its
    /// appointments and send messages at its expense. Without this flag
    /// `run` refuses to start when the secret is missing.
    #[arg(long, env = "VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM")]
    pub allow_unauthenticated_llm: bool,
}

impl RunArgs {
    /// Refuses an unauthenticated custom-LLM route unless the user asked
    /// for one by name.
    pub fn check_llm_auth(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        if secrets.llm.is_some() || self.allow_unauthenticated_llm {
            return Ok(());
        }
        Err(ConfigError {
            flag: "--allow-unauthenticated-llm",
            env: "VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM",
            reason: "VOICE_OPERATOR_LLM_SECRET is not set, so the custom-LLM route would take turns \
                from anyone who can reach it. Set VOICE_OPERATOR_LLM_SECRET (the operator stores it \
                as an ElevenLabs workspace secret that every agent sends as its bearer token), or \
                pass --allow-unauthenticated-llm to accept the risk"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::SecretString;

    use super::*;
    use crate::config::{Cli, Command};

    fn run_args(extra: &[&str]) -> RunArgs {
        let args = [
            "voice-operator",
            "run",
            "--public-url",
            "https://voice.example.com",
        ];
        match Cli::try_parse_from(args.iter().chain(extra))
            .unwrap()
            .command
        {
            Command::Run(run) => *run,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn an_unauthenticated_llm_route_must_be_asked_for_by_name() {
        let err = run_args(&[])
            .check_llm_auth(&Secrets::default())
            .unwrap_err();
        let text = err.to_string();
        for needle in [
            "VOICE_OPERATOR_LLM_SECRET is not set",
            "--allow-unauthenticated-llm",
            "VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        run_args(&["--allow-unauthenticated-llm"])
            .check_llm_auth(&Secrets::default())
            .unwrap();
        let with_secret = Secrets {
            llm: Some(SecretString::from("s")),
            ..Secrets::default()
        };
        run_args(&[]).check_llm_auth(&with_secret).unwrap();
    }
}
