//! Settings of the webhook bridge (`run`): the agent runtime, the tools,
//! the messaging providers and the HTTP limits. Secrets are not flags:
//! they come from [`Secrets`], read from the environment once.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Secrets;
use super::whole;
use crate::actionlog::cost::Money;
use crate::agent::bedrock::{BedrockConfig, DEFAULT_GUARDRAIL_INTERVAL};
use crate::agent::openai::OpenAiConfig;
use crate::agent::tools::ToolsConfig;
use crate::agent::{DEFAULT_DEADLINE, DEFAULT_MAX_ROUNDS, RuntimeConfig};
use crate::http::state::{
    DEFAULT_BODY_LIMIT, DEFAULT_BUFFER_WORDS_AFTER, DEFAULT_POST_CALL_BODY_LIMIT,
    DEFAULT_REQUEST_TIMEOUT,
};
use crate::messaging::config::{MessagingConfig, MessagingConfigError, parse_routes};
use crate::messaging::pricing::{PriceTable, PriceTableError};
use crate::messaging::ses::SesConfig;
use crate::messaging::smtp::{SmtpConfig, SmtpSecurity};
use crate::messaging::sns::{SmsType, SnsConfig};
use crate::messaging::twilio::{TwilioConfig, TwilioSender};
use crate::messaging::whatsapp::WhatsAppConfig;
use crate::messaging::{DEFAULT_SEND_TIMEOUT, EmailAddress, PhoneNumber};
use crate::tenant::cache::DEFAULT_TTL;

/// Which agent answers the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentRuntimeKind {
    /// Amazon Bedrock Agents (production).
    Bedrock,
    /// An OpenAI-compatible chat-completions server (self-hosted models).
    Openai,
    /// The scripted stand-in: keyword rules, no model.
    Scripted,
}

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtpSecurityArg {
    Tls,
    Starttls,
    /// Plain text; only for a relay on the same host or pod.
    None,
}

