//! The tools the agent can call, as the models see them. Bedrock action
//! groups (RETURN_CONTROL) declare the same functions and parameters.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{ToolCall, ToolOutput, ToolRunner, Turn};
use crate::actionlog::record::Provider;
use crate::actionlog::{
    Action, ActionLog, AgentLogRecord, EmailProvider, Outcome, Recipient, SmsProvider,
};
use crate::messaging::pricing::PriceTable;
use crate::messaging::{
    Channel, DEFAULT_SEND_TIMEOUT, EmailAddress, MessageProvider, Messaging, OutboundMessage,
    PhoneNumber, SendError, Sent, To,
};

/// The action group the tools belong to, for runtimes that group them.
pub const ACTION_GROUP: &str = "voice-tools";

/// One callable function: its name, what it is for, and a JSON Schema of
/// its parameters (all strings, as Bedrock passes them).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

fn strings(props: &[(&str, &str)], required: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|(name, doc)| {
            (
                (*name).to_owned(),
                json!({"type": "string", "description": doc}),
            )
        })
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The four tools of ARCHITECTURE.md section 6.
pub fn catalog() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "query_app_server",
            description: "Reads from the business app server: free appointment slots, services, prices, opening hours.",
            parameters: strings(
                &[
                    (
                        "resource",
                        "what to read: availability (default), services, hours, or appointments",
                    ),
                    ("date", "day asked about, YYYY-MM-DD"),
                    ("service", "service asked about"),
                    ("query", "the caller's question, in their words"),
                ],
                &[],
            ),
        },
        ToolSpec {
            name: "create_appointment",
            description: "Books an appointment in the business app server.",
            parameters: strings(
                &[
                    ("date", "YYYY-MM-DD"),
                    ("time", "HH:MM, 24-hour, local time of the location"),
                    ("service", "the service booked"),
                    ("customerName", "the caller's name"),
                    ("customerPhone", "the caller's phone number, E.164"),
                    ("notes", "anything else the caller asked for"),
                ],
                &["date", "time", "customerName"],
            ),
        },
        ToolSpec {
            name: "send_external_message",
            description: "Sends an SMS, an email or a WhatsApp message (channel meta) to the caller, for example a booking confirmation.",
            parameters: strings(
                &[
                    ("channel", "sms, email or meta (WhatsApp)"),
                    (
                        "to",
                        "phone number in E.164 for sms and meta, email address for email",
                    ),
                    ("message", "the text to send"),
                    ("subject", "email subject"),
                    ("name", "recipient's name"),
                    ("userId", "recipient's user id in the app, when known"),
                ],
                &["channel", "to", "message"],
            ),
        },
        ToolSpec {
            name: "send_elixir_notification",
            description: "Notifies the business's staff screens in real time (for example: a caller asks for a human).",
            parameters: strings(
                &[
                    ("event", "short event name, such as callback_requested"),
                    ("message", "what the staff should know"),
                ],
                &["message"],
            ),
        },
    ]
}

/// Where the HTTP tools go.
#[derive(Debug, Clone)]
pub struct ToolsConfig {
    /// Base URL of the business app server (availability, bookings).
    pub app_server_url: Option<String>,
    /// Bearer token for the app server, if it wants one.
    pub app_server_token: Option<SecretString>,
    /// Base URL of the real-time notification (Elixir) server.
    pub notification_url: Option<String>,
    /// Longest one tool's HTTP call may take.
    pub timeout: Duration,
    /// Longest a message send may run, its one resend included. A send
    /// goes on past the turn's deadline, in the background, and is
    /// recorded either way; one still running at this bound is recorded
    /// as of unknown outcome. [`send_deadline`] of the providers' timeout.
    pub send_deadline: Duration,
    /// Prices of messages whose provider reports none (`--price-table`).
    pub prices: Arc<PriceTable>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            app_server_url: None,
            app_server_token: None,
            notification_url: None,
            timeout: Duration::from_secs(4),
            send_deadline: send_deadline(DEFAULT_SEND_TIMEOUT),
            prices: Arc::default(),
        }
    }
}

/// The bound of a whole send when one attempt at a provider takes at most
/// `timeout`: two attempts, the longest pause between them, and a second
/// to spare. Past it the provider's client is not keeping its own timeout.
pub fn send_deadline(timeout: Duration) -> Duration {
    timeout * 2 + RESEND_AFTER + Duration::from_secs(1)
}

/// Most of a tool's answer the agent gets to read.
const MAX_TOOL_BODY: usize = 8 * 1024;
/// Wait before the one resend of a message a provider did not take.
const RESEND_AFTER: Duration = Duration::from_millis(250);
/// `query_app_server` resources, so a model cannot walk the app server.
const RESOURCES: [&str; 4] = ["availability", "services", "hours", "appointments"];

