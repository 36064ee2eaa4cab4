//! The `VoiceAgent` custom resource: one per business location. Its doc
//! comments are what `kubectl explain voiceagents.spec` shows.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod template;

pub use template::{
    RolloutSpec, VoiceAgentTemplate, VoiceAgentTemplateSpec, VoiceAgentTemplateStatus,
    template_crd_yaml,
};

/// Finalizer that makes deletion wait for the ElevenLabs agent and the
/// tenant item to be cleaned up.
pub const FINALIZER: &str = "voiceagents.io/cleanup";

/// A phone agent for one business location: the ElevenLabs voice agent
/// that answers its calls and the tenant configuration the webhook bridge
/// reads.
// Each printcolumn repeats `type_ = "string"`, which clippy takes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "voiceagents.io",
    version = "v1alpha1",
    kind = "VoiceAgent",
    plural = "voiceagents",
    shortname = "va",
    namespaced,
    cel,
    status = "VoiceAgentStatus",
    derive = "PartialEq",
    doc = "A phone agent for one business location, managed by voice-operator",
    printcolumn(name = "Business", type_ = "string", json_path = ".spec.businessId"),
    printcolumn(name = "Location", type_ = "string", json_path = ".spec.locationId"),
    printcolumn(name = "Enabled", type_ = "boolean", json_path = ".spec.enabled"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(name = "Agent", type_ = "string", json_path = ".status.agentId"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
// ElevenLabs refuses a TTS model that cannot speak the agent's language
// (its server rule, not in the OpenAPI schema; see
// `elevenlabs::model::tts_model_refusal`): catch it at apply time.
#[x_kube(validation = Rule::new(VOICE_MODEL_RULE)
    .message("spec.voice.model cannot speak spec.language: English needs eleven_flash_v2, eleven_turbo_v2, eleven_multilingual_v2 or eleven_v3_conversational; other languages need eleven_flash_v2_5, eleven_turbo_v2_5, eleven_multilingual_v2 or eleven_v3_conversational")
    .field_path(".voice.model"))]
#[x_kube(validation = Rule::new("has(self.templateRef) || (has(self.businessName) && has(self.voiceId) && has(self.greeting))")
    .message("spec.businessName, spec.voiceId and spec.greeting are required unless spec.templateRef names a template"))]
#[x_kube(validation = Rule::new("!has(self.telephony) || has(self.phoneNumber)")
    .message("spec.telephony needs spec.phoneNumber: it says how to import that number")
    .field_path(".telephony"))]
pub struct VoiceAgentSpec {
    /// Business the agent answers for (the platform's businessId, such as
    /// B0100001). 1 to 64 letters, digits, '_' or '-'. Cannot be changed.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("businessId is immutable"))]
    pub business_id: String,

    /// Location of the business (the platform's locationId, such as
    /// L0100001). 1 to 64 letters, digits, '_' or '-'. Cannot be changed.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("locationId is immutable"))]
    pub location_id: String,

    /// Name callers know the business by; the ElevenLabs agent is named
    /// "Agent <businessName>". Required unless spec.templateRef names a
    /// template that sets it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 200), transform = no_default)]
    pub business_name: String,

