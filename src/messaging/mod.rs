//! Outbound messages the agent sends (SMS, email, WhatsApp), through
//! providers behind one trait. Recipients are parsed before any provider
//! is called; provider errors are classified where they are parsed.
//!
//! Every provider makes one attempt with a short timeout. A failure is
//! classified by what it proves: the message was not taken (it may be sent
//! again), or nothing is known (the request may have been taken, so it
//! must not be sent again).

pub mod address;
mod aws;
pub mod config;
pub mod outbox;
pub mod pricing;
mod rest;
pub mod ses;
pub mod smtp;
pub mod sns;
pub mod twilio;
pub mod whatsapp;

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use address::{AddressError, EmailAddress, PhoneNumber};

use crate::actionlog::cost::Money;
use crate::actionlog::record::Provider;

/// Longest one send may take at a provider unless configured, connection
/// included. Sending an SMS or an email takes well under a second; a
/// provider that has not answered in 4 s is in trouble, and a send that
/// starts after the model's first round still ends inside the turn's
/// 8 s deadline, leaving the model time to tell the caller.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(4);

/// The three kinds of message the agent can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Sms,
    Email,
    /// WhatsApp through the Meta Cloud API.
    Meta,
}

impl Channel {
    /// Parses the `channel` tool parameter (`sms`, `email` or `meta`;
    /// `whatsapp` is taken for `meta`).
    pub fn parse(value: &str) -> Option<Channel> {
        match value.trim().to_ascii_lowercase().as_str() {
            "sms" => Some(Channel::Sms),
            "email" => Some(Channel::Email),
            "meta" | "whatsapp" => Some(Channel::Meta),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Meta => "meta",
        })
    }
}

/// Where a message goes, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Phone(PhoneNumber),
    Email(EmailAddress),
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub to: To,
    /// Email subject; ignored by SMS and WhatsApp.
    pub subject: Option<String>,
    pub text: String,
}

impl OutboundMessage {
    /// The phone number to send to, or why `provider` (an SMS or WhatsApp
    /// provider) cannot send this message.
    pub fn phone_for(&self, provider: Provider) -> Result<&PhoneNumber, SendError> {
        self.check_text()?;
        match &self.to {
            To::Phone(phone) => Ok(phone),
            To::Email(_) => Err(SendError::Invalid(format!(
                "{provider} sends to phone numbers, not to email addresses"
            ))),
        }
    }

    /// The address and subject to send, or why `provider` (an email
    /// provider) cannot send this message.
    pub fn email_for(&self, provider: Provider) -> Result<(&EmailAddress, &str), SendError> {
        self.check_text()?;
        let address = match &self.to {
            To::Email(address) => address,
            To::Phone(_) => {
                return Err(SendError::Invalid(format!(
                    "{provider} sends to email addresses, not to phone numbers"
                )));
            }
        };
        let subject = self.subject.as_deref().map(str::trim).unwrap_or_default();
        if subject.is_empty() {
            return Err(SendError::Invalid("an email needs a subject".into()));
        }
        // A line break in a header would let the subject add headers of its own.
        if subject.chars().any(char::is_control) {
            return Err(SendError::Invalid(
                "the email subject contains a control character".into(),
            ));
        }
        Ok((address, subject))
    }

    fn check_text(&self) -> Result<(), SendError> {
        if self.text.trim().is_empty() {
            return Err(SendError::Invalid("the message text is empty".into()));
        }
        Ok(())
    }
}

/// What a provider says after taking a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The provider's id for the message (Twilio `sid`, SNS / SES
    /// `MessageId`, WhatsApp `messages[0].id`, SMTP queue id or the
    /// Message-ID we set).
    pub external_id: String,
    /// The price the provider reported (Twilio's `price` in
    /// `price_unit`), when it did; the others' answers carry none.
    pub price: Option<Money>,
}

/// Why a message was not sent. The variants tell a caller whether trying
/// again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message itself is wrong (bad recipient, empty text, a channel
    /// the provider does not serve); nothing was sent to the provider.
    #[error("{0}")]
    Invalid(String),
    /// The provider refused the message; sending it again will not help.
    #[error("{provider} refused the message: {message}")]
    Permanent { provider: Provider, message: String },
    /// Our credentials for the provider were refused.
    #[error("{provider} refused our credentials: {message}")]
    Auth { provider: Provider, message: String },
    /// Throttled, or unreachable before the request left (connection
    /// refused, DNS); the provider did not take the message, so it may be
    /// sent again.
    #[error("{provider} is unavailable: {message}")]
    Retryable { provider: Provider, message: String },
    /// The request may have reached the provider and nothing says whether
    /// it took the message: no answer in time after the request left, a
    /// connection lost mid-request, a server error, or an acceptance we
    /// could not read. Sending again could deliver it twice.
    #[error("{provider} did not confirm the message: {message}")]
    Unknown { provider: Provider, message: String },
    /// No provider is configured for this channel (for this tenant).
    #[error("no {0} provider is configured")]
    NotConfigured(Channel),
}

