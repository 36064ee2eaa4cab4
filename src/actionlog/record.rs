//! The agent-log record: one external action taken by the agent, in the
//! seed's format (`../shared/fixtures/agent-log/agent-log.schema.json`).
//!
//! Records are built and validated here, then encoded once on the caller's
//! side, so the shipper only moves bytes.

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::cost::Cost;

/// Largest record Kinesis accepts: data blob plus partition key.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Longest `businessId` / `locationId`; keeps the partition key under
/// Kinesis' 256-character limit.
pub const MAX_ID_LEN: usize = 100;

/// Provider error messages are free text from third parties; they are
/// clipped to this many bytes so a verbose error page cannot make the
/// failure record itself unloggable.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

const MAX_SHORT_FIELD: usize = 256;
const MAX_EMAIL: usize = 320;
const MAX_PHONE: usize = 64;
const MAX_SUBJECT: usize = 998;

/// Why a record could not be built, naming the JSON field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} bytes long; the limit is {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{field} contains {found:?}; ids may not contain ':', whitespace or control characters"
    )]
    BadIdCharacter { field: &'static str, found: char },
    #[error("a {action} record needs {needs}")]
    MissingRecipient {
        action: &'static str,
        needs: &'static str,
    },
    #[error("{field}: {reason}")]
    InvalidValue {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{field} is {found:?}, which is not allowed for a {action} record")]
    ProviderMismatch {
        field: &'static str,
        found: Provider,
        action: &'static str,
    },
    #[error(
        "record {request_id} is {size} bytes with its partition key; Kinesis accepts at most {max}"
    )]
    TooLarge {
        request_id: Uuid,
        size: usize,
        max: usize,
    },
}

/// `resourceType`: always `agent-log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceType {
    #[serde(rename = "agent-log")]
    AgentLog,
}

/// `operation`: always `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
}

/// `data.actionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    Sms,
    Email,
    VoiceCall,
    MetaMessage,
}

impl std::str::FromStr for ActionType {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [
            ActionType::Sms,
            ActionType::Email,
            ActionType::VoiceCall,
            ActionType::MetaMessage,
        ]
        .into_iter()
        .find(|t| t.name() == raw.trim())
        .ok_or_else(|| {
            format!("{raw:?} is not an action type; use sms, email, voice_call or meta_message")
        })
    }
}

impl ActionType {
    pub fn name(self) -> &'static str {
        match self {
            ActionType::Sms => "sms",
            ActionType::Email => "email",
            ActionType::VoiceCall => "voice_call",
            ActionType::MetaMessage => "meta_message",
        }
    }
}

/// `data.subAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubAction {
    Send,
    Receive,
    Failed,
}

/// `data.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    AwsSns,
    Twilio,
    Meta,
    Gmail,
    AwsSes,
    Smtp,
    Elevenlabs,
}

/// Providers that send SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    AwsSns,
    Twilio,
}

/// Providers that send email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProvider {
    AwsSes,
    Smtp,
    Gmail,
}

impl From<SmsProvider> for Provider {
    fn from(p: SmsProvider) -> Self {
        match p {
            SmsProvider::AwsSns => Provider::AwsSns,
            SmsProvider::Twilio => Provider::Twilio,
        }
    }
}

impl From<EmailProvider> for Provider {
    fn from(p: EmailProvider) -> Self {
        match p {
            EmailProvider::AwsSes => Provider::AwsSes,
            EmailProvider::Smtp => Provider::Smtp,
            EmailProvider::Gmail => Provider::Gmail,
        }
    }
}

/// `data.metadata.deliveryStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Delivered,
    Failed,
}

/// `data.recipient`: who the action was for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Recipient {
    /// A recipient known by phone number.
    pub fn phone(phone: impl Into<String>) -> Self {
        Recipient {
            phone: Some(phone.into()),
            ..Recipient::default()
        }
    }

    /// A recipient known by email address.
    pub fn email(email: impl Into<String>) -> Self {
        Recipient {
            email: Some(email.into()),
            ..Recipient::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.phone.is_none()
            && self.email.is_none()
            && self.user_id.is_none()
            && self.name.is_none()
    }
}