    /// false disables the agent: its phone number is unassigned, and a call
    /// that reaches it anyway hears one closing sentence (its first message)
    /// and nothing else runs; the ElevenLabs agent and its id are kept so
    /// that re-enabling reuses them.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// ElevenLabs voice id the agent speaks with. Required unless
    /// spec.templateRef names a template that sets it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_-]+$"),
        transform = no_default
    )]
    pub voice_id: String,

    /// Language of the conversation, an ISO 639-1 code such as ro or en.
    /// The TTS model follows it unless spec.voice.model says otherwise:
    /// eleven_flash_v2 for en, eleven_flash_v2_5 for every other language.
    // maxLength keeps the CEL rule on spec.voice.model within the API
    // server's cost budget.
    #[serde(default = "default_language")]
    #[schemars(
        length(min = 2, max = 5),
        regex(pattern = r"^[a-z]{2}(-[A-Za-z]{2})?$")
    )]
    pub language: String,

    /// First sentence the agent says when it picks up. Required unless
    /// spec.templateRef names a template that sets it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 1000), transform = no_default)]
    pub greeting: String,

    /// Instructions for the agent (its system prompt). The operator-wide
    /// default prompt is used when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20000))]
    pub custom_prompt: Option<String>,

    /// Phone number callers dial, in E.164 form (+40312345678). The
    /// operator finds it among the ElevenLabs workspace's phone numbers, or
    /// imports it as spec.telephony says, and points it at this agent.
    /// While enabled is false the number points at no agent. Another
    /// VoiceAgent that already holds the number keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\+[1-9][0-9]{1,14}$"))]
    pub phone_number: Option<String>,

    /// How to import spec.phoneNumber into the ElevenLabs workspace when it
    /// is not there yet: through Twilio (twilioSecretRef) or a SIP trunk
    /// (sipTrunk). Without it, the number must already be in the
    /// workspace. A number the operator imported is removed from the
    /// workspace on deletion when deletionPolicy is Delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephony: Option<TelephonySpec>,

    /// Staff numbers the agent may hand a caller to, each with the
    /// situation in words ("the caller asks for a person", "a dental
    /// emergency"). The agent gets ElevenLabs' transfer_to_number tool
    /// for them; without any, it can only end the call. Every transfer is
    /// in the action log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub transfer: Vec<TransferRule>,

    /// IANA time zone of the location (Europe/Bucharest). ElevenLabs puts
    /// the current date and time in this zone into the agent's prompt, so
    /// that "tomorrow at ten" becomes the right date; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
    )]
    pub time_zone: Option<String>,

    /// How the voice speaks: TTS model, stability, speed and similarity.
    /// ElevenLabs' defaults apply to what is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceSpec>,

    /// Limits, recording and retention of each call.
    #[serde(default)]
    pub conversation: ConversationSpec,

    /// Where the business hears about its calls. With
    /// spec.conversation.sendTranscripts true, each finished call's summary
    /// and transcript are emailed to notify.email, and its summary is sent
    /// by SMS to notify.sms, through the operator's configured providers;
    /// every message is in the action log. Nothing is sent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,

    /// How many calls ElevenLabs lets this agent take at once and per
    /// day; ElevenLabs' defaults (no limit at once, 100000 a day) when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,

    /// What ElevenLabs works out after each call: the data to collect from
    /// the conversation and the criteria that say whether it succeeded.
    /// The results arrive with the post-call webhook and are kept in the
    /// call's voice_call record of the action log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,

    /// Bedrock Agent that answers this location's calls; the operator-wide
    /// agent when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSpec>,

    /// The VoiceAgentTemplate in this namespace that this location starts
    /// from. The effective configuration is the template merged with this
    /// VoiceAgent's own fields: objects and maps (voice, conversation,
    /// limits, analysis, variables) field by field, lists (transfer,
    /// analysis lists) replaced as a whole, other values overridden. A
    /// field left out, or at its default, takes the template's value.
    /// While the template is missing the VoiceAgent is Stalled (reason
    /// TemplateNotFound) and nothing is sent to ElevenLabs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,

    /// Values of this location that its prompt, greeting and tools name
    /// as {{name}} (address, opening_hours, ...), merged key by key with
    /// the template's; ElevenLabs' dynamic-variable placeholders. Names are
    /// letters, digits and '_', not starting with system__.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new(VARIABLES_RULE).message(VARIABLES_MESSAGE))]
    pub variables: BTreeMap<String, String>,

    /// What happens to the ElevenLabs agent when this resource is deleted:
    /// Delete removes it, Retain keeps it. The tenant configuration is
    /// removed either way.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A VoiceAgentTemplate in the VoiceAgent's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// Name of the VoiceAgentTemplate.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// The CEL rule on `variables`: names ElevenLabs takes as dynamic
/// variables (elevenlabs-docs `customization/dynamic-variables.mdx`; the
/// `system__` prefix is its own), values of at most 1000 characters.
pub const VARIABLES_RULE: &str = "self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]{0,63}$') && !k.startsWith('system__') && size(self[k]) <= 1000)";
/// What the API server says when [`VARIABLES_RULE`] fails.
pub const VARIABLES_MESSAGE: &str = "variables: names are 1 to 64 letters, digits or '_', not starting with a digit or system__; values at most 1000 characters";

/// Removes the `default` schemars writes for a `#[serde(default)]`
/// field, so that the API server does not fill one in: an absent field
/// then stays absent, for a template to fill.
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// A staff number a caller can be handed to, and when.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransferRule {
    /// The number to transfer to, in E.164 form (+40722000111).
    #[schemars(regex(pattern = r"^\+[1-9][0-9]{1,14}$"))]
    pub number: String,

    /// When to transfer, in words the agent's model reads ("the caller
    /// asks for a person").
    #[schemars(length(min = 1, max = 500))]
    pub condition: String,
}

