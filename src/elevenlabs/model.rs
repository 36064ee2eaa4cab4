//! What we send to and read from the ElevenLabs Agents API.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ids::Id;

/// The `llm` of an agent's prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Llm {
    /// One of the models ElevenLabs hosts, by its API name (`gpt-4o-mini`, ...).
    Hosted(String),
    /// `custom-llm`: every turn goes to an OpenAI-compatible endpoint; for us,
    /// the operator's bridge.
    Custom {
        url: String,
        /// Id of a workspace secret ElevenLabs sends as the bearer token; the
        /// secret itself never passes through here.
        api_key_secret_id: Option<String>,
    },
}

/// The agent as we want it to be: everything the operator manages.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAgent {
    pub name: String,
    pub tags: Vec<String>,
    pub first_message: String,
    pub language: String,
    pub prompt: String,
    pub llm: Llm,
    pub voice_id: String,
    pub turn_timeout_secs: u32,
    pub max_duration_secs: u32,
    /// `platform_settings` object, sent as given when present.
    pub platform_settings: Option<Map<String, Value>>,
}

impl DesiredAgent {
    /// The JSON body for `POST /v1/convai/agents/create` and
    /// `PATCH /v1/convai/agents/{id}`.
    pub fn body(&self) -> Value {
        let mut prompt = json!({ "prompt": self.prompt });
        match &self.llm {
            Llm::Hosted(model) => {
                prompt["llm"] = json!(model);
            }
            Llm::Custom {
                url,
                api_key_secret_id,
            } => {
                prompt["llm"] = json!("custom-llm");
                let mut custom = json!({ "url": url });
                if let Some(id) = api_key_secret_id {
                    custom["api_key"] = json!({ "secret_id": id });
                }
                prompt["custom_llm"] = custom;
            }
        }
        let mut body = json!({
            "name": self.name,
            "tags": self.tags,
            "conversation_config": {
                "agent": {
                    "first_message": self.first_message,
                    "language": self.language,
                    "prompt": prompt,
                },
                "tts": { "voice_id": self.voice_id },
                "turn": { "turn_timeout": self.turn_timeout_secs },
                "conversation": { "max_duration_seconds": self.max_duration_secs },
            },
        });
        if let Some(settings) = &self.platform_settings {
            body["platform_settings"] = Value::Object(settings.clone());
        }
        body
    }

    /// The fields (as JSON paths) where `remote` differs from this
    /// description; empty when the agent is as desired. Only fields we
    /// send are compared, so defaults ElevenLabs adds are not drift.
    pub fn drift(&self, remote: &RemoteAgent) -> Vec<String> {
        let mut found = Vec::new();
        diff("", &self.body(), &remote.as_json(), &mut found);
        found
    }
}

fn diff(path: &str, desired: &Value, actual: &Value, found: &mut Vec<String>) {
    match (desired, actual) {
        (Value::Object(want), have) => {
            for (key, value) in want {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                // A missing parent reports each leaf beneath it.
                diff(&sub, value, have.get(key).unwrap_or(&Value::Null), found);
            }
        }
        (Value::Number(want), Value::Number(have)) => {
            if want.as_f64() != have.as_f64() {
                found.push(path.to_owned());
            }
        }
        // Order carries no meaning in the arrays we send (tags).
        (Value::Array(want), Value::Array(have)) => {
            let mut want: Vec<String> = want.iter().map(Value::to_string).collect();
            let mut have: Vec<String> = have.iter().map(Value::to_string).collect();
            want.sort();
            have.sort();
            if want != have {
                found.push(path.to_owned());
            }
        }
        (want, have) => {
            if want != have {
                found.push(path.to_owned());
            }
        }
    }
}

/// An agent as `GET /v1/convai/agents/{id}` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAgent {
    pub agent_id: Id,
    pub name: String,
    pub tags: Vec<String>,
    /// `conversation_config` as returned, with every default ElevenLabs adds.
    pub conversation_config: Value,
    pub platform_settings: Value,
}

impl RemoteAgent {
    fn as_json(&self) -> Value {
        json!({
            "name": self.name,
            "tags": self.tags,
            "conversation_config": self.conversation_config,
            "platform_settings": self.platform_settings,
        })
    }
}

/// One entry of `GET /v1/convai/agents`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentSummary {
    pub agent_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
}

/// One page of `GET /v1/convai/agents`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentPage {
    pub agents: Vec<AgentSummary>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

/// Filters of `GET /v1/convai/agents`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Matches agent names.
    pub search: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// At most 100; ElevenLabs' default (30) when unset.
    pub page_size: Option<u32>,
}

