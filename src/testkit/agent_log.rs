//! Agent-log records made to order, as the JSON lines the action log
//! holds: the dashboard's fixture and benchmark data.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// One record to write.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub business: &'a str,
    pub location: &'a str,
    /// `sms`, `email`, `meta_message` or `voice_call`.
    pub action: &'a str,
    pub failed: bool,
    pub at: DateTime<Utc>,
    /// The call's length, for `voice_call`.
    pub seconds: Option<f64>,
    /// `metadata.cost`: amount and currency.
    pub cost: Option<(f64, &'a str)>,
    /// The conversation (agent session) it belongs to.
    pub conversation: &'a str,
    pub request_id: Uuid,
}

impl Spec<'_> {
    /// The record as a JSON value.
    pub fn json(&self) -> Value {
        let (provider, recipient) = match self.action {
            "sms" => ("twilio", json!({"phone": "+40721000111"})),
            "email" => ("aws_ses", json!({"email": "ana@example.com"})),
            "meta_message" => ("meta", json!({"phone": "+40721000111"})),
            _ => ("elevenlabs", json!({"phone": "+40721000111"})),
        };
        let mut metadata = json!({
            "deliveryStatus": if self.failed { "failed" } else { "sent" },
        });
        if self.action == "voice_call" {
            metadata["conversationId"] = json!(self.conversation);
            metadata["deliveryStatus"] = json!(if self.failed { "failed" } else { "delivered" });
        }
        if let Some(seconds) = self.seconds {
            metadata["callDuration"] = json!(seconds);
        }
        if let Some((amount, currency)) = self.cost {
            metadata["cost"] =
                json!({"amount": amount, "currency": currency, "source": "estimated"});
        }
        json!({
            "resourceType": "agent-log",
            "operation": "create",
            "businessId": self.business,
            "locationId": self.location,
            "data": {
                "actionType": self.action,
                "subAction": if self.failed { "failed" } else { "send" },
                "agentSessionId": self.conversation,
                "triggeredBy": "bedrock_agent",
                "recipient": recipient,
                "provider": provider,
                "metadata": metadata,
            },
            "timestamp": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "requestId": self.request_id,
        })
    }

    /// The record as one line, without its newline.
    pub fn line(&self) -> String {
        self.json().to_string()
    }
}