/// Addresses the business is told at, checked as the operator checks a
/// recipient before sending (`messaging::address`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.email) || has(self.sms)")
    .message("spec.notify needs email or sms"))]
pub struct NotifySpec {
    /// Email address for each call's summary and transcript
    /// (clinic@example.ro): an address without display name, at most 254
    /// characters, at most 64 before the @.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN))]
    #[x_kube(validation = Rule::new("self.lastIndexOf('@') <= 64")
        .message("spec.notify.email has more than 64 characters before the @"))]
    pub email: Option<String>,

    /// Phone number for each call's summary by SMS, in E.164 form
    /// (+40721000111).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub sms: Option<String>,
}

/// An RFC 5322 addr-spec as `messaging::address::EmailAddress` takes it: a
/// dot-atom before the @, dot-separated labels of letters, digits and
/// inner hyphens (at most 63 each, at least two) after it.
const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// The CEL rule behind [`VoiceAgentSpec`]'s model check: an English-only
/// v2 model with another language, or a v2_5 model with English, is
/// refused. A missing language is en, its default.
const VOICE_MODEL_RULE: &str = "!has(self.voice) || !has(self.voice.model) || \
    ((has(self.language) ? self.language : 'en') == 'en' \
        ? !(self.voice.model in ['eleven_flash_v2_5', 'eleven_turbo_v2_5']) \
        : !(self.voice.model in ['eleven_flash_v2', 'eleven_turbo_v2']))";

/// How the agent's voice speaks (ElevenLabs `conversation_config.tts`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VoiceSpec {
    /// ElevenLabs TTS model; see [`VoiceModel`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<VoiceModel>,

    /// How steady the voice is, 0.0 (more expressive) to 1.0 (more
    /// monotone). ElevenLabs' default is 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub stability: Option<f64>,

    /// Speaking speed, 0.7 (slower) to 1.2 (faster). ElevenLabs' default
    /// is 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.7, max = 1.2))]
    pub speed: Option<f64>,

    /// How closely the voice keeps to the original, 0.0 to 1.0.
    /// ElevenLabs' default is 0.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub similarity_boost: Option<f64>,
}

/// ElevenLabs TTS model. Default: eleven_flash_v2 for en,
/// eleven_flash_v2_5 for other languages. eleven_flash_v2 and
/// eleven_turbo_v2 speak English only; ElevenLabs refuses eleven_flash_v2_5
/// and eleven_turbo_v2_5 for English agents. The values are the agent
/// models of ElevenLabs' API (`TTSConversationalModel`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoiceModel {
    /// Flash v2: fastest, English only.
    #[serde(rename = "eleven_flash_v2")]
    ElevenFlashV2,
    /// Flash v2.5: fastest, 32 languages, not for English agents.
    #[serde(rename = "eleven_flash_v2_5")]
    ElevenFlashV2_5,
    /// Turbo v2: English only; ElevenLabs deprecates it for eleven_flash_v2.
    #[serde(rename = "eleven_turbo_v2")]
    ElevenTurboV2,
    /// Turbo v2.5: 32 languages, not for English agents; ElevenLabs
    /// deprecates it for eleven_flash_v2_5.
    #[serde(rename = "eleven_turbo_v2_5")]
    ElevenTurboV2_5,
    /// Multilingual v2: 29 languages, slower than Flash.
    #[serde(rename = "eleven_multilingual_v2")]
    ElevenMultilingualV2,
    /// v3 Conversational: 70+ languages.
    #[serde(rename = "eleven_v3_conversational")]
    ElevenV3Conversational,
}

impl VoiceModel {
    /// The model id as the ElevenLabs API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceModel::ElevenFlashV2 => "eleven_flash_v2",
            VoiceModel::ElevenFlashV2_5 => "eleven_flash_v2_5",
            VoiceModel::ElevenTurboV2 => "eleven_turbo_v2",
            VoiceModel::ElevenTurboV2_5 => "eleven_turbo_v2_5",
            VoiceModel::ElevenMultilingualV2 => "eleven_multilingual_v2",
            VoiceModel::ElevenV3Conversational => "eleven_v3_conversational",
        }
    }
}

