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

/// Header of every custom-LLM request that carries the call's ElevenLabs
/// conversation id, so that each call is its own session.
pub const CONVERSATION_ID_HEADER: &str = "X-Conversation-Id";

/// ElevenLabs' system dynamic variable holding the conversation id
/// (elevenlabs-docs `customization/dynamic-variables.mdx`).
pub const CONVERSATION_ID_VARIABLE: &str = "system__conversation_id";

/// The TTS model ElevenLabs uses when an agent names none: the default of
/// `TTSConversationalModel` in the API's OpenAPI document, English only.
pub const DEFAULT_TTS_MODEL: &str = "eleven_flash_v2";

/// The multilingual counterpart of [`DEFAULT_TTS_MODEL`], for every other
/// language.
pub const MULTILINGUAL_TTS_MODEL: &str = "eleven_flash_v2_5";

/// Whether ElevenLabs treats `language` as English, the one language the
/// v2 models speak and the only one the v2_5 models are refused for.
pub fn is_english(language: &str) -> bool {
    language == "en"
}

/// The TTS model that follows `language`: Flash v2 for English, Flash v2_5
/// for any other language ("English will always use the v2 model",
/// elevenlabs-docs `conversational-ai/pages/customization/language.mdx`).
pub fn tts_model_for(language: &str) -> &'static str {
    if is_english(language) {
        DEFAULT_TTS_MODEL
    } else {
        MULTILINGUAL_TTS_MODEL
    }
}

/// ElevenLabs' server-side rule on the agent language and the TTS model,
/// which the OpenAPI document does not carry: the API's refusal message
/// when `model_id` (absent: [`DEFAULT_TTS_MODEL`]) cannot serve `language`.
/// Non-English agents need a multilingual model (Flash v2 and Turbo v2
/// are English only, help.elevenlabs.io article 19954594946705); English
/// agents must not use the v2_5 models (language.mdx above).
pub fn tts_model_refusal(language: &str, model_id: Option<&str>) -> Option<&'static str> {
    let model = model_id.unwrap_or(DEFAULT_TTS_MODEL);
    if is_english(language) {
        matches!(model, "eleven_flash_v2_5" | "eleven_turbo_v2_5")
            .then_some("English Agents must use turbo or flash v2.")
    } else {
        matches!(model, "eleven_flash_v2" | "eleven_turbo_v2")
            .then_some("Non-english Agents must use turbo or flash v2_5.")
    }
}

/// The one sentence a caller hears from a disabled VoiceAgent's agent (its
/// first message, and every answer of the custom-LLM route) in `language`,
/// English when it has none or the language is unknown.
pub fn closing_sentence(language: Option<&str>) -> &'static str {
    super::spoken::in_language(super::spoken::CLOSING, language)
}

/// `conversation_config.tts`: the voice and how it speaks
/// (`TTSConversationalConfig-Input` in the OpenAPI document).
#[derive(Debug, Clone, PartialEq)]
pub struct Tts {
    pub voice_id: String,
    /// One of `TTSConversationalModel`.
    pub model_id: String,
    /// 0.0 to 1.0; ElevenLabs' default (0.5) when unset.
    pub stability: Option<f64>,
    /// 0.7 to 1.2; ElevenLabs' default (1.0) when unset.
    pub speed: Option<f64>,
    /// 0.0 to 1.0; ElevenLabs' default (0.8) when unset.
    pub similarity_boost: Option<f64>,
}

/// `platform_settings.privacy` (`PrivacyConfig-Input`): what ElevenLabs
/// itself keeps of each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// Whether ElevenLabs records the call's audio.
    pub record_voice: bool,
    /// Days ElevenLabs keeps conversations; -1 means no limit.
    pub retention_days: i32,
    /// Zero retention mode: ElevenLabs stores no PII at all.
    pub zero_retention_mode: bool,
}

/// `platform_settings.workspace_overrides.webhooks` (`ConvAIWebhooks` in
/// the OpenAPI document): the workspace webhook this agent's post-call
/// events go to, instead of whatever the workspace-wide setting names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostCallWebhook {
    /// Id of a workspace webhook (`POST /v1/workspace/webhooks`).
    pub webhook_id: String,
    /// `WebhookEventType` values: `transcript`, `audio`,
    /// `call_initiation_failure`. The schema gives the list no default,
    /// so it is always sent.
    pub events: Vec<String>,
}