/// Settings of the bridge routes, the agent and its tools.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Agent runtime [default: bedrock in `run`, scripted in `local`].
    #[arg(long, env = "VOICE_OPERATOR_AGENT_RUNTIME", value_enum)]
    pub agent_runtime: Option<AgentRuntimeKind>,

    /// Bedrock Agent id for tenants without their own (spec.bedrock).
    #[arg(long, env = "BEDROCK_AGENT_ID")]
    pub bedrock_agent_id: Option<String>,

    /// Alias of that Bedrock Agent.
    #[arg(long, env = "BEDROCK_AGENT_ALIAS_ID")]
    pub bedrock_agent_alias_id: Option<String>,

    /// Ask Bedrock for the final answer in chunks (streamFinalResponse),
    /// so the caller hears the first words while the model still writes;
    /// the agent's role then needs bedrock:InvokeModelWithResponseStream.
    #[arg(long, env = "VOICE_OPERATOR_BEDROCK_STREAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub bedrock_stream: bool,

    /// Characters between two guardrail checks of a streamed Bedrock
    /// answer (applyGuardrailInterval): larger means fewer, larger chunks.
    #[arg(long, env = "VOICE_OPERATOR_BEDROCK_GUARDRAIL_INTERVAL", default_value_t = DEFAULT_GUARDRAIL_INTERVAL as u64,
          value_parser = whole("--bedrock-guardrail-interval", "VOICE_OPERATOR_BEDROCK_GUARDRAIL_INTERVAL", 1, 100_000))]
    pub bedrock_guardrail_interval: u64,

    /// Ask Bedrock for the agent's trace and log it: failure reasons at
    /// warn, the rest at debug. For debugging.
    #[arg(long, env = "VOICE_OPERATOR_BEDROCK_TRACE", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub bedrock_trace: bool,

    /// Base URL of the OpenAI-compatible server (for example
    /// http://vllm:8000/v1); the key, if any, comes from OPENAI_API_KEY.
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// Model name to ask the OpenAI-compatible server for.
    #[arg(long, env = "OPENAI_MODEL")]
    pub openai_model: Option<String>,

    /// Tool round trips allowed in one caller turn.
    #[arg(long, env = "VOICE_OPERATOR_AGENT_MAX_ROUNDS", default_value_t = DEFAULT_MAX_ROUNDS as u64,
          value_parser = whole("--agent-max-rounds", "VOICE_OPERATOR_AGENT_MAX_ROUNDS", 1, 20))]
    pub agent_max_rounds: u64,

    /// Longest one caller turn may take, tools included, in milliseconds;
    /// past it the caller hears the fallback sentence.
    #[arg(long, env = "VOICE_OPERATOR_AGENT_DEADLINE_MS", default_value_t = DEFAULT_DEADLINE.as_millis() as u64,
          value_parser = whole("--agent-deadline-ms", "VOICE_OPERATOR_AGENT_DEADLINE_MS", 100, 120_000))]
    pub agent_deadline_ms: u64,

    /// Base URL of the business app server (query_app_server,
    /// create_appointment); its bearer token, if any, from APP_SERVER_TOKEN.
    #[arg(long, env = "APP_SERVER_URL")]
    pub app_server_url: Option<String>,

    /// Base URL of the real-time notification server
    /// (send_elixir_notification).
    #[arg(long, env = "NOTIFICATION_SERVER_URL")]
    pub notification_url: Option<String>,

    /// Longest one tool's HTTP call may take, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_TOOL_TIMEOUT_MS", default_value_t = ToolsConfig::default().timeout.as_millis() as u64,
          value_parser = whole("--tool-timeout-ms", "VOICE_OPERATOR_TOOL_TIMEOUT_MS", 100, 60_000))]
    pub tool_timeout_ms: u64,

    /// Longest one message send may take at its provider (SMS, email,
    /// WhatsApp), connection included, in milliseconds. Each send is one
    /// attempt: one that got no answer in time is not sent again, and its
    /// record says its outcome is unknown.
    #[arg(long, env = "VOICE_OPERATOR_MESSAGE_TIMEOUT_MS", default_value_t = DEFAULT_SEND_TIMEOUT.as_millis() as u64,
          value_parser = whole("--message-timeout-ms", "VOICE_OPERATOR_MESSAGE_TIMEOUT_MS", 100, 60_000))]
    pub message_timeout_ms: u64,

    /// SMS provider unless a route says otherwise: twilio or aws_sns
    /// [default: twilio when configured, else aws_sns].
    #[arg(long, env = "VOICE_OPERATOR_SMS_PROVIDER")]
    pub sms_provider: Option<String>,

    /// Email provider unless a route says otherwise: aws_ses or smtp
    /// [default: aws_ses when configured, else smtp].
    #[arg(long, env = "VOICE_OPERATOR_EMAIL_PROVIDER")]
    pub email_provider: Option<String>,

    /// Per-business provider choices, comma-separated
    /// `<businessId>:<sms|email|meta>=<provider>` entries.
    #[arg(long, env = "VOICE_OPERATOR_MESSAGE_ROUTES", default_value = "")]
    pub message_routes: String,

    /// Twilio account SID; with TWILIO_AUTH_TOKEN it turns Twilio SMS on.
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,

    /// Twilio sender number (E.164).
    #[arg(long, env = "TWILIO_FROM_NUMBER")]
    pub twilio_from: Option<String>,

    /// Twilio Messaging Service SID, instead of a sender number.
    #[arg(long, env = "TWILIO_MESSAGING_SERVICE_SID")]
    pub twilio_messaging_service_sid: Option<String>,

    /// Twilio API base URL.
    #[arg(long, env = "TWILIO_BASE_URL", default_value = crate::messaging::twilio::DEFAULT_BASE_URL)]
    pub twilio_base_url: String,

    /// WhatsApp Cloud API phone-number id; with WHATSAPP_ACCESS_TOKEN it
    /// turns WhatsApp on.
    #[arg(long, env = "WHATSAPP_PHONE_NUMBER_ID")]
    pub whatsapp_phone_number_id: Option<String>,

    /// Graph API base URL, version included.
    #[arg(long, env = "WHATSAPP_BASE_URL", default_value = crate::messaging::whatsapp::DEFAULT_BASE_URL)]
    pub whatsapp_base_url: String,

    /// Send SMS through AWS SNS (the AWS SDK's environment applies).
    #[arg(long, env = "VOICE_OPERATOR_SNS_SMS", default_value_t = false, action = clap::ArgAction::Set)]
    pub sns_sms: bool,

    /// SNS sender id (1 to 11 letters or digits), where countries allow one.
    #[arg(long, env = "SNS_SENDER_ID")]
    pub sns_sender_id: Option<String>,

    /// SES v2 sender address; turns SES email on.
    #[arg(long, env = "SES_FROM_ADDRESS")]
    pub ses_from: Option<String>,

    /// SES configuration set for sending events.
    #[arg(long, env = "SES_CONFIGURATION_SET")]
    pub ses_configuration_set: Option<String>,

    /// SMTP server host; with --smtp-from it turns SMTP email on. The
    /// password, if any, comes from SMTP_PASSWORD.
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP port [default: 465 for tls, 587 for starttls, 25 for none].
    #[arg(long, env = "SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP connection security.
    #[arg(long, env = "SMTP_SECURITY", value_enum, default_value_t = SmtpSecurityArg::Starttls)]
    pub smtp_security: SmtpSecurityArg,

    /// SMTP user name.
    #[arg(long, env = "SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP sender address.
    #[arg(long, env = "SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// Namespace the admin API creates VoiceAgents in [default: the pod's
    /// namespace, or the kubeconfig context's].
    #[arg(long, env = "VOICE_OPERATOR_ADMIN_NAMESPACE")]
    pub admin_namespace: Option<String>,

    /// Largest request body of a turn, init or admin call, in KiB.
    #[arg(long, env = "VOICE_OPERATOR_BODY_LIMIT_KIB", default_value_t = (DEFAULT_BODY_LIMIT / 1024) as u64,
          value_parser = whole("--body-limit-kib", "VOICE_OPERATOR_BODY_LIMIT_KIB", 1, 65_536))]
    pub body_limit_kib: u64,

    /// Largest post-call body (post_call_audio carries the call), in MiB.
    #[arg(long, env = "VOICE_OPERATOR_POST_CALL_LIMIT_MIB", default_value_t = (DEFAULT_POST_CALL_BODY_LIMIT / (1024 * 1024)) as u64,
          value_parser = whole("--post-call-limit-mib", "VOICE_OPERATOR_POST_CALL_LIMIT_MIB", 1, 1024))]
    pub post_call_limit_mib: u64,

    /// Longest a request may take before it gets 408, in seconds.
    #[arg(long, env = "VOICE_OPERATOR_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = whole("--request-timeout-secs", "VOICE_OPERATOR_REQUEST_TIMEOUT_SECS", 1, 3600))]
    pub request_timeout_secs: u64,

    /// How long a custom-LLM turn may say nothing before the caller hears
    /// buffer words ("One moment... "), in milliseconds; 0 turns them off.
    /// Keep it well under the agents' cascade_timeout_seconds.
    #[arg(long, env = "VOICE_OPERATOR_BUFFER_WORDS_MS", default_value_t = DEFAULT_BUFFER_WORDS_AFTER.as_millis() as u64,
          value_parser = whole("--buffer-words-ms", "VOICE_OPERATOR_BUFFER_WORDS_MS", 0, 15_000))]
    pub buffer_words_ms: u64,

    /// Directory for call audio of tenants with recordCalls; not kept
    /// unless set.
    #[arg(long, env = "VOICE_OPERATOR_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// What one ElevenLabs credit costs, as an amount and an ISO 4217
    /// currency ("0.00018 USD"); prices a call from its credits when
    /// ElevenLabs' post-call event gives no fiat cost. Without it such a
    /// call's record has no cost.
    #[arg(long, env = "VOICE_OPERATOR_PRICE_PER_CREDIT")]
    pub price_per_credit: Option<String>,

    /// YAML or JSON file of message prices per provider, channel and
    /// country calling code (docs/configuration.md), used when the
    /// provider's answer gives no price; empty when unset.
    #[arg(long, env = "VOICE_OPERATOR_PRICE_TABLE")]
    pub price_table: Option<PathBuf>,

    /// How long a tenant read stays cached, in milliseconds.
    #[arg(long, env = "VOICE_OPERATOR_TENANT_CACHE_MS", default_value_t = DEFAULT_TTL.as_millis() as u64,
          value_parser = whole("--tenant-cache-ms", "VOICE_OPERATOR_TENANT_CACHE_MS", 0, 600_000))]
    pub tenant_cache_ms: u64,
}