impl SendError {
    /// Whether the provider did not take the message and sending it again
    /// later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    /// Whether the provider may have taken the message: it must not be sent
    /// again, and it is recorded as of unknown outcome.
    pub fn is_unknown(&self) -> bool {
        matches!(self, SendError::Unknown { .. })
    }
}

/// A provider that sends messages on one channel.
pub trait MessageProvider: Send + Sync {
    /// The provider as the action log names it.
    fn provider(&self) -> Provider;
    /// The channel it serves.
    fn channel(&self) -> Channel;
    /// For a stand-in that keeps messages instead of sending them (the
    /// outbox of `local`), its name; the action-log record says it in
    /// `data.metadata.standIn`.
    fn stand_in(&self) -> Option<&'static str> {
        None
    }
    /// Sends `message`, or says why not.
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>>;
}

/// The providers configured, and which one each tenant uses per channel.
#[derive(Clone, Default)]
pub struct Messaging {
    /// The provider each channel uses unless a tenant says otherwise.
    defaults: BTreeMap<Channel, Arc<dyn MessageProvider>>,
    /// Every configured provider, by its action-log name.
    by_name: BTreeMap<(Channel, &'static str), Arc<dyn MessageProvider>>,
    /// Per business: channel -> provider name.
    tenants: BTreeMap<String, BTreeMap<Channel, &'static str>>,
}

impl Messaging {
    /// Adds `provider`; the first one added for a channel is its default.
    pub fn with(mut self, provider: Arc<dyn MessageProvider>) -> Self {
        let channel = provider.channel();
        self.by_name.insert(
            (channel, provider_name(provider.provider())),
            provider.clone(),
        );
        self.defaults.entry(channel).or_insert(provider);
        self
    }

    /// Makes `provider` (an action-log provider name such as `twilio`) the
    /// default for `channel`. Errors when no such provider was added.
    pub fn prefer(mut self, channel: Channel, provider: &str) -> Result<Self, String> {
        let found = self.lookup(channel, provider)?;
        self.defaults.insert(channel, found);
        Ok(self)
    }

    /// Routes `business_id`'s messages on `channel` to `provider`.
    pub fn route(
        mut self,
        business_id: &str,
        channel: Channel,
        provider: &str,
    ) -> Result<Self, String> {
        let found = self.lookup(channel, provider)?;
        self.tenants
            .entry(business_id.to_owned())
            .or_default()
            .insert(channel, provider_name(found.provider()));
        Ok(self)
    }

    fn lookup(&self, channel: Channel, provider: &str) -> Result<Arc<dyn MessageProvider>, String> {
        self.by_name
            .iter()
            .find(|((c, name), _)| *c == channel && *name == provider)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .by_name
                    .keys()
                    .filter(|(c, _)| *c == channel)
                    .map(|(_, n)| *n)
                    .collect();
                format!(
                    "{provider} is not a configured {channel} provider (configured: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )
            })
    }

    /// The provider `business_id` uses for `channel`.
    pub fn provider_for(
        &self,
        business_id: &str,
        channel: Channel,
    ) -> Result<Arc<dyn MessageProvider>, SendError> {
        let routed = self
            .tenants
            .get(business_id)
            .and_then(|routes| routes.get(&channel))
            .and_then(|name| self.by_name.get(&(channel, *name)));
        routed
            .or_else(|| self.defaults.get(&channel))
            .cloned()
            .ok_or(SendError::NotConfigured(channel))
    }

    /// One line per channel for the start-up report.
    pub fn describe(&self) -> String {
        [Channel::Sms, Channel::Email, Channel::Meta]
            .iter()
            .map(|c| {
                let name = self.defaults.get(c).map_or("not configured", |p| {
                    p.stand_in().unwrap_or_else(|| provider_name(p.provider()))
                });
                format!("{c}: {name}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(provider_name(*self))
    }
}

/// The action-log name of a provider (`data.provider`).
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::AwsSns => "aws_sns",
        Provider::Twilio => "twilio",
        Provider::Meta => "meta",
        Provider::Gmail => "gmail",
        Provider::AwsSes => "aws_ses",
        Provider::Smtp => "smtp",
        Provider::Elevenlabs => "elevenlabs",
    }
}