/// A staff number `transfer_to_number` may hand the caller to
/// (`PhoneNumberTransfer` with a `phone` destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// E.164.
    pub number: String,
    /// When to transfer, in words the model reads.
    pub condition: String,
}

/// `platform_settings.call_limits` (`AgentCallLimits` in the OpenAPI
/// document): both limits are always sent together, so that a limit
/// taken out of the spec goes back to ElevenLabs' default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// `agent_concurrency_limit`: calls at once; -1 is no limit.
    pub concurrent: i32,
    /// `daily_limit`: calls a day.
    pub daily: i32,
}

impl CallLimits {
    /// `agent_concurrency_limit`'s default in the OpenAPI document: no limit.
    pub const NO_CONCURRENCY_LIMIT: i32 = -1;
    /// `daily_limit`'s default in the OpenAPI document.
    pub const DEFAULT_DAILY: i32 = 100_000;
}

/// Post-call analysis: `platform_settings.data_collection` (an
/// `AnalysisProperty` per item id) and `platform_settings.evaluation`
/// (`EvaluationSettings`, a list of `PromptEvaluationCriteria`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub data_collection: Vec<DataCollection>,
    pub criteria: Vec<EvaluationCriterion>,
}

/// One data-collection item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCollection {
    pub id: String,
    /// `boolean`, `string`, `integer` or `number`.
    pub value_type: String,
    pub description: String,
}

/// One evaluation criterion of type `prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationCriterion {
    pub id: String,
    /// `conversation_goal_prompt`, at most 2000 characters.
    pub goal: String,
}

impl Analysis {
    /// The two `platform_settings` fields. Each criterion's required
    /// `name` is its id, as the dashboard shows it.
    fn insert_into(&self, settings: &mut Map<String, Value>) {
        let items: Map<String, Value> = self
            .data_collection
            .iter()
            .map(|item| {
                (
                    item.id.clone(),
                    json!({ "type": item.value_type, "description": item.description }),
                )
            })
            .collect();
        let criteria: Vec<Value> = self
            .criteria
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.id,
                    "type": "prompt",
                    "conversation_goal_prompt": c.goal,
                })
            })
            .collect();
        settings.insert("data_collection".into(), Value::Object(items));
        settings.insert("evaluation".into(), json!({ "criteria": criteria }));
    }
}

/// ElevenLabs' default cascade timeout (`cascade_timeout_seconds` of
/// `PromptAgentAPIModel-Input`: 4 s, 2 to 15 allowed): how long it waits
/// for the custom LLM's first words before it tries the request again.
pub const DEFAULT_CASCADE_TIMEOUT_SECS: f64 = 4.0;