/// A bridge setting that is missing or makes no sense; names the flag and
/// the variable.
#[derive(Debug, thiserror::Error)]
pub enum BridgeConfigError {
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    PriceTable(#[from] PriceTableError),
    #[error(transparent)]
    Messaging(#[from] MessagingConfigError),
}

fn missing(what: &str) -> BridgeConfigError {
    BridgeConfigError::Setting(what.to_owned())
}

impl BridgeArgs {
    /// How long a turn may say nothing before buffer words; `None` when
    /// they are off.
    pub fn buffer_words_after(&self) -> Option<Duration> {
        (self.buffer_words_ms > 0).then(|| Duration::from_millis(self.buffer_words_ms))
    }

    /// The agent runtime these settings ask for; `default` when none is
    /// named.
    pub fn runtime(
        &self,
        default: AgentRuntimeKind,
        secrets: &Secrets,
    ) -> Result<RuntimeConfig, BridgeConfigError> {
        let deadline = Duration::from_millis(self.agent_deadline_ms);
        match self.agent_runtime.unwrap_or(default) {
            AgentRuntimeKind::Scripted => Ok(RuntimeConfig::Scripted),
            AgentRuntimeKind::Bedrock => {
                let (Some(agent_id), Some(alias_id)) =
                    (&self.bedrock_agent_id, &self.bedrock_agent_alias_id)
                else {
                    return Err(missing(
                        "--agent-runtime bedrock needs --bedrock-agent-id (BEDROCK_AGENT_ID) and --bedrock-agent-alias-id (BEDROCK_AGENT_ALIAS_ID)",
                    ));
                };
                let mut config = BedrockConfig::new(agent_id.clone(), alias_id.clone());
                config.max_rounds = self.agent_max_rounds as u32;
                config.deadline = deadline;
                config.stream = self.bedrock_stream;
                config.guardrail_interval = self.bedrock_guardrail_interval as u32;
                config.trace = self.bedrock_trace;
                Ok(RuntimeConfig::Bedrock(config))
            }
            AgentRuntimeKind::Openai => {
                let (Some(base), Some(model)) = (&self.openai_base_url, &self.openai_model) else {
                    return Err(missing(
                        "--agent-runtime openai needs --openai-base-url (OPENAI_BASE_URL) and --openai-model (OPENAI_MODEL)",
                    ));
                };
                let mut config = OpenAiConfig::new(base.clone(), model.clone());
                config.api_key = secrets.openai_api_key.clone();
                config.max_rounds = self.agent_max_rounds as usize;
                config.deadline = deadline;
                Ok(RuntimeConfig::OpenAi(config))
            }
        }
    }

    /// Where the HTTP tools go, how long a message send may run, and what
    /// messages cost (`prices`, from [`BridgeArgs::prices`]).
    pub fn tools(&self, secrets: &Secrets, prices: PriceTable) -> ToolsConfig {
        ToolsConfig {
            app_server_url: self.app_server_url.clone(),
            app_server_token: secrets.app_server_token.clone(),
            notification_url: self.notification_url.clone(),
            timeout: Duration::from_millis(self.tool_timeout_ms),
            send_deadline: crate::agent::tools::send_deadline(self.message_timeout()),
            prices: std::sync::Arc::new(prices),
        }
    }

    /// The price table of messages (empty without `--price-table`) and
    /// the price of one ElevenLabs credit, if set.
    pub fn prices(&self) -> Result<(PriceTable, Option<Money>), BridgeConfigError> {
        let table = match &self.price_table {
            Some(path) => PriceTable::load(path)?,
            None => PriceTable::default(),
        };
        let per_credit = self
            .price_per_credit
            .as_deref()
            .map(|text| Money::parse("--price-per-credit (VOICE_OPERATOR_PRICE_PER_CREDIT)", text))
            .transpose()
            .map_err(|e| BridgeConfigError::Setting(e.to_string()))?;
        Ok((table, per_credit))
    }

    fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms)
    }