/// A call length in seconds; written as an integer when it is one, so
/// records round-trip byte-for-byte with the seed's samples.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        number(&self.0, s)
    }
}

/// Writes `value` as an integer when it is one, so that a record read and
/// written again is the same JSON.
pub(crate) fn number<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT_INT {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f64(*value)
    }
}

/// [`number`] for an optional value.
pub(crate) fn optional_number<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => number(v, s),
        None => s.serialize_none(),
    }
}

/// `data.metadata`: the per-action details. Fields the schema does not
/// name (a call's direction, say) go to `extra` and are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_duration: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_length: Option<u64>,
    /// What the action cost, when a price is known (the repository's
    /// schema, `schemas/agent-log.schema.json`, adds it to the seed's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data`: what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionData {
    pub action_type: ActionType,
    pub sub_action: SubAction,
    #[serde(default)]
    pub agent_session_id: Option<String>,
    pub triggered_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    pub provider: Provider,
    #[serde(default)]
    pub external_id: Option<String>,
    pub metadata: Metadata,
}

/// One agent-log record, as written to the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentLogRecord {
    pub resource_type: ResourceType,
    pub operation: Operation,
    pub business_id: String,
    pub location_id: String,
    pub data: ActionData,
    pub timestamp: DateTime<Utc>,
    pub request_id: Uuid,
}

/// How the action ended, from the agent's side.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Handed to the provider; `external_id` is the provider's id for it.
    Sent { external_id: Option<String> },
    /// Received from the outside (an inbound call or message).
    Received { external_id: Option<String> },
    /// The provider refused it or could not be reached.
    Failed { error: String },
    /// The request may have reached the provider, and nothing says whether
    /// it took it (no answer in time after the request left, a server
    /// error). The schema's `deliveryStatus` has no value for this, so it
    /// is written as `pending` with `errorMessage` starting
    /// [`UNKNOWN_OUTCOME`]: the provider may still deliver it.
    Unknown { error: String },
}

/// How the `errorMessage` of a record whose outcome is unknown begins.
pub const UNKNOWN_OUTCOME: &str = "outcome unknown: ";

impl Outcome {
    /// A failure with this message (clipped to [`MAX_ERROR_MESSAGE_BYTES`]
    /// when the record is built).
    pub fn failed(error: impl Into<String>) -> Self {
        Outcome::Failed {
            error: error.into(),
        }
    }
}

fn clip(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The parts every action shares: who, in which session, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub business_id: String,
    pub location_id: String,
    pub agent_session_id: Option<String>,
    pub recipient: Recipient,
    pub outcome: Outcome,
}

/// A voice conversation handled by ElevenLabs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VoiceCall {
    pub conversation_id: String,
    pub call_duration_secs: Option<f64>,
    /// Further metadata (transcript, direction, ...), kept as given; a
    /// `cost` in it becomes the record's typed `data.metadata.cost`.
    pub extra: Map<String, Value>,
}

/// The agent that triggers every action the bridge logs.
pub const TRIGGERED_BY_BEDROCK: &str = "bedrock_agent";

impl AgentLogRecord {
    /// An SMS sent, received or failed.
    pub fn sms(
        action: Action,
        provider: SmsProvider,
        message_length: usize,
    ) -> Result<Self, RecordError> {
        let metadata = Metadata {
            message_length: Some(message_length as u64),
            ..Metadata::default()
        };
        Self::build(action, ActionType::Sms, provider.into(), metadata)
    }

    /// An email sent, received or failed.
    pub fn email(
        action: Action,
        provider: EmailProvider,
        subject: Option<String>,
        message_length: usize,
    ) -> Result<Self, RecordError> {
        let metadata = Metadata {
            subject,
            message_length: Some(message_length as u64),
            ..Metadata::default()
        };
        Self::build(action, ActionType::Email, provider.into(), metadata)
    }

    /// A WhatsApp / Messenger message through Meta.
    pub fn meta_message(action: Action, message_length: usize) -> Result<Self, RecordError> {
        let metadata = Metadata {
            message_length: Some(message_length as u64),
            ..Metadata::default()
        };
        Self::build(action, ActionType::MetaMessage, Provider::Meta, metadata)
    }