/// The agent as we want it to be: everything the operator manages.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAgent {
    pub name: String,
    pub tags: Vec<String>,
    pub first_message: String,
    pub language: String,
    pub prompt: String,
    pub llm: Llm,
    pub tts: Tts,
    pub turn_timeout_secs: u32,
    pub max_duration_secs: u32,
    /// `prompt.timezone`: ElevenLabs puts the current time in this zone
    /// into the system prompt; left out when absent.
    pub time_zone: Option<String>,
    /// `prompt.cascade_timeout_seconds`, always sent so that the retry
    /// timing the custom-LLM route is built for is the one in force.
    pub cascade_timeout_secs: f64,
    /// `prompt.built_in_tools.transfer_to_number`; none removes the tool.
    /// `end_call` is always configured.
    pub transfers: Vec<Transfer>,
    /// `platform_settings.privacy`; left to ElevenLabs when absent.
    pub privacy: Option<Privacy>,
    /// `platform_settings.workspace_overrides.webhooks`; the workspace-wide
    /// post-call webhook applies when absent.
    pub post_call_webhook: Option<PostCallWebhook>,
    /// `conversation_config.agent.dynamic_variables.dynamic_variable_placeholders`
    /// (`DynamicVariablesConfig`): the values `{{name}}` in the prompt
    /// and first message take when a call brings none of its own
    /// (elevenlabs-docs `customization/dynamic-variables.mdx`); left out
    /// when empty.
    pub dynamic_variables: std::collections::BTreeMap<String, String>,
    /// `platform_settings.call_limits`; left to ElevenLabs when absent.
    pub call_limits: Option<CallLimits>,
    /// `platform_settings.data_collection` and `.evaluation`; left to
    /// ElevenLabs when absent.
    pub analysis: Option<Analysis>,
    /// Further `platform_settings` fields, sent as given when present.
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
                // A dynamic-variable header value (`ConvAIDynamicVariable`
                // in `CustomLLM.request_headers`): ElevenLabs fills in the
                // conversation id on every request of the call.
                let mut custom = json!({
                    "url": url,
                    "request_headers": {
                        CONVERSATION_ID_HEADER: { "variable_name": CONVERSATION_ID_VARIABLE },
                    },
                });
                if let Some(id) = api_key_secret_id {
                    custom["api_key"] = json!({ "secret_id": id });
                }
                prompt["custom_llm"] = custom;
            }
        }
        prompt["cascade_timeout_seconds"] = json!(self.cascade_timeout_secs);
        if let Some(zone) = &self.time_zone {
            prompt["timezone"] = json!(zone);
        }
        prompt["built_in_tools"] = self.built_in_tools();
        let mut body = json!({
            "name": self.name,
            "tags": self.tags,
            "conversation_config": {
                "agent": {
                    "first_message": self.first_message,
                    "language": self.language,
                    "prompt": prompt,
                },
                "tts": self.tts.body(),
                "turn": { "turn_timeout": self.turn_timeout_secs },
                "conversation": { "max_duration_seconds": self.max_duration_secs },
            },
        });
        if !self.dynamic_variables.is_empty() {
            body["conversation_config"]["agent"]["dynamic_variables"] =
                json!({ "dynamic_variable_placeholders": self.dynamic_variables });
        }
        let mut settings = self.platform_settings.clone().unwrap_or_default();
        if let Some(privacy) = &self.privacy {
            settings.insert(
                "privacy".into(),
                json!({
                    "record_voice": privacy.record_voice,
                    "retention_days": privacy.retention_days,
                    "zero_retention_mode": privacy.zero_retention_mode,
                }),
            );
        }
        if let Some(webhook) = &self.post_call_webhook {
            settings.insert(
                "workspace_overrides".into(),
                json!({
                    "webhooks": {
                        "post_call_webhook_id": webhook.webhook_id,
                        "events": webhook.events,
                    },
                }),
            );
        }
        if let Some(limits) = &self.call_limits {
            settings.insert(
                "call_limits".into(),
                json!({
                    "agent_concurrency_limit": limits.concurrent,
                    "daily_limit": limits.daily,
                }),
            );
        }
        if let Some(analysis) = &self.analysis {
            analysis.insert_into(&mut settings);
        }
        if !settings.is_empty() {
            body["platform_settings"] = Value::Object(settings);
        }
        body
    }

    /// `BuiltInTools-Input`: `end_call` always (a caller who says goodbye,
    /// or a disabled agent, can be hung up on), `transfer_to_number` with
    /// the staff numbers, or null to remove it. Both are `SystemToolConfig`
    /// with an empty description, so ElevenLabs' own tool description
    /// applies (elevenlabs-docs `customization/tools/end-call.mdx`,
    /// `human-transfer.mdx`).
    fn built_in_tools(&self) -> Value {
        let transfer = if self.transfers.is_empty() {
            Value::Null
        } else {
            let transfers: Vec<Value> = self
                .transfers
                .iter()
                .map(|t| {
                    json!({
                        "transfer_destination": { "type": "phone", "phone_number": t.number },
                        "condition": t.condition,
                    })
                })
                .collect();
            json!({
                "type": "system",
                "name": "transfer_to_number",
                "params": { "system_tool_type": "transfer_to_number", "transfers": transfers },
            })
        };
        json!({
            "end_call": {
                "type": "system",
                "name": "end_call",
                "params": { "system_tool_type": "end_call" },
            },
            "transfer_to_number": transfer,
        })
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

impl Tts {
    fn body(&self) -> Value {
        let mut tts = json!({ "voice_id": self.voice_id, "model_id": self.model_id });
        for (key, value) in [
            ("stability", self.stability),
            ("speed", self.speed),
            ("similarity_boost", self.similarity_boost),
        ] {
            if let Some(value) = value {
                tts[key] = json!(value);
            }
        }
        tts
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
        // Lists of objects (transfer rules) keep their order; ElevenLabs
        // fills defaults into each element, so each is compared by the
        // fields we send.
        (Value::Array(want), Value::Array(have)) if want.iter().any(Value::is_object) => {
            if want.len() != have.len() {
                found.push(path.to_owned());
                return;
            }
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                diff(&format!("{path}[{i}]"), w, h, found);
            }
        }
        // Order carries no meaning in the other arrays we send (tags).
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

/// The telephony provider of a workspace phone number (`TelephonyProvider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneProvider {
    Twilio,
    SipTrunk,
    Exotel,
}

/// One phone number of the workspace, as `GET /v1/convai/phone-numbers`
/// lists it (`GetPhoneNumberTwilioResponseModel` and its SIP-trunk and
/// Exotel siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    pub phone_number_id: Id,
    /// As stored by ElevenLabs; E.164 for the numbers we import.
    pub phone_number: String,
    pub label: String,
    pub provider: PhoneProvider,
    /// `assigned_agent.agent_id`: the agent calls to this number reach.
    pub assigned_agent: Option<String>,
}

