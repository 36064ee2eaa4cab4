//! What a caller hears when the tenant's VoiceAgent is disabled but a call
//! reaches its agent anyway (its number is unassigned, yet a widget, a test
//! call or a stale route can still open a conversation): one polite sentence
//! in the agent's language, answered with 200 so that ElevenLabs speaks it,
//! instead of an error status that breaks the call and makes it retry.

use super::spoken::{Phrase, in_language};
use super::state::AppState;
use crate::tenant::TenantConfig;

/// Metadata key of the `voice_call` records of a disabled tenant's turns,
/// so that the audit trail shows calls that reached a disabled agent.
pub const TENANT_DISABLED: &str = "tenantDisabled";

/// The closing sentence per ElevenLabs language code; the first is the
/// fallback for every language without one.
const CLOSING: &Phrase = &[
    (
        "en",
        "Sorry, this line is not taking calls at the moment, please call again later.",
    ),
    (
        "ro",
        "Ne pare rău, această linie nu preia apeluri în acest moment, vă rugăm să reveniți mai târziu.",
    ),
];

/// The closing sentence for `language`, English when it has none (or when
/// the language is not known).
pub fn sentence_for(language: Option<&str>) -> &'static str {
    in_language(CLOSING, language)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_follows_the_language_and_falls_back_to_english() {
        assert!(sentence_for(Some("ro")).starts_with("Ne pare rău"));
        assert!(sentence_for(Some("RO")).starts_with("Ne pare rău"));
        assert!(sentence_for(Some("en")).starts_with("Sorry"));
        assert_eq!(sentence_for(Some("ja")), sentence_for(Some("en")));
        assert_eq!(sentence_for(None), sentence_for(Some("en")));
        assert_eq!(sentence_for(Some("")), sentence_for(Some("en")));
        for (_, sentence) in CLOSING {
            // One sentence: a single full stop, at the end.
            assert_eq!(sentence.matches('.').count(), 1, "{sentence}");
            assert!(sentence.ends_with('.'), "{sentence}");
        }
    }
}