    /// A voice conversation through ElevenLabs.
    pub fn voice_call(action: Action, call: VoiceCall) -> Result<Self, RecordError> {
        let mut extra = call.extra;
        let cost = extra
            .remove("cost")
            .map(serde_json::from_value::<Cost>)
            .transpose()
            .map_err(|_| RecordError::InvalidValue {
                field: "data.metadata.cost",
                reason: "must be an object with amount, currency and source",
            })?;
        let metadata = Metadata {
            conversation_id: Some(call.conversation_id),
            call_duration: call.call_duration_secs.map(Seconds),
            cost,
            extra,
            ..Metadata::default()
        };
        Self::build(
            action,
            ActionType::VoiceCall,
            Provider::Elevenlabs,
            metadata,
        )
    }

    /// Gives the record the request id `event` always maps to (a UUID v5),
    /// so that a webhook delivered twice, to one replica or to two, yields
    /// records with one `requestId`, as a retried record would: the
    /// consumer keeps the first.
    pub fn for_event(mut self, event: &str) -> Self {
        self.request_id = Uuid::new_v5(&EVENT_NAMESPACE, event.as_bytes());
        self
    }

    fn build(
        action: Action,
        action_type: ActionType,
        provider: Provider,
        mut metadata: Metadata,
    ) -> Result<Self, RecordError> {
        let (sub_action, external_id, status) = match action.outcome {
            Outcome::Sent { external_id } => (SubAction::Send, external_id, DeliveryStatus::Sent),
            Outcome::Received { external_id } => {
                (SubAction::Receive, external_id, DeliveryStatus::Delivered)
            }
            Outcome::Failed { error } => {
                metadata.error_message = Some(clip(error, MAX_ERROR_MESSAGE_BYTES));
                (SubAction::Failed, None, DeliveryStatus::Failed)
            }
            Outcome::Unknown { error } => {
                let error = format!("{UNKNOWN_OUTCOME}{error}");
                metadata.error_message = Some(clip(error, MAX_ERROR_MESSAGE_BYTES));
                (SubAction::Send, None, DeliveryStatus::Pending)
            }
        };
        metadata.delivery_status = Some(status);
        let record = AgentLogRecord {
            resource_type: ResourceType::AgentLog,
            operation: Operation::Create,
            business_id: action.business_id,
            location_id: action.location_id,
            data: ActionData {
                action_type,
                sub_action,
                agent_session_id: action.agent_session_id,
                triggered_by: TRIGGERED_BY_BEDROCK.to_owned(),
                recipient: (!action.recipient.is_empty()).then_some(action.recipient),
                provider,
                external_id,
                metadata,
            },
            timestamp: Utc::now().trunc_subsecs(3),
            request_id: random_uuid(),
        };
        record.validate()?;
        Ok(record)
    }

