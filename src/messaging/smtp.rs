//! Email through an SMTP server (a relay or a mail provider's submission
//! port), one connection per message.
//!
//! The external id is the `Message-ID` we set, `<uuid@from-domain>`: it is
//! in every copy of the message, so a bounce or a recipient's headers lead
//! back to the action log. Servers' queue ids (in the 250 reply to DATA)
//! have no common format and only mean something to that server; they are
//! logged at debug level.

use futures::future::BoxFuture;
use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::config::MessagingConfigError;
use super::{Channel, EmailAddress, MessageProvider, OutboundMessage, SendError, Sent};
use crate::actionlog::record::Provider;

/// How the connection to the server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (submission, port 587).
    Starttls,
    /// No encryption at all: only for a relay on the same host or pod
    /// network. Mail crosses the wire in clear, so credentials are refused.
    None,
}

impl SmtpSecurity {
    /// The port that goes with this security (465, 587 or 25).
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        }
    }
}

/// How to reach the SMTP server and whom mail comes from. `Debug` shows
/// no secret.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name; also the name its TLS certificate must carry.
    pub host: String,
    /// [`SmtpSecurity::default_port`] unless set.
    pub port: u16,
    pub security: SmtpSecurity,
    /// Login, when the server wants one (with `password`).
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The `From` address; its domain also names our Message-IDs.
    pub from: EmailAddress,
    /// Display name shown with `from`, such as the salon's name.
    pub from_name: Option<String>,
    /// Longest one message may take, connection to QUIT;
    /// [`DEFAULT_SEND_TIMEOUT`](super::DEFAULT_SEND_TIMEOUT) by default.
    pub timeout: Duration,
}

impl SmtpConfig {
    /// Sends as `from` through `host` on the port that goes with `security`.
    pub fn new(host: impl Into<String>, security: SmtpSecurity, from: EmailAddress) -> Self {
        SmtpConfig {
            host: host.into(),
            port: security.default_port(),
            security,
            username: None,
            password: None,
            from,
            from_name: None,
            timeout: super::DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Sends email over SMTP with lettre.
pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain of our Message-IDs.
    domain: String,
    timeout: Duration,
}

impl fmt::Debug for SmtpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpProvider")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpProvider {
    /// Checks `config` and prepares the transport; errors name the setting.
    pub fn new(config: &SmtpConfig) -> Result<SmtpProvider, MessagingConfigError> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err(MessagingConfigError::setting(
                "smtp.host",
                "must not be empty",
            ));
        }
        if config.timeout.is_zero() {
            return Err(MessagingConfigError::setting(
                "smtp.timeout",
                "must be above zero",
            ));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .timeout(Some(config.timeout));
        let tls = || {
            TlsParameters::new(host.to_owned()).map_err(|e| {
                MessagingConfigError::setting("smtp.host", format!("cannot set up TLS: {e}"))
            })
        };
        builder = match config.security {
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::None => builder.tls(Tls::None),
        };
        match (&config.username, &config.password) {
            (None, None) => {}
            (Some(_), _) | (_, Some(_)) if config.security == SmtpSecurity::None => {
                return Err(MessagingConfigError::setting(
                    "smtp.security",
                    "is none, which would send the password in clear; use starttls or tls",
                ));
            }
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (Some(_), None) => {
                return Err(MessagingConfigError::setting(
                    "smtp.password",
                    "must be set with smtp.username",
                ));
            }
            (None, Some(_)) => {
                return Err(MessagingConfigError::setting(
                    "smtp.username",
                    "must be set with smtp.password",
                ));
            }
        }
        let address: Address = config.from.as_str().parse().map_err(|e| {
            MessagingConfigError::setting("smtp.from", format!("is not a usable address: {e}"))
        })?;
        let domain = address.domain().to_owned();
        Ok(SmtpProvider {
            transport: builder.build(),
            from: Mailbox::new(config.from_name.clone(), address),
            domain,
            timeout: config.timeout,
        })
    }

    async fn send_email(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        let (to, subject) = message.email_for(Provider::Smtp)?;
        let to: Address = to
            .as_str()
            .parse()
            .map_err(|e| SendError::Invalid(format!("cannot send to {to}: {e}")))?;
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.domain);
        let email = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|e| SendError::Invalid(format!("cannot build the email: {e}")))?;
        // lettre bounds only the connect; a server that stops answering
        // mid-conversation is cut off here. Which command it stopped at is
        // not known, so it may have been after the message was taken.
        let reply = tokio::time::timeout(self.timeout, self.transport.send(email))
            .await
            .map_err(|_| SendError::Unknown {
                provider: Provider::Smtp,
                message: format!("no answer within {} s", self.timeout.as_secs_f64()),
            })?
            .map_err(|e| classify(&e))?;
        tracing::debug!(
            %message_id,
            reply = %reply.message().collect::<Vec<_>>().join(" "),
            "SMTP server took the message"
        );
        Ok(Sent {
            external_id: message_id,
            price: None,
        })
    }
}