/// Whether `DELETE` removed the agent or found it already gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    AlreadyGone,
}

/// A conversation as `GET /v1/convai/conversations/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Conversation {
    pub conversation_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub transcript: Vec<TranscriptTurn>,
    #[serde(default)]
    pub metadata: ConversationMetadata,
}

/// The parts of a conversation's `metadata` the bridge uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ConversationMetadata {
    #[serde(default)]
    pub start_time_unix_secs: Option<i64>,
    #[serde(default)]
    pub call_duration_secs: Option<f64>,
    /// In ElevenLabs credits.
    #[serde(default)]
    pub cost: Option<f64>,
    #[serde(default)]
    pub termination_reason: Option<String>,
}

/// One turn of a transcript.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TranscriptTurn {
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub time_in_call_secs: Option<f64>,
}

/// Recorded audio of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub content_type: String,
    pub bytes: bytes::Bytes,
}

fn null_as_empty<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(de)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> DesiredAgent {
        DesiredAgent {
            name: "Agent Clinica Dentara XYZ".into(),
            tags: vec!["voiceagents.io/uid=1234".into(), "business=B0100001".into()],
            first_message: "Bună ziua!".into(),
            language: "ro".into(),
            prompt: "You are a helpful dental assistant.".into(),
            llm: Llm::Custom {
                url: "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001".into(),
                api_key_secret_id: Some("sec_1".into()),
            },
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            turn_timeout_secs: 10,
            max_duration_secs: 300,
            platform_settings: None,
        }
    }

    #[test]
    fn body_has_the_documented_shape() {
        let body = clinic().body();
        let agent = &body["conversation_config"]["agent"];
        assert_eq!(agent["first_message"], "Bună ziua!");
        assert_eq!(agent["language"], "ro");
        assert_eq!(agent["prompt"]["llm"], "custom-llm");
        assert_eq!(
            agent["prompt"]["custom_llm"]["url"],
            "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001"
        );
        assert_eq!(
            agent["prompt"]["custom_llm"]["api_key"]["secret_id"],
            "sec_1"
        );
        assert_eq!(
            body["conversation_config"]["tts"]["voice_id"],
            "21m00Tcm4TlvDq8ikWAM"
        );
        assert_eq!(body["conversation_config"]["turn"]["turn_timeout"], 10);
        assert_eq!(
            body["conversation_config"]["conversation"]["max_duration_seconds"],
            300
        );
        assert!(body.get("platform_settings").is_none());

        let hosted = DesiredAgent {
            llm: Llm::Hosted("gpt-4o-mini".into()),
            ..clinic()
        }
        .body();
        assert_eq!(
            hosted["conversation_config"]["agent"]["prompt"]["llm"],
            "gpt-4o-mini"
        );
        assert!(
            hosted["conversation_config"]["agent"]["prompt"]
                .get("custom_llm")
                .is_none()
        );
    }

    fn remote_of(desired: &DesiredAgent) -> RemoteAgent {
        let mut body = desired.body();
        // What ElevenLabs adds on its own is not drift.
        body["conversation_config"]["tts"]["model_id"] = json!("eleven_flash_v2");
        body["conversation_config"]["turn"]["turn_timeout"] = json!(10.0);
        RemoteAgent {
            agent_id: Id::parse("agent_id", "agent_1").unwrap(),
            name: desired.name.clone(),
            tags: desired.tags.iter().rev().cloned().collect(),
            conversation_config: body["conversation_config"].clone(),
            platform_settings: json!({"widget": {}}),
        }
    }

    #[test]
    fn no_drift_when_only_provider_defaults_and_tag_order_differ() {
        assert_eq!(clinic().drift(&remote_of(&clinic())), Vec::<String>::new());
    }

    #[test]
    fn drift_names_each_changed_field() {
        let desired = clinic();
        let mut remote = remote_of(&desired);
        remote.conversation_config["agent"]["first_message"] = json!("Hello!");
        remote.conversation_config["tts"]["voice_id"] = json!("other");
        remote.tags.pop();
        assert_eq!(
            desired.drift(&remote),
            [
                "conversation_config.agent.first_message",
                "conversation_config.tts.voice_id",
                "tags"
            ]
        );
        let with_settings = DesiredAgent {
            platform_settings: Some(
                json!({"call_limits": {"daily_limit": 100}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..desired
        };
        assert_eq!(
            with_settings.drift(&remote_of(&clinic())),
            ["platform_settings.call_limits.daily_limit"]
        );
    }
}
