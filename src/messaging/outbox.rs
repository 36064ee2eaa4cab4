//! The outbox: the messaging provider `local` uses when no real one is
//! configured. Each SMS, email and WhatsApp message is written to a SQLite
//! file instead of being sent, and the send succeeds with the outbox's id
//! for it, so a first run shows the whole story (a booking, its
//! confirmation, the action-log record) without any provider account.
//!
//! It checks a message as the providers do (a phone number for SMS and
//! WhatsApp, an email address and a subject for email, some text) and
//! refuses what they refuse, so nothing passes here that would fail later.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rusqlite::{Connection, params};

use crate::sqlite::OpenError;

use super::{Channel, MessageProvider, Messaging, OutboundMessage, SendError, Sent};
use crate::actionlog::record::Provider;

/// What the action-log record of an outbox message says in
/// `data.metadata.standIn`.
pub const STAND_IN: &str = "outbox";

/// The outbox file, shared by its three providers.
pub struct Outbox {
    db: Mutex<Connection>,
    path: PathBuf,
}

impl Outbox {
    /// Opens (and creates) the outbox at `path`.
    pub fn open(path: &Path) -> Result<Arc<Outbox>, OpenError> {
        let db = crate::sqlite::open(
            "the outbox",
            path,
            "CREATE TABLE IF NOT EXISTS messages (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                channel TEXT NOT NULL,
                recipient TEXT NOT NULL,
                subject TEXT,
                text TEXT NOT NULL
            );",
        )?;
        Ok(Arc::new(Outbox {
            db: Mutex::new(db),
            path: path.to_owned(),
        }))
    }

    /// The file messages are written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A provider per channel, all writing here.
    pub fn messaging(self: &Arc<Self>) -> Messaging {
        [Channel::Sms, Channel::Email, Channel::Meta]
            .into_iter()
            .fold(Messaging::default(), |messaging, channel| {
                messaging.with(Arc::new(OutboxProvider {
                    outbox: Arc::clone(self),
                    channel,
                }))
            })
    }

    fn write(
        &self,
        channel: Channel,
        recipient: &str,
        subject: Option<&str>,
        text: &str,
    ) -> Result<String, SendError> {
        let id = format!("outbox-{}", uuid::Uuid::new_v4());
        let db = self
            .db
            .lock()
            .map_err(|_| SendError::Invalid("the outbox is unusable after a crash".into()))?;
        db.execute(
            "INSERT INTO messages (id, created_at, channel, recipient, subject, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                channel.to_string(),
                recipient,
                subject,
                text
            ],
        )
        .map_err(|e| SendError::Retryable {
            provider: provider_of(channel),
            message: format!("the outbox {} cannot be written: {e}", self.path.display()),
        })?;
        Ok(id)
    }
}

/// The outbox as the provider of one channel.
struct OutboxProvider {
    outbox: Arc<Outbox>,
    channel: Channel,
}

/// The provider an outbox message is recorded under: the action-log
/// format names only real providers, so the record carries the one a
/// deployment would most likely use, and `metadata.standIn` says it went
/// to the outbox.
fn provider_of(channel: Channel) -> Provider {
    match channel {
        Channel::Sms => Provider::Twilio,
        Channel::Email => Provider::Smtp,
        Channel::Meta => Provider::Meta,
    }
}

impl MessageProvider for OutboxProvider {
    fn provider(&self) -> Provider {
        provider_of(self.channel)
    }

    fn channel(&self) -> Channel {
        self.channel
    }

    fn stand_in(&self) -> Option<&'static str> {
        Some(STAND_IN)
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let provider = self.provider();
            let (recipient, subject) = match self.channel {
                Channel::Email => {
                    let (address, subject) = message.email_for(provider)?;
                    (address.to_string(), Some(subject.to_owned()))
                }
                Channel::Sms | Channel::Meta => (message.phone_for(provider)?.to_string(), None),
            };
            let id =
                self.outbox
                    .write(self.channel, &recipient, subject.as_deref(), &message.text)?;
            tracing::info!(channel = %self.channel, id = %id, "message written to the outbox, not sent");
            Ok(Sent {
                external_id: id,
                price: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{EmailAddress, PhoneNumber, To};

    fn rows(outbox: &Outbox) -> Vec<(String, String, String, Option<String>, String)> {
        let db = outbox.db.lock().unwrap();
        let mut query = db
            .prepare(
                "SELECT id, channel, recipient, subject, text FROM messages ORDER BY created_at",
            )
            .unwrap();
        query
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[tokio::test]
    async fn each_channel_is_written_to_the_outbox_and_acknowledged_with_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.sqlite")).unwrap();
        let messaging = outbox.messaging();
        let phone = To::Phone(PhoneNumber::parse("to", "+40721000111").unwrap());
        let email = To::Email(EmailAddress::parse("to", "ana@example.com").unwrap());
        let sms = messaging.provider_for("B1", Channel::Sms).unwrap();
        assert_eq!(sms.stand_in(), Some(STAND_IN));
        let sent = sms
            .send(&OutboundMessage {
                to: phone.clone(),
                subject: None,
                text: "Booked: 10:00".into(),
            })
            .await
            .unwrap();
        assert!(sent.external_id.starts_with("outbox-"), "{sent:?}");
        let mail = messaging.provider_for("B1", Channel::Email).unwrap();
        mail.send(&OutboundMessage {
            to: email.clone(),
            subject: Some("Booking".into()),
            text: "Booked".into(),
        })
        .await
        .unwrap();
        let written = rows(&outbox);
        assert_eq!(written.len(), 2);
        assert_eq!(
            written[0],
            (
                sent.external_id,
                "sms".into(),
                "+40721000111".into(),
                None,
                "Booked: 10:00".into()
            )
        );
        assert_eq!(written[1].1, "email");
        assert_eq!(written[1].3.as_deref(), Some("Booking"));

        // What a real provider refuses, the outbox refuses too.
        let wrong = mail
            .send(&OutboundMessage {
                to: phone,
                subject: Some("s".into()),
                text: "t".into(),
            })
            .await;
        assert!(matches!(wrong, Err(SendError::Invalid(_))), "{wrong:?}");
        let no_subject = mail
            .send(&OutboundMessage {
                to: email,
                subject: None,
                text: "t".into(),
            })
            .await;
        assert!(
            matches!(no_subject, Err(SendError::Invalid(_))),
            "{no_subject:?}"
        );
        assert_eq!(
            messaging.describe(),
            "sms: outbox, email: outbox, meta: outbox"
        );
        assert_eq!(rows(&outbox).len(), 2, "nothing written for a refusal");
    }
}