impl MessageProvider for SmtpProvider {
    fn provider(&self) -> Provider {
        Provider::Smtp
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_email(message))
    }
}

/// What an SMTP failure proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Retryable,
    Permanent,
    Unknown,
}

/// Classifies a negative SMTP reply by its code (RFC 5321 §4.2.1). The
/// server takes responsibility for a message only with the 250 that ends
/// DATA (RFC 5321 §4.1.1.4), so a 4xx or 5xx at any step means it did
/// not take it.
fn class_of_reply(code: u16) -> Class {
    match code {
        // 530: authentication required; 535: credentials invalid.
        530 | 535 => Class::Auth,
        400..=499 => Class::Retryable,
        _ => Class::Permanent,
    }
}

fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let provider = Provider::Smtp;
    let message = error.to_string();
    let class = match error.status() {
        Some(code) => class_of_reply(code.into()),
        // A certificate the server cannot prove, or a client-side fault:
        // trying again will meet the same refusal.
        None if error.is_tls() || error.is_client() => Class::Permanent,
        // No session: refused, unresolvable, or STARTTLS failed, all
        // before MAIL FROM. lettre marks these only in its Display
        // ("Connection error: ...").
        None if message.starts_with("Connection error") => Class::Retryable,
        // The connection broke or the reply was garbled mid-session,
        // possibly after the final dot of DATA.
        None => Class::Unknown,
    };
    match class {
        Class::Auth => SendError::Auth { provider, message },
        Class::Retryable => SendError::Retryable { provider, message },
        Class::Permanent => SendError::Permanent { provider, message },
        Class::Unknown => SendError::Unknown { provider, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_by_code() {
        assert_eq!(class_of_reply(535), Class::Auth);
        assert_eq!(class_of_reply(530), Class::Auth);
        assert_eq!(class_of_reply(451), Class::Retryable);
        assert_eq!(class_of_reply(421), Class::Retryable);
        assert_eq!(class_of_reply(452), Class::Retryable);
        assert_eq!(class_of_reply(454), Class::Retryable);
        assert_eq!(class_of_reply(550), Class::Permanent);
        assert_eq!(class_of_reply(554), Class::Permanent);
        assert_eq!(class_of_reply(552), Class::Permanent);
    }

    fn config() -> SmtpConfig {
        let from = EmailAddress::parse("smtp.from", "programari@salon.example.ro").unwrap();
        SmtpConfig::new("smtp.example.ro", SmtpSecurity::Starttls, from)
    }

    #[test]
    fn credentials_come_in_pairs_and_never_in_clear() {
        let mut plain = config();
        plain.security = SmtpSecurity::None;
        plain.username = Some("salon".into());
        plain.password = Some(SecretString::from("hunter2-secret"));
        let error = SmtpProvider::new(&plain).unwrap_err().to_string();
        assert!(error.starts_with("smtp.security: "), "{error}");
        assert!(!error.contains("hunter2-secret"));

        let mut half = config();
        half.username = Some("salon".into());
        assert!(
            SmtpProvider::new(&half)
                .unwrap_err()
                .to_string()
                .starts_with("smtp.password: ")
        );
        let mut half = config();
        half.password = Some(SecretString::from("x"));
        assert!(
            SmtpProvider::new(&half)
                .unwrap_err()
                .to_string()
                .starts_with("smtp.username: ")
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let mut config = config();
        config.username = Some("salon".into());
        config.password = Some(SecretString::from("hunter2-secret"));
        config.from_name = Some("Salon Ana".into());
        let provider = SmtpProvider::new(&config).unwrap();
        let shown = format!("{config:?} {provider:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("programari@salon.example.ro"));
        assert_eq!(provider.domain, "salon.example.ro");
    }

    #[test]
    fn ports_follow_security() {
        assert_eq!(config().port, 587);
        assert_eq!(SmtpSecurity::Tls.default_port(), 465);
        assert_eq!(SmtpSecurity::None.default_port(), 25);
    }
}