/// The tool registry: runs each call against the app server, the
/// notification server or a messaging provider, and logs every message
/// sent (or not) to the action log.
pub struct Tools {
    http: reqwest::Client,
    config: ToolsConfig,
    messaging: Messaging,
    log: ActionLog,
    sends: Sends,
}

/// The message sends still running, each in a task of its own. Shutdown
/// waits for them before the action log's last flush, so that their
/// records are shipped too.
#[derive(Debug, Clone, Default)]
pub struct Sends(TaskTracker);

impl Sends {
    /// How many sends are running.
    pub fn running(&self) -> usize {
        self.0.len()
    }

    /// Waits until every send started has recorded its outcome. Each is
    /// bounded by [`ToolsConfig::send_deadline`], so this is too.
    pub async fn finished(&self) {
        self.0.close();
        self.0.wait().await;
    }
}

fn failure(body: impl Into<String>) -> ToolOutput {
    ToolOutput {
        body: body.into(),
        ok: false,
    }
}

fn clip(mut text: String) -> String {
    if text.len() > MAX_TOOL_BODY {
        let mut cut = MAX_TOOL_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

impl Tools {
    pub fn new(config: ToolsConfig, messaging: Messaging, log: ActionLog) -> Tools {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("a client without custom TLS roots always builds");
        Tools {
            http,
            config,
            messaging,
            log,
            sends: Sends::default(),
        }
    }

    /// The configured providers, for the start-up report.
    pub fn messaging(&self) -> &Messaging {
        &self.messaging
    }

    /// The sends still running, for shutdown to wait on.
    pub fn sends(&self) -> Sends {
        self.sends.clone()
    }

    async fn query_app_server(&self, turn: &Turn, call: &ToolCall) -> ToolOutput {
        let Some(base) = &self.config.app_server_url else {
            return failure("no app server is configured; the availability cannot be checked");
        };
        let resource = call
            .parameters
            .get("resource")
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "availability".into());
        if !RESOURCES.contains(&resource.as_str()) {
            return failure(format!(
                "resource {resource:?} is not one of {}",
                RESOURCES.join(", ")
            ));
        }
        let mut query: Vec<(&str, &str)> = vec![
            ("businessId", &turn.business_id),
            ("locationId", &turn.location_id),
        ];
        // The tenant comes from the turn alone: a model's own businessId or
        // locationId would reach the app server as a second value, and
        // many servers read the last one.
        query.extend(
            call.parameters
                .iter()
                .filter(|(k, _)| {
                    !["resource", "businessId", "locationId"]
                        .iter()
                        .any(|own| k.eq_ignore_ascii_case(own))
                })
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let request = self
            .http
            .get(format!("{}/api/v1/{resource}", base.trim_end_matches('/')))
            .query(&query);
        self.app_call(request, "app server").await
    }

    async fn create_appointment(&self, turn: &Turn, call: &ToolCall) -> ToolOutput {
        let Some(base) = &self.config.app_server_url else {
            return failure("no app server is configured; the appointment cannot be booked");
        };
        if let Some(missing) = ["date", "time", "customerName"]
            .iter()
            .find(|p| call.parameters.get(**p).is_none_or(|v| v.trim().is_empty()))
        {
            return failure(format!("parameter {missing} is required to book"));
        }
        let mut body = Map::new();
        for (k, v) in &call.parameters {
            body.insert(k.clone(), json!(v));
        }
        body.insert("businessId".into(), json!(turn.business_id));
        body.insert("locationId".into(), json!(turn.location_id));
        body.insert("agentSessionId".into(), json!(turn.session_id));
        body.insert("source".into(), json!(turn.source));
        let request = self
            .http
            .post(format!(
                "{}/api/v1/appointments",
                base.trim_end_matches('/')
            ))
            .json(&body);
        self.app_call(request, "app server").await
    }

    async fn notify(&self, turn: &Turn, call: &ToolCall) -> ToolOutput {
        let Some(base) = &self.config.notification_url else {
            return failure("no notification server is configured");
        };
        let Some(message) = call
            .parameters
            .get("message")
            .filter(|m| !m.trim().is_empty())
        else {
            return failure("parameter message is required");
        };
        let event = call
            .parameters
            .get("event")
            .map_or("agent_notification", String::as_str);
        let request = self
            .http
            .post(format!(
                "{}/api/v1/notifications",
                base.trim_end_matches('/')
            ))
            .json(&json!({
                "businessId": turn.business_id,
                "locationId": turn.location_id,
                "agentSessionId": turn.session_id,
                "source": turn.source,
                "event": event,
                "message": message,
            }));
        self.app_call(request, "notification server").await
    }

    async fn app_call(&self, mut request: reqwest::RequestBuilder, what: &str) -> ToolOutput {
        if let Some(token) = &self.config.app_server_token
            && what == "app server"
        {
            request = request.bearer_auth(token.expose_secret());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_success() {
                    ToolOutput {
                        body: clip(body),
                        ok: true,
                    }
                } else {
                    failure(clip(format!("the {what} answered {status}: {body}")))
                }
            }
            Err(e) if e.is_timeout() => failure(format!("the {what} did not answer in time")),
            Err(_) => failure(format!("the {what} cannot be reached")),
        }
    }

    async fn send_message(&self, turn: &Turn, call: &ToolCall) -> ToolOutput {
        let param = |name: &str| {
            call.parameters
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let Some(channel) = param("channel").and_then(Channel::parse) else {
            return failure("parameter channel must be sms, email or meta");
        };
        // Without a recipient there is nobody to log the attempt against:
        // like an unknown channel, it is refused before it is an action.
        if param("to").is_none() {
            return failure("parameter to is required");
        }
        let provider = match self.messaging.provider_for(&turn.business_id, channel) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %channel, business_id = %turn.business_id, "message not sent: {e}");
                return failure(e.to_string());
            }
        };
        let to_raw = param("to").unwrap_or_default();
        let text = param("message").unwrap_or_default().to_owned();
        // Email needs a subject; a model that gave none gets the start of
        // the text, which is what a person would see first anyway.
        let subject = param("subject")
            .map(str::to_owned)
            .or_else(|| (channel == Channel::Email).then(|| default_subject(&text)));
        let recipient = Recipient {
            phone: (channel != Channel::Email)
                .then(|| to_raw.to_owned())
                .filter(|s| !s.is_empty()),
            email: (channel == Channel::Email)
                .then(|| to_raw.to_owned())
                .filter(|s| !s.is_empty()),
            user_id: param("userId").map(str::to_owned),
            name: param("name").map(str::to_owned),
        };
        let mut record = SendRecord {
            channel,
            provider: provider.provider(),
            stand_in: provider.stand_in(),
            business_id: turn.business_id.clone(),
            location_id: turn.location_id.clone(),
            session_id: turn.session_id.clone(),
            recipient,
            subject: subject.clone(),
            length: text.chars().count(),
            log: self.log.clone(),
            prices: self.config.prices.clone(),
            phone: None,
        };
        let message = match parse_message(channel, to_raw, &text, subject) {
            Ok(message) => message,
            Err(e) => return record.write(Err(e)),
        };
        if let To::Phone(phone) = &message.to {
            record.phone = Some(phone.clone());
        }
        // The send and its record run in a task of their own: the turn's
        // deadline, or a caller who hangs up, drops this future and not
        // the send, which records its outcome whenever it ends.
        let deadline = self.config.send_deadline;
        let task = self.sends.0.spawn(
            async move {
                let outcome =
                    match tokio::time::timeout(deadline, deliver(&provider, &message)).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(SendError::Unknown {
                            provider: provider.provider(),
                            message: format!(
                                "still sending after {} ms, given up on",
                                deadline.as_millis()
                            ),
                        }),
                    };
                record.write(outcome)
            }
            .in_current_span(),
        );
        task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the message send ended abnormally");
            failure("the message could not be sent because of an internal error")
        })
    }
}