/// Limits, recording and retention of each call.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSpec {
    /// Longest call, in seconds (30 to 7200).
    // `format: int32` because the API server knows int32 and int64 only;
    // schemars' own `uint32` makes kubectl warn on every apply.
    #[serde(default = "default_max_duration")]
    #[schemars(range(min = 30, max = 7200), extend("format" = "int32"))]
    pub max_duration_seconds: u32,

    /// Seconds of caller silence before the agent speaks again (1 to 60).
    #[serde(default = "default_turn_timeout")]
    #[schemars(range(min = 1, max = 60), extend("format" = "int32"))]
    pub turn_timeout_seconds: u32,

    /// Record calls: ElevenLabs records the audio
    /// (platform_settings.privacy.record_voice) and the operator keeps the
    /// transcript. false turns both off.
    #[serde(default = "default_true")]
    pub record_calls: bool,

    /// Send the transcript to the business after each call.
    #[serde(default)]
    pub send_transcripts: bool,

    /// Days ElevenLabs keeps each conversation (transcript, audio,
    /// metadata) before deleting it; -1 keeps it without limit, 0 deletes
    /// it right after the call. Default 90: long enough to look into a
    /// caller's complaint, short enough that patient data does not pile
    /// up at a third party. The operator's own copy (recordCalls) is the
    /// record to keep longer.
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = -1, max = 3650), extend("format" = "int32"))]
    pub retention_days: i32,

    /// Zero retention mode: ElevenLabs stores no recordings, transcripts
    /// or other personal data of the call at all; the post-call webhook is
    /// then the only copy. Default false. A workspace with zero retention
    /// switched on forces it on every agent.
    #[serde(default)]
    pub zero_retention: bool,
}

impl Default for ConversationSpec {
    fn default() -> Self {
        ConversationSpec {
            max_duration_seconds: default_max_duration(),
            turn_timeout_seconds: default_turn_timeout(),
            record_calls: true,
            send_transcripts: false,
            retention_days: default_retention_days(),
            zero_retention: false,
        }
    }
}

/// Call limits of one location (ElevenLabs `platform_settings.call_limits`,
/// `AgentCallLimits` in its OpenAPI document). A limit left out is
/// ElevenLabs' default: no limit on calls at once, 100000 calls a day.
/// Removing spec.limits altogether leaves the agent's limits as they
/// were; `limits: {}` puts both defaults back.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Most calls the agent takes at the same time (1 or more); ElevenLabs
    /// refuses a call beyond it.
    // ElevenLabs' schema says only "integer" (-1 meaning no limit): below
    // 1 nothing would be answered, which is what enabled: false is for;
    // the upper bound is the API server's int32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647), extend("format" = "int32"))]
    pub concurrent_calls: Option<i32>,

    /// Most calls the agent takes in a day (1 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647), extend("format" = "int32"))]
    pub daily_calls: Option<i32>,
}

/// Post-call analysis: ElevenLabs' data collection
/// (`platform_settings.data_collection`) and success evaluation
/// (`platform_settings.evaluation.criteria`). The criteria list replaces
/// the agent's; data-collection items are merged into the agent's by id
/// (ElevenLabs' PATCH merges objects), so an item taken out of the list
/// stays on the agent until it is removed in the dashboard.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSpec {
    /// Items ElevenLabs extracts from each conversation, one per id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"])
    )]
    pub data_collection: Vec<DataCollectionItem>,

    /// Goals each conversation is evaluated against (success, failure or
    /// unknown), one per id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"])
    )]
    pub evaluation_criteria: Vec<EvaluationCriterion>,
}

/// One piece of data ElevenLabs extracts from a conversation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DataCollectionItem {
    /// Identifier of the item (appointment_date, caller_name): the key of
    /// its result. 1 to 64 letters, digits, '_' or '-'.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub id: String,

    /// Type of the value: string, boolean, integer or number.
    #[serde(rename = "type")]
    pub value_type: DataType,

    /// What to extract and how, in words ElevenLabs' model reads.
    #[schemars(length(min = 1, max = 2000))]
    pub description: String,
}

/// The value types ElevenLabs' data collection knows
/// (`AnalysisProperty.type`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Boolean,
    String,
    Integer,
    Number,
}

impl DataType {
    /// The type as the ElevenLabs API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::String => "string",
            DataType::Integer => "integer",
            DataType::Number => "number",
        }
    }
}

/// A goal each conversation is evaluated against
/// (`PromptEvaluationCriteria`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationCriterion {
    /// Identifier of the criterion (appointment_booked): the key of its
    /// result. 1 to 64 letters, digits, '_' or '-'.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub id: String,

    /// What counts as success, in words ElevenLabs' model reads ("the
    /// caller booked an appointment"); at most 2000 characters, as
    /// ElevenLabs allows.
    #[schemars(length(min = 1, max = 2000))]
    pub goal: String,
}