    /// Checks every rule a record must meet, whether built here or read
    /// from elsewhere (a replayed file).
    pub fn validate(&self) -> Result<(), RecordError> {
        check_id("businessId", &self.business_id)?;
        check_id("locationId", &self.location_id)?;
        let d = &self.data;
        check_opt(
            "data.agentSessionId",
            d.agent_session_id.as_deref(),
            MAX_SHORT_FIELD,
        )?;
        check_len("data.triggeredBy", &d.triggered_by, MAX_SHORT_FIELD)?;
        check_opt("data.externalId", d.external_id.as_deref(), MAX_SHORT_FIELD)?;
        let r = d.recipient.as_ref();
        let phone = r.and_then(|r| r.phone.as_deref());
        let email = r.and_then(|r| r.email.as_deref());
        let user_id = r.and_then(|r| r.user_id.as_deref());
        check_opt("data.recipient.phone", phone, MAX_PHONE)?;
        check_opt("data.recipient.email", email, MAX_EMAIL)?;
        check_opt("data.recipient.userId", user_id, MAX_SHORT_FIELD)?;
        check_opt(
            "data.recipient.name",
            r.and_then(|r| r.name.as_deref()),
            MAX_SHORT_FIELD,
        )?;
        let action = d.action_type.name();
        let allowed: &[Provider] = match d.action_type {
            ActionType::Sms => {
                if phone.is_none() {
                    return Err(RecordError::MissingRecipient {
                        action,
                        needs: "data.recipient.phone",
                    });
                }
                &[Provider::AwsSns, Provider::Twilio]
            }
            ActionType::Email => {
                if email.is_none() {
                    return Err(RecordError::MissingRecipient {
                        action,
                        needs: "data.recipient.email",
                    });
                }
                &[Provider::AwsSes, Provider::Smtp, Provider::Gmail]
            }
            ActionType::MetaMessage => {
                if phone.is_none() && user_id.is_none() {
                    return Err(RecordError::MissingRecipient {
                        action,
                        needs: "data.recipient.phone or data.recipient.userId",
                    });
                }
                &[Provider::Meta]
            }
            ActionType::VoiceCall => &[Provider::Elevenlabs],
        };
        if !allowed.contains(&d.provider) {
            return Err(RecordError::ProviderMismatch {
                field: "data.provider",
                found: d.provider,
                action,
            });
        }
        let m = &d.metadata;
        check_opt(
            "data.metadata.errorMessage",
            m.error_message.as_deref(),
            MAX_ERROR_MESSAGE_BYTES,
        )?;
        check_opt("data.metadata.subject", m.subject.as_deref(), MAX_SUBJECT)?;
        check_opt(
            "data.metadata.conversationId",
            m.conversation_id.as_deref(),
            MAX_SHORT_FIELD,
        )?;
        if d.action_type == ActionType::VoiceCall && m.conversation_id.is_none() {
            return Err(RecordError::Empty {
                field: "data.metadata.conversationId",
            });
        }
        if let Some(Seconds(secs)) = m.call_duration
            && !(secs.is_finite() && secs >= 0.0)
        {
            return Err(RecordError::InvalidValue {
                field: "data.metadata.callDuration",
                reason: "must be a finite number of seconds, zero or more",
            });
        }
        if let Some(cost) = &m.cost {
            cost.check().map_err(|reason| RecordError::InvalidValue {
                field: "data.metadata.cost",
                reason,
            })?;
        }
        Ok(())
    }

    /// The Kinesis partition key, `businessId:locationId`, so one
    /// location's actions land on one shard. That does not keep them in
    /// order: Kinesis says `PutRecords` "doesn't guarantee the ordering of
    /// records" of one request (Kinesis API reference, PutRecords), and a
    /// record retried after a partial failure lands after later ones.
    /// Consumers order by `timestamp` and drop repeats by `requestId`
    /// (docs/action-log.md).
    pub fn partition_key(&self) -> String {
        format!("{}:{}", self.business_id, self.location_id)
    }

    /// Serialises the record for shipping; refuses records Kinesis would.
    pub fn encode(&self) -> Result<EncodedRecord, RecordError> {
        let data = serde_json::to_vec(self).expect("agent-log records always serialise");
        let partition_key = self.partition_key();
        let size = data.len() + partition_key.len();
        if size > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                request_id: self.request_id,
                size,
                max: MAX_RECORD_BYTES,
            });
        }
        Ok(EncodedRecord {
            partition_key,
            data: Bytes::from(data),
        })
    }
}

/// A record ready to ship: its JSON and its partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    pub partition_key: String,
    pub data: Bytes,
}

impl EncodedRecord {
    /// Size as Kinesis counts it against its limits: data plus key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Namespace of the name-based request ids of records that stand for one
/// delivered event (see [`AgentLogRecord::for_event`]).
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x4b84_abbd_72ea_41bf_b4ee_5016_87c7_421b);

