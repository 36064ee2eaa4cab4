//! The `VoiceAgentTemplate` custom resource: what a business shares across
//! its locations. A VoiceAgent names one in `spec.templateRef`; the
//! controller merges the two (`controller::template`).

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    AnalysisSpec, BedrockSpec, ConversationSpec, LimitsSpec, NotifySpec, TransferRule,
    VARIABLES_MESSAGE, VARIABLES_RULE, VoiceSpec,
};

/// What a business's VoiceAgents share: prompt, language, voice, privacy,
/// limits, analysis, transfer rules, notify addresses, variables. Each
/// field is optional; a VoiceAgent overrides any of them.
// Each printcolumn repeats `type_`, which clippy takes for a duplicated
// attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "voiceagents.io",
    version = "v1alpha1",
    kind = "VoiceAgentTemplate",
    plural = "voiceagenttemplates",
    shortname = "vat",
    namespaced,
    cel,
    status = "VoiceAgentTemplateStatus",
    derive = "PartialEq",
    doc = "What a business's VoiceAgents share across its locations, managed by voice-operator",
    printcolumn(name = "Agents", type_ = "integer", json_path = ".status.voiceAgents"),
    printcolumn(name = "Updated", type_ = "integer", json_path = ".status.updated"),
    printcolumn(name = "Pending", type_ = "integer", json_path = ".status.pending"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.failed"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.businessId) && !has(self.locationId)")
    .message("a VoiceAgentTemplate cannot set businessId or locationId: each VoiceAgent names its own location"))]
pub struct VoiceAgentTemplateSpec {
    /// Not allowed: each VoiceAgent names its own business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,

    /// Not allowed: each VoiceAgent names its own location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,

    /// Name callers know the business by (VoiceAgent spec.businessName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub business_name: Option<String>,

    /// ElevenLabs voice id (VoiceAgent spec.voiceId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub voice_id: Option<String>,

    /// Language of the conversation, ISO 639-1 (VoiceAgent spec.language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 5),
        regex(pattern = r"^[a-z]{2}(-[A-Za-z]{2})?$")
    )]
    pub language: Option<String>,

    /// First sentence the agent says (VoiceAgent spec.greeting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub greeting: Option<String>,

    /// Instructions for the agent (VoiceAgent spec.customPrompt); name a
    /// location's own values as {{variable}}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20000))]
    pub custom_prompt: Option<String>,

    /// Staff numbers (VoiceAgent spec.transfer); a VoiceAgent's own list
    /// replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub transfer: Option<Vec<TransferRule>>,

    /// IANA time zone (VoiceAgent spec.timeZone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
    )]
    pub time_zone: Option<String>,

    /// How the voice speaks (VoiceAgent spec.voice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceSpec>,

    /// Limits, recording and retention (VoiceAgent spec.conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationSpec>,

    /// Call limits (VoiceAgent spec.limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,

    /// Post-call analysis (VoiceAgent spec.analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,

    /// Where the business hears about its calls (VoiceAgent spec.notify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,

    /// Bedrock Agent (VoiceAgent spec.bedrock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSpec>,

    /// Values the prompt names as {{name}}, shared by every location; a
    /// VoiceAgent's own variables are merged over them key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new(VARIABLES_RULE).message(VARIABLES_MESSAGE))]
    pub variables: BTreeMap<String, String>,

    /// How an edit of this template reaches its VoiceAgents.
    #[serde(default)]
    pub rollout: RolloutSpec,
}

/// How an edit of a template reaches its VoiceAgents.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Most VoiceAgents of this template whose ElevenLabs agent is being
    /// written at the same time (1 to 100).
    #[serde(default = "default_max_concurrent")]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32"))]
    pub max_concurrent: u32,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            max_concurrent: default_max_concurrent(),
        }
    }
}

fn default_max_concurrent() -> u32 {
    5
}

/// How far the template's last edit has reached.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VoiceAgentTemplateStatus {
    /// metadata.generation the counts describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// VoiceAgents that name this template.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub voice_agents: u32,
    /// Of those, the ones whose agent runs this generation of the template.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub updated: u32,
    /// The ones still to be updated, or being updated.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub pending: u32,
    /// The ones whose last reconcile failed and that wait for a change
    /// (Stalled).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
}

/// The template CRD as YAML, as `voice-operator crd` prints it after the
/// VoiceAgent CRD and `crds/voiceagents.io_voiceagenttemplates.yaml` holds
/// it.
pub fn template_crd_yaml() -> String {
    serde_saphyr::to_string(&VoiceAgentTemplate::crd()).expect("the CRD serializes")
}