/// Where an imported phone number comes from: exactly one provider.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.twilioSecretRef) != has(self.sipTrunk)")
    .message("spec.telephony needs exactly one of twilioSecretRef and sipTrunk"))]
pub struct TelephonySpec {
    /// Secret in this VoiceAgent's namespace holding the Twilio account
    /// that owns the number: key accountSid (the Account SID, AC...) and
    /// key authToken (the Auth Token). The operator reads it only to
    /// import the number; inbound SMS stays with Twilio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_secret_ref: Option<SecretRef>,

    /// A SIP trunk that carries the number's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_trunk: Option<SipTrunkSpec>,
}

/// Key of the Twilio Secret holding the Account SID.
pub const TWILIO_ACCOUNT_SID_KEY: &str = "accountSid";
/// Key of the Twilio Secret holding the Auth Token.
pub const TWILIO_AUTH_TOKEN_KEY: &str = "authToken";

/// A Secret in the VoiceAgent's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// The SIP trunk ElevenLabs sends the number's calls to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SipTrunkSpec {
    /// Hostname or IP address of the trunk (sip.example.com, 203.0.113.7).
    #[schemars(length(min = 1, max = 253))]
    pub address: String,

    /// SIP transport; ElevenLabs picks one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<SipTransport>,

    /// Whether call audio is encrypted (SRTP); ElevenLabs allows it when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_encryption: Option<SipMediaEncryption>,
}

/// SIP transport (ElevenLabs `SIPTrunkTransportEnum`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    Auto,
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// The value as the ElevenLabs API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Auto => "auto",
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        }
    }
}

/// SIP media encryption (ElevenLabs `SIPMediaEncryptionEnum`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SipMediaEncryption {
    Disabled,
    Allowed,
    Required,
}

impl SipMediaEncryption {
    /// The value as the ElevenLabs API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SipMediaEncryption::Disabled => "disabled",
            SipMediaEncryption::Allowed => "allowed",
            SipMediaEncryption::Required => "required",
        }
    }
}

/// A Bedrock Agent and the alias to invoke.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BedrockSpec {
    /// Bedrock Agent id (10 letters or digits).
    #[schemars(regex(pattern = r"^[0-9A-Za-z]{10}$"))]
    pub agent_id: String,
    /// Alias of the agent to invoke (10 letters or digits; TSTALIASID is
    /// the draft).
    #[schemars(regex(pattern = r"^[0-9A-Za-z]{10}$"))]
    pub agent_alias_id: String,
}

/// What deleting a VoiceAgent does to its ElevenLabs agent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the ElevenLabs agent.
    #[default]
    Delete,
    /// Keep the ElevenLabs agent (for example to move it elsewhere).
    Retain,
}

/// Where a VoiceAgent stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Not reconciled yet, or waiting on ElevenLabs.
    Pending,
    /// The agent answers calls.
    Active,
    /// enabled is false; the agent is kept.
    Disabled,
    /// The last reconcile failed; see the conditions.
    Error,
    /// Another VoiceAgent already manages this businessId and locationId.
    Conflict,
}

/// What the operator last did and saw.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VoiceAgentStatus {
    /// Pending, Active, Disabled, Error or Conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Id of the ElevenLabs agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// metadata.generation that the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When ElevenLabs and the tenant store last matched the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_at: Option<String>,
    /// Hash of the agent configuration last sent to ElevenLabs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The phone number phoneNumberId is, as last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Id of spec.phoneNumber in the ElevenLabs workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// Whether calls to spec.phoneNumber reach this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_assigned: Option<bool>,
    /// Whether the operator imported the number (true) or found it in the
    /// workspace (false); only an imported number is ever removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_imported: Option<bool>,
    /// metadata.generation of the spec.templateRef template this status
    /// applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_generation: Option<i64>,
    /// Ready, AgentSynced, ConfigSynced and, with spec.phoneNumber,
    /// PhoneNumber.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn default_true() -> bool {
    true
}

fn default_language() -> String {
    "en".into()
}

fn default_max_duration() -> u32 {
    300
}

fn default_turn_timeout() -> u32 {
    10
}

fn default_retention_days() -> i32 {
    90
}

/// The CRD as YAML, as `voice-operator crd` prints it and
/// `crds/voiceagents.io_voiceagents.yaml` holds it.
pub fn crd_yaml() -> String {
    serde_saphyr::to_string(&VoiceAgent::crd()).expect("the CRD serializes")
}