/// Request ids need uniqueness, not secrecy: a fast non-cryptographic
/// source keeps building a record well under a microsecond.
fn random_uuid() -> Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), RecordError> {
    if value.is_empty() {
        return Err(RecordError::Empty { field });
    }
    if value.len() > max {
        return Err(RecordError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_opt(field: &'static str, value: Option<&str>, max: usize) -> Result<(), RecordError> {
    value.map_or(Ok(()), |v| check_len(field, v, max))
}

fn check_id(field: &'static str, value: &str) -> Result<(), RecordError> {
    check_len(field, value, MAX_ID_LEN)?;
    match value
        .chars()
        .find(|c| *c == ':' || c.is_whitespace() || c.is_control())
    {
        Some(found) => Err(RecordError::BadIdCharacter { field, found }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(outcome: Outcome) -> Action {
        Action {
            business_id: "B0100001".into(),
            location_id: "L0100001".into(),
            agent_session_id: Some("session-123".into()),
            recipient: Recipient::phone("+40721000111"),
            outcome,
        }
    }

    #[test]
    fn records_of_one_event_share_a_name_based_request_id() {
        let make = |event: &str| {
            let action = Action {
                business_id: "B1".into(),
                location_id: "L1".into(),
                agent_session_id: Some("conv_1".into()),
                recipient: Recipient::default(),
                outcome: Outcome::Received { external_id: None },
            };
            let call = VoiceCall {
                conversation_id: "conv_1".into(),
                call_duration_secs: Some(3.0),
                extra: Map::new(),
            };
            AgentLogRecord::voice_call(action, call)
                .unwrap()
                .for_event(event)
        };
        let (first, again) = (make("post-call/x/conv_1"), make("post-call/x/conv_1"));
        assert_eq!(first.request_id, again.request_id);
        assert_eq!(first.request_id.get_version_num(), 5);
        assert_ne!(first.request_id, make("post-call/y/conv_1").request_id);
        first.validate().unwrap();
    }

    #[test]
    fn sms_send_carries_provider_id_and_status() {
        let sent = Outcome::Sent {
            external_id: Some("SM1".into()),
        };
        let r = AgentLogRecord::sms(action(sent), SmsProvider::Twilio, 58).unwrap();
        assert_eq!(r.data.sub_action, SubAction::Send);
        assert_eq!(r.data.external_id.as_deref(), Some("SM1"));
        assert_eq!(r.data.metadata.delivery_status, Some(DeliveryStatus::Sent));
        assert_eq!(r.data.metadata.message_length, Some(58));
        assert_eq!(r.partition_key(), "B0100001:L0100001");
    }

    #[test]
    fn failure_keeps_the_error_and_clips_it_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_BYTES); // two bytes each
        let r = AgentLogRecord::sms(action(Outcome::failed(long)), SmsProvider::AwsSns, 0).unwrap();
        let msg = r.data.metadata.error_message.unwrap();
        assert_eq!(msg.len(), MAX_ERROR_MESSAGE_BYTES);
        assert_eq!(r.data.sub_action, SubAction::Failed);
        assert_eq!(
            r.data.metadata.delivery_status,
            Some(DeliveryStatus::Failed)
        );
    }

    #[test]
    fn an_unknown_outcome_is_a_pending_send_that_says_so() {
        let unknown = Outcome::Unknown {
            error: "twilio did not confirm the message: no answer in time".into(),
        };
        let r = AgentLogRecord::sms(action(unknown), SmsProvider::Twilio, 5).unwrap();
        assert_eq!(r.data.sub_action, SubAction::Send);
        assert_eq!(r.data.external_id, None);
        assert_eq!(
            r.data.metadata.delivery_status,
            Some(DeliveryStatus::Pending)
        );
        assert_eq!(
            r.data.metadata.error_message.as_deref(),
            Some("outcome unknown: twilio did not confirm the message: no answer in time")
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["data"]["metadata"]["deliveryStatus"], "pending");
        assert_eq!(json["data"]["subAction"], "send");
    }

    #[test]
    fn empty_and_oversized_ids_are_named() {
        let mut a = action(Outcome::failed("x"));
        a.business_id.clear();
        assert_eq!(
            AgentLogRecord::sms(a, SmsProvider::Twilio, 1).unwrap_err(),
            RecordError::Empty {
                field: "businessId"
            }
        );
        let mut a = action(Outcome::failed("x"));
        a.location_id = "L".repeat(MAX_ID_LEN + 1);
        let err = AgentLogRecord::sms(a, SmsProvider::Twilio, 1).unwrap_err();
        assert_eq!(
            err,
            RecordError::TooLong {
                field: "locationId",
                len: MAX_ID_LEN + 1,
                max: MAX_ID_LEN
            }
        );
        assert!(err.to_string().contains("locationId"));
        let mut a = action(Outcome::failed("x"));
        a.business_id = "B01:L02".into();
        assert!(matches!(
            AgentLogRecord::sms(a, SmsProvider::Twilio, 1),
            Err(RecordError::BadIdCharacter {
                field: "businessId",
                found: ':'
            })
        ));
    }

    #[test]
    fn recipients_must_match_the_action() {
        let mut a = action(Outcome::failed("x"));
        a.recipient = Recipient::email("ana@example.com");
        let err = AgentLogRecord::sms(a.clone(), SmsProvider::Twilio, 1).unwrap_err();
        assert_eq!(err.to_string(), "a sms record needs data.recipient.phone");
        a.recipient = Recipient::phone("+40721000111");
        let err = AgentLogRecord::email(a.clone(), EmailProvider::Smtp, None, 1).unwrap_err();
        assert!(matches!(
            err,
            RecordError::MissingRecipient {
                action: "email",
                ..
            }
        ));
        a.recipient = Recipient::default();
        assert!(AgentLogRecord::meta_message(a.clone(), 1).is_err());
        a.recipient.user_id = Some("psid-1".into());
        assert!(AgentLogRecord::meta_message(a, 1).is_ok());
    }

    #[test]
    fn voice_calls_need_a_conversation_and_a_sane_duration() {
        let a = action(Outcome::Received { external_id: None });
        let call = VoiceCall {
            conversation_id: String::new(),
            ..VoiceCall::default()
        };
        assert_eq!(
            AgentLogRecord::voice_call(a.clone(), call).unwrap_err(),
            RecordError::Empty {
                field: "data.metadata.conversationId"
            }
        );
        let call = VoiceCall {
            conversation_id: "conv_1".into(),
            call_duration_secs: Some(f64::NAN),
            ..VoiceCall::default()
        };
        assert!(matches!(
            AgentLogRecord::voice_call(a, call),
            Err(RecordError::InvalidValue {
                field: "data.metadata.callDuration",
                ..
            })
        ));
    }

    #[test]
    fn replayed_records_with_a_foreign_provider_are_refused() {
        let mut r = AgentLogRecord::meta_message(action(Outcome::failed("x")), 3).unwrap();
        r.data.provider = Provider::Twilio;
        assert!(matches!(
            r.validate(),
            Err(RecordError::ProviderMismatch {
                field: "data.provider",
                ..
            })
        ));
    }

    #[test]
    fn oversize_records_are_refused_before_shipping() {
        let mut extra = Map::new();
        extra.insert(
            "transcript".into(),
            Value::String("a".repeat(MAX_RECORD_BYTES)),
        );
        let call = VoiceCall {
            conversation_id: "conv_1".into(),
            call_duration_secs: Some(30.0),
            extra,
        };
        let r = AgentLogRecord::voice_call(action(Outcome::Received { external_id: None }), call)
            .unwrap();
        match r.encode() {
            Err(RecordError::TooLarge {
                size,
                max,
                request_id,
            }) => {
                assert!(size > max);
                assert_eq!(request_id, r.request_id);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn a_record_exactly_at_the_limit_is_accepted() {
        let call = |pad: usize| {
            let mut extra = Map::new();
            extra.insert("pad".into(), Value::String("a".repeat(pad)));
            VoiceCall {
                conversation_id: "conv_1".into(),
                call_duration_secs: None,
                extra,
            }
        };
        let a = action(Outcome::Received { external_id: None });
        let probe = AgentLogRecord::voice_call(a.clone(), call(0)).unwrap();
        let base = probe.encode().unwrap().size();
        let mut exact = probe.clone();
        exact.data.metadata.extra = call(MAX_RECORD_BYTES - base).extra;
        assert_eq!(exact.encode().unwrap().size(), MAX_RECORD_BYTES);
        let mut over = probe;
        over.data.metadata.extra = call(MAX_RECORD_BYTES - base + 1).extra;
        assert!(over.encode().is_err());
    }

    #[test]
    fn integral_durations_serialise_as_integers() {
        assert_eq!(serde_json::to_string(&Seconds(30.0)).unwrap(), "30");
        assert_eq!(serde_json::to_string(&Seconds(2.5)).unwrap(), "2.5");
    }
}