/// `outbound_trunk_config` of a SIP-trunk import
/// (`OutboundSIPTrunkConfigRequestModel`): where ElevenLabs sends calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipOutbound {
    /// Hostname or IP the SIP INVITE goes to.
    pub address: String,
    /// `auto`, `udp`, `tcp` or `tls`; ElevenLabs' default (`auto`) when unset.
    pub transport: Option<String>,
    /// `disabled`, `allowed` or `required`; ElevenLabs' default (`allowed`) when unset.
    pub media_encryption: Option<String>,
}

/// A number to import into the workspace (`POST /v1/convai/phone-numbers`).
#[derive(Debug, Clone)]
pub enum PhoneImport {
    /// `CreateTwilioPhoneNumberRequest`: the Twilio account's SID and auth
    /// token; inbound SMS stays with Twilio (`enable_sms: false`).
    Twilio {
        phone_number: String,
        label: String,
        account_sid: String,
        auth_token: secrecy::SecretString,
    },
    /// `CreateSIPTrunkPhoneNumberRequestV2`.
    SipTrunk {
        phone_number: String,
        label: String,
        outbound: Option<SipOutbound>,
    },
}

impl PhoneImport {
    /// The number being imported.
    pub fn phone_number(&self) -> &str {
        match self {
            PhoneImport::Twilio { phone_number, .. }
            | PhoneImport::SipTrunk { phone_number, .. } => phone_number,
        }
    }

    pub fn provider(&self) -> PhoneProvider {
        match self {
            PhoneImport::Twilio { .. } => PhoneProvider::Twilio,
            PhoneImport::SipTrunk { .. } => PhoneProvider::SipTrunk,
        }
    }

    /// The request body. It carries the Twilio token: never log it.
    pub fn body(&self) -> Value {
        use secrecy::ExposeSecret;
        match self {
            PhoneImport::Twilio {
                phone_number,
                label,
                account_sid,
                auth_token,
            } => json!({
                "provider": "twilio",
                "phone_number": phone_number,
                "label": label,
                "sid": account_sid,
                "token": auth_token.expose_secret(),
                "enable_sms": false,
            }),
            PhoneImport::SipTrunk {
                phone_number,
                label,
                outbound,
            } => {
                let mut body = json!({
                    "provider": "sip_trunk",
                    "phone_number": phone_number,
                    "label": label,
                });
                if let Some(out) = outbound {
                    let mut config = json!({ "address": out.address });
                    if let Some(t) = &out.transport {
                        config["transport"] = json!(t);
                    }
                    if let Some(m) = &out.media_encryption {
                        config["media_encryption"] = json!(m);
                    }
                    body["outbound_trunk_config"] = config;
                }
                body
            }
        }
    }
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

    #[test]
    fn the_closing_sentence_follows_the_language_and_falls_back_to_english() {
        assert!(closing_sentence(Some("ro")).starts_with("Ne pare rău"));
        assert!(closing_sentence(Some("RO")).starts_with("Ne pare rău"));
        assert!(closing_sentence(Some("en")).starts_with("Sorry"));
        assert_eq!(closing_sentence(Some("ja")), closing_sentence(Some("en")));
        assert_eq!(closing_sentence(None), closing_sentence(Some("en")));
        assert_eq!(closing_sentence(Some("")), closing_sentence(Some("en")));
        for (_, sentence) in crate::elevenlabs::spoken::CLOSING {
            // One sentence: a single full stop, at the end.
            assert_eq!(sentence.matches('.').count(), 1, "{sentence}");
            assert!(sentence.ends_with('.'), "{sentence}");
        }
    }