    /// The messaging providers these settings turn on.
    pub fn messaging(&self, secrets: &Secrets) -> Result<MessagingConfig, BridgeConfigError> {
        let setting = MessagingConfigError::setting;
        let twilio = match (&self.twilio_account_sid, secrets.twilio_auth_token.clone()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(missing(
                    "--twilio-account-sid (TWILIO_ACCOUNT_SID) is set but TWILIO_AUTH_TOKEN is not",
                ));
            }
            (Some(sid), Some(token)) => {
                let from = match (&self.twilio_from, &self.twilio_messaging_service_sid) {
                    (Some(number), None) => TwilioSender::Number(
                        PhoneNumber::parse("--twilio-from (TWILIO_FROM_NUMBER)", number)
                            .map_err(|e| setting("twilio.from", e.to_string()))?,
                    ),
                    (None, Some(service)) => TwilioSender::MessagingService(service.clone()),
                    _ => {
                        return Err(missing(
                            "Twilio needs exactly one of --twilio-from (TWILIO_FROM_NUMBER) and --twilio-messaging-service-sid (TWILIO_MESSAGING_SERVICE_SID)",
                        ));
                    }
                };
                let mut config = TwilioConfig::new(sid.clone(), token, from);
                config.base_url = self.twilio_base_url.clone();
                config.timeout = self.message_timeout();
                Some(config)
            }
        };
        let whatsapp = match (
            &self.whatsapp_phone_number_id,
            secrets.whatsapp_access_token.clone(),
        ) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(missing(
                    "--whatsapp-phone-number-id (WHATSAPP_PHONE_NUMBER_ID) is set but WHATSAPP_ACCESS_TOKEN is not",
                ));
            }
            (Some(id), Some(token)) => {
                let mut config = WhatsAppConfig::new(id.clone(), token);
                config.base_url = self.whatsapp_base_url.clone();
                config.timeout = self.message_timeout();
                Some(config)
            }
        };
        let sns = self.sns_sms.then(|| SnsConfig {
            sms_type: SmsType::Transactional,
            sender_id: self.sns_sender_id.clone(),
            timeout: self.message_timeout(),
        });
        let ses = match &self.ses_from {
            None => None,
            Some(from) => {
                let mut config = SesConfig::new(
                    EmailAddress::parse("--ses-from (SES_FROM_ADDRESS)", from)
                        .map_err(|e| setting("ses.from", e.to_string()))?,
                );
                config.configuration_set = self.ses_configuration_set.clone();
                config.timeout = self.message_timeout();
                Some(config)
            }
        };
        let smtp = match (&self.smtp_host, &self.smtp_from) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(missing(
                    "--smtp-host (SMTP_HOST) is set but --smtp-from (SMTP_FROM) is not",
                ));
            }
            (Some(host), Some(from)) => {
                let security = match self.smtp_security {
                    SmtpSecurityArg::Tls => SmtpSecurity::Tls,
                    SmtpSecurityArg::Starttls => SmtpSecurity::Starttls,
                    SmtpSecurityArg::None => SmtpSecurity::None,
                };
                let mut config = SmtpConfig::new(
                    host.clone(),
                    security,
                    EmailAddress::parse("--smtp-from (SMTP_FROM)", from)
                        .map_err(|e| setting("smtp.from", e.to_string()))?,
                );
                if let Some(port) = self.smtp_port {
                    config.port = port;
                }
                config.username = self.smtp_username.clone();
                config.password = secrets.smtp_password.clone();
                config.timeout = self.message_timeout();
                Some(config)
            }
        };
        Ok(MessagingConfig {
            twilio,
            whatsapp,
            sns,
            ses,
            smtp,
            sms_default: self.sms_provider.clone(),
            email_default: self.email_provider.clone(),
            routes: parse_routes(&self.message_routes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::{ExposeSecret, SecretString};

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        bridge: BridgeArgs,
    }

    /// The bridge flags of `local` as given on the command line.
    fn bridge(args: &[&str]) -> BridgeArgs {
        Flags::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .unwrap()
            .bridge
    }

    #[test]
    fn secrets_come_from_what_is_passed_not_from_the_environment() {
        let args = bridge(&[
            "--twilio-account-sid",
            "AC123",
            "--twilio-from",
            "+40312345678",
        ]);
        let err = args.messaging(&Secrets::default()).unwrap_err();
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        let secrets = Secrets {
            twilio_auth_token: Some(SecretString::from("tok")),
            app_server_token: Some(SecretString::from("app")),
            ..Secrets::default()
        };
        let twilio = args.messaging(&secrets).unwrap().twilio.unwrap();
        assert_eq!(twilio.auth_token.expose_secret(), "tok");
        let tools = args.tools(&secrets, PriceTable::default());
        assert_eq!(
            tools.app_server_token.as_ref().map(|t| t.expose_secret()),
            Some("app")
        );
    }

    #[test]
    fn the_runtime_defaults_per_command_and_names_missing_flags() {
        let none = bridge(&[]);
        assert!(matches!(
            none.runtime(AgentRuntimeKind::Scripted, &Secrets::default()),
            Ok(RuntimeConfig::Scripted)
        ));
        let err = none
            .runtime(AgentRuntimeKind::Bedrock, &Secrets::default())
            .unwrap_err();
        assert!(err.to_string().contains("BEDROCK_AGENT_ID"), "{err}");
        let openai = bridge(&[
            "--agent-runtime",
            "openai",
            "--openai-base-url",
            "http://127.0.0.1:8000/v1",
            "--openai-model",
            "m",
        ]);
        let secrets = Secrets {
            openai_api_key: Some(SecretString::from("sk")),
            ..Secrets::default()
        };
        let Ok(RuntimeConfig::OpenAi(config)) = openai.runtime(AgentRuntimeKind::Bedrock, &secrets)
        else {
            panic!("not the OpenAI runtime");
        };
        assert_eq!(
            config.api_key.as_ref().map(|k| k.expose_secret()),
            Some("sk")
        );
        assert_eq!(config.deadline, crate::agent::DEFAULT_DEADLINE);
    }

    #[test]
    fn bedrock_streams_by_default_and_traces_only_when_asked() {
        let ids = [
            "--bedrock-agent-id",
            "AGENT12345",
            "--bedrock-agent-alias-id",
            "TSTALIASID",
        ];
        let runtime = |extra: &[&str]| {
            let args: Vec<&str> = ids.iter().chain(extra).copied().collect();
            match bridge(&args).runtime(AgentRuntimeKind::Bedrock, &Secrets::default()) {
                Ok(RuntimeConfig::Bedrock(config)) => config,
                other => panic!("not the Bedrock runtime: {other:?}"),
            }
        };
        let plain = runtime(&[]);
        assert!(plain.stream);
        assert!(!plain.trace);
        assert_eq!(plain.guardrail_interval, DEFAULT_GUARDRAIL_INTERVAL);
        let debugging = runtime(&[
            "--bedrock-trace",
            "--bedrock-stream",
            "false",
            "--bedrock-guardrail-interval",
            "20",
        ]);
        assert!(debugging.trace && !debugging.stream);
        assert_eq!(debugging.guardrail_interval, 20);
        let refused = Flags::try_parse_from(["test", "--bedrock-guardrail-interval", "0"]);
        let err = refused.err().expect("0 is below AWS's minimum").to_string();
        assert!(
            err.contains("VOICE_OPERATOR_BEDROCK_GUARDRAIL_INTERVAL"),
            "{err}"
        );
    }

    #[test]
    fn prices_are_optional_and_bad_ones_name_their_setting() {
        let (table, per_credit) = bridge(&[]).prices().unwrap();
        assert!(table.is_empty());
        assert_eq!(per_credit, None);
        let (_, per_credit) = bridge(&["--price-per-credit", "0.00018 usd"])
            .prices()
            .unwrap();
        assert_eq!(per_credit, Some(Money::new("t", 0.00018, "USD").unwrap()));
        let err = bridge(&["--price-per-credit", "0.00018"])
            .prices()
            .unwrap_err();
        assert!(
            err.to_string().contains("VOICE_OPERATOR_PRICE_PER_CREDIT"),
            "{err}"
        );
        let err = bridge(&["--price-table", "/nonexistent/prices.yaml"])
            .prices()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/prices.yaml"),
            "{err}"
        );
    }

    #[test]
    fn buffer_words_default_to_600_ms_and_0_turns_them_off() {
        assert_eq!(
            bridge(&[]).buffer_words_after(),
            Some(Duration::from_millis(600))
        );
        assert_eq!(
            bridge(&["--buffer-words-ms", "1500"]).buffer_words_after(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            bridge(&["--buffer-words-ms", "0"]).buffer_words_after(),
            None
        );
    }
}
