//! The VoiceAgents, operator settings and tenant settings that tests and
//! benches build, written once.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use crate::controller::desired::OperatorSettings;
use crate::crd::{VoiceAgent, VoiceAgentSpec};
use crate::elevenlabs::model::Tts;
use crate::elevenlabs::{DesiredAgent, Llm};
use crate::ids::Id;
use crate::tenant::{ConversationSettings, TenantSettings};

/// uid of [`clinic`].
pub const CLINIC_UID: &str = "6f1c2a9e-0b7d-4c1e-9a51-2f3d4e5a6b7c";

/// The Romanian dental clinic of the examples, B0100001/L0100001, as the
/// API server would hand it over after its first write (namespace, uid,
/// generation 1, a creation time).
pub fn clinic() -> VoiceAgent {
    let spec: VoiceAgentSpec = serde_json::from_value(json!({
        "businessId": "B0100001",
        "locationId": "L0100001",
        "businessName": "Clinica Dentara XYZ",
        "voiceId": "21m00Tcm4TlvDq8ikWAM",
        "language": "ro",
        "greeting": "Bună ziua! Cu ce vă pot ajuta?",
        "customPrompt": "You are a helpful dental assistant.",
        "phoneNumber": "+40312345678"
    }))
    .expect("the clinic's spec is valid");
    let mut va = VoiceAgent::new("clinica-xyz", spec);
    va.metadata.namespace = Some("tenants".into());
    va.metadata.uid = Some(CLINIC_UID.into());
    va.metadata.generation = Some(1);
    va.metadata.resource_version = Some("1".into());
    va.metadata.creation_timestamp = Some(created_at(1_700_000_000));
    va
}

/// A VoiceAgent with only the required fields, for business `B1` at
/// `location`, in namespace `tenants`.
pub fn voice_agent(name: &str, uid: &str, location: &str) -> VoiceAgent {
    let spec: VoiceAgentSpec = serde_json::from_value(json!({
        "businessId": "B1", "locationId": location, "businessName": "Clinic",
        "voiceId": "v1", "greeting": "Hello"
    }))
    .expect("the minimal spec is valid");
    let mut va = VoiceAgent::new(name, spec);
    va.metadata.uid = Some(uid.into());
    va.metadata.namespace = Some("tenants".into());
    va
}

/// A creation time `secs` after the epoch.
pub fn created_at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("a valid timestamp"))
}

/// The operator-wide settings the tests reconcile with.
pub fn operator_settings() -> OperatorSettings {
    OperatorSettings {
        public_url: "https://voice.example.com".into(),
        llm_secret_id: Some("llm-secret".into()),
        default_prompt: "You are a helpful assistant.".into(),
        post_call_webhook_id: None,
        cascade_timeout_secs: crate::elevenlabs::model::DEFAULT_CASCADE_TIMEOUT_SECS,
    }
}

/// Tenant settings of a Romanian clinic whose ElevenLabs agent is `agent`.
pub fn tenant_settings(agent: &str, enabled: bool) -> TenantSettings {
    TenantSettings {
        enabled,
        agent_id: Id::parse("agentId", agent).expect("a valid agent id"),
        voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
        greeting: "Bună ziua!".into(),
        custom_prompt: None,
        business_name: Some("Clinica Test".into()),
        phone_number: None,
        bedrock: None,
        conversation: ConversationSettings {
            max_duration_secs: 300,
            record_calls: true,
            send_transcripts: false,
        },
        notify: Default::default(),
    }
}

/// The seed's example tenant item for `location`, as it was written before
/// the operator (no owner, no version).
pub fn seed_item(location: &str) -> serde_json::Map<String, serde_json::Value> {
    let item = json!({
        "businessId": "B0100001",
        "locationId": location,
        "enabled": true,
        "agentId": "agent_abc123",
        "voiceId": "voice_def456",
        "greeting": "Bună ziua! Sunt asistentul virtual.",
        "customPrompt": "You are a helpful assistant...",
        "conversationSettings": {"maxDuration": 300, "recordCalls": true, "sendTranscripts": false},
        "createdAt": "2025-10-15T10:00:00Z",
        "updatedAt": "2025-10-15T10:00:00Z"
    });
    match item {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The agent body of the Romanian clinic as the client sends it: custom
/// LLM on its bridge route, a multilingual voice model, no workspace
/// secret and no platform settings.
pub fn desired_agent() -> DesiredAgent {
    DesiredAgent {
        name: "Agent Clinica Dentara XYZ".into(),
        tags: vec!["voiceagents.io/uid=8d2c".into()],
        first_message: "Bună ziua! Sunt asistentul clinicii.".into(),
        language: "ro".into(),
        prompt: "You are a helpful dental assistant...".into(),
        llm: Llm::Custom {
            url: "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001".into(),
            api_key_secret_id: None,
        },
        tts: Tts {
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            model_id: "eleven_flash_v2_5".into(),
            stability: None,
            speed: None,
            similarity_boost: None,
        },
        turn_timeout_secs: 10,
        max_duration_secs: 300,
        time_zone: None,
        cascade_timeout_secs: crate::elevenlabs::model::DEFAULT_CASCADE_TIMEOUT_SECS,
        transfers: Vec::new(),
        privacy: None,
        post_call_webhook: None,
        dynamic_variables: Default::default(),
        call_limits: None,
        analysis: None,
        platform_settings: None,
    }
}