    /// The testkit's clinic with a workspace secret, a tuned speed and the
    /// values these tests pin.
    fn clinic() -> DesiredAgent {
        let base = crate::testkit::fixtures::desired_agent();
        DesiredAgent {
            tags: vec!["voiceagents.io/uid=1234".into(), "business=B0100001".into()],
            first_message: "Bună ziua!".into(),
            prompt: "You are a helpful dental assistant.".into(),
            llm: Llm::Custom {
                url: "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001".into(),
                api_key_secret_id: Some("sec_1".into()),
            },
            tts: Tts {
                speed: Some(0.9),
                ..base.tts
            },
            ..base
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
            agent["prompt"]["custom_llm"]["request_headers"],
            json!({"X-Conversation-Id": {"variable_name": "system__conversation_id"}})
        );
        assert_eq!(
            body["conversation_config"]["tts"],
            json!({"voice_id": "21m00Tcm4TlvDq8ikWAM", "model_id": "eleven_flash_v2_5", "speed": 0.9})
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

    #[test]
    fn privacy_joins_the_other_platform_settings() {
        let private = DesiredAgent {
            privacy: Some(Privacy {
                record_voice: false,
                retention_days: 90,
                zero_retention_mode: true,
            }),
            platform_settings: Some(
                json!({"call_limits": {"daily_limit": 100}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..clinic()
        };
        assert_eq!(
            private.body()["platform_settings"],
            json!({
                "call_limits": {"daily_limit": 100},
                "privacy": {"record_voice": false, "retention_days": 90, "zero_retention_mode": true}
            })
        );
    }

    #[test]
    fn a_post_call_webhook_scopes_the_agents_events_to_it() {
        let scoped = DesiredAgent {
            post_call_webhook: Some(PostCallWebhook {
                webhook_id: "wh_1".into(),
                events: vec!["transcript".into(), "call_initiation_failure".into()],
            }),
            ..clinic()
        };
        assert_eq!(
            scoped.body()["platform_settings"],
            json!({"workspace_overrides": {"webhooks": {
                "post_call_webhook_id": "wh_1",
                "events": ["transcript", "call_initiation_failure"],
            }}})
        );
        // Kept as sent, it is no drift; dropped, each leaf is named.
        let mut remote = remote_of(&scoped);
        remote.platform_settings = scoped.body()["platform_settings"].clone();
        assert_eq!(scoped.drift(&remote), Vec::<String>::new());
        remote.platform_settings = json!({"workspace_overrides": {}});
        assert_eq!(
            scoped.drift(&remote),
            [
                "platform_settings.workspace_overrides.webhooks.events",
                "platform_settings.workspace_overrides.webhooks.post_call_webhook_id"
            ]
        );
    }

    #[test]
    fn the_tts_model_follows_the_language() {
        assert_eq!(tts_model_for("en"), "eleven_flash_v2");
        assert_eq!(tts_model_for("ro"), "eleven_flash_v2_5");
        assert_eq!(tts_model_refusal("ro", Some("eleven_flash_v2_5")), None);
        assert_eq!(
            tts_model_refusal("ro", Some("eleven_multilingual_v2")),
            None
        );
        assert_eq!(tts_model_refusal("en", Some("eleven_flash_v2")), None);
        assert_eq!(tts_model_refusal("en", None), None);
        for model in [None, Some("eleven_flash_v2"), Some("eleven_turbo_v2")] {
            assert_eq!(
                tts_model_refusal("ja", model),
                Some("Non-english Agents must use turbo or flash v2_5.")
            );
        }
        assert_eq!(
            tts_model_refusal("en", Some("eleven_turbo_v2_5")),
            Some("English Agents must use turbo or flash v2.")
        );
    }

    fn remote_of(desired: &DesiredAgent) -> RemoteAgent {
        let mut body = desired.body();
        // What ElevenLabs adds on its own is not drift.
        body["conversation_config"]["tts"]["stability"] = json!(0.5);
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