/// Sends once, and once more only if the provider proved it did not take
/// the message (throttled, or not reached). An outcome that is unknown is
/// never sent again: none of the providers takes an idempotency key that
/// would make a resend safe (see `messaging`).
async fn deliver(
    provider: &Arc<dyn MessageProvider>,
    message: &OutboundMessage,
) -> Result<Sent, SendError> {
    match provider.send(message).await {
        Err(e) if e.is_retryable() => {
            tracing::info!(provider = %provider.provider(), error = %e, "sending once more");
            tokio::time::sleep(crate::retry::jittered(RESEND_AFTER)).await;
            provider.send(message).await
        }
        other => other,
    }
}

/// What the action-log record of one message attempt says besides its
/// outcome, and the log it goes to.
struct SendRecord {
    channel: Channel,
    provider: Provider,
    /// Set when the provider keeps the message instead of sending it.
    stand_in: Option<&'static str>,
    business_id: String,
    location_id: String,
    session_id: String,
    recipient: Recipient,
    subject: Option<String>,
    /// Characters of the text.
    length: usize,
    log: ActionLog,
    /// What messages cost when the provider does not say.
    prices: Arc<PriceTable>,
    /// The recipient's number once checked, for its calling code.
    phone: Option<PhoneNumber>,
}

impl SendRecord {
    /// Logs the one record of this attempt with `outcome`, and says what
    /// the agent is told.
    fn write(self, outcome: Result<Sent, SendError>) -> ToolOutput {
        let channel = self.channel;
        // Only a message the provider took costs money; a stand-in sends
        // nothing, so its messages cost nothing.
        let cost = match &outcome {
            Ok(sent) if self.stand_in.is_none() => self.prices.cost(
                sent.price.as_ref(),
                self.provider,
                channel,
                self.phone.as_ref(),
            ),
            _ => None,
        };
        let (log_outcome, output) = match outcome {
            Ok(sent) => (
                Outcome::Sent {
                    external_id: Some(sent.external_id.clone()),
                },
                ToolOutput {
                    body: json!({"sent": true, "channel": channel.to_string(), "id": sent.external_id}).to_string(),
                    ok: true,
                },
            ),
            Err(e) if e.is_unknown() => {
                tracing::warn!(provider = %self.provider, error = %e, "message outcome unknown; not sent again");
                (
                    Outcome::Unknown {
                        error: e.to_string(),
                    },
                    failure(format!(
                        "{e}; it may still arrive, so it was not sent again: do not send it again"
                    )),
                )
            }
            Err(e) => (
                Outcome::failed(e.to_string()),
                failure(if e.is_retryable() {
                    format!("{e}; the message may be sent again later")
                } else {
                    e.to_string()
                }),
            ),
        };
        let action = Action {
            business_id: self.business_id,
            location_id: self.location_id,
            agent_session_id: Some(self.session_id),
            recipient: self.recipient,
            outcome: log_outcome,
        };
        let built = match (channel, self.provider) {
            (Channel::Sms, Provider::AwsSns) => {
                AgentLogRecord::sms(action, SmsProvider::AwsSns, self.length)
            }
            (Channel::Sms, _) => AgentLogRecord::sms(action, SmsProvider::Twilio, self.length),
            (Channel::Email, p) => AgentLogRecord::email(
                action,
                match p {
                    Provider::Smtp => EmailProvider::Smtp,
                    Provider::Gmail => EmailProvider::Gmail,
                    _ => EmailProvider::AwsSes,
                },
                self.subject,
                self.length,
            ),
            (Channel::Meta, _) => AgentLogRecord::meta_message(action, self.length),
        };
        match built {
            Ok(mut record) => {
                record.data.metadata.cost = cost;
                if let Some(stand_in) = self.stand_in {
                    record
                        .data
                        .metadata
                        .extra
                        .insert("standIn".into(), json!(stand_in));
                }
                if let Err(e) = self.log.log(&record) {
                    tracing::error!(error = %e, "the message outcome could not be logged");
                }
            }
            Err(e) => tracing::error!(error = %e, "the message outcome could not be logged"),
        }
        output
    }
}

