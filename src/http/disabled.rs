//! What a caller hears when the tenant's VoiceAgent is disabled but a call
//! reaches its agent anyway (its number is unassigned, yet a widget, a test
//! call or a stale route can still open a conversation): one polite sentence
//! in the agent's language, answered with 200 so that ElevenLabs speaks it,
//! instead of an error status that breaks the call and makes it retry. On
//! the custom-LLM route the sentence is followed by an `end_call` tool call,
//! so that ElevenLabs hangs up instead of waiting for the caller's next
//! words.

use super::state::AppState;
use crate::tenant::TenantConfig;

/// Metadata key of the `voice_call` records of a disabled tenant's turns,
/// so that the audit trail shows calls that reached a disabled agent.
pub const TENANT_DISABLED: &str = "tenantDisabled";

/// The `reason` of the `end_call` that ends a disabled tenant's call.
pub const END_REASON: &str = "the voice agent is disabled";

/// The closing sentence for `language`, English when it has none (or when
/// the language is not known).
pub use crate::elevenlabs::model::closing_sentence as sentence_for;

/// The closing sentence for a call to `tenant`'s agent, in the language
/// its ElevenLabs agent speaks (the tenant item does not carry it).
pub async fn closing_sentence(state: &AppState, tenant: &TenantConfig) -> &'static str {
    let language = state.agent_language(&tenant.settings.agent_id).await;
    tracing::info!(
        language = language.as_deref().unwrap_or("unknown"),
        "the voice agent is disabled; the caller hears the closing sentence"
    );
    sentence_for(language.as_deref())
}