/// The first line of `text`, cut to a subject's usual length.
fn default_subject(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(78) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Checks the recipient and text of a message for `channel`.
fn parse_message(
    channel: Channel,
    to: &str,
    text: &str,
    subject: Option<String>,
) -> Result<OutboundMessage, SendError> {
    let invalid = |e: crate::messaging::AddressError| SendError::Invalid(e.to_string());
    let to = match channel {
        Channel::Email => To::Email(EmailAddress::parse("to", to).map_err(invalid)?),
        Channel::Sms | Channel::Meta => To::Phone(PhoneNumber::parse("to", to).map_err(invalid)?),
    };
    if text.is_empty() {
        return Err(SendError::Invalid("message: must not be empty".into()));
    }
    Ok(OutboundMessage {
        to,
        subject,
        text: text.to_owned(),
    })
}

impl ToolRunner for Tools {
    fn run<'a>(&'a self, turn: &'a Turn, call: &'a ToolCall) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let span =
                tracing::info_span!("tool", tool = %call.function, session = %turn.session_id);
            let output = async {
                match call.function.as_str() {
                    "query_app_server" => self.query_app_server(turn, call).await,
                    "create_appointment" => self.create_appointment(turn, call).await,
                    "send_external_message" => self.send_message(turn, call).await,
                    "send_elixir_notification" => self.notify(turn, call).await,
                    other => failure(format!("there is no tool named {other}")),
                }
            }
            .instrument(span)
            .await;
            tracing::debug!(tool = %call.function, ok = output.ok, "tool ran");
            output
        })
    }
}
