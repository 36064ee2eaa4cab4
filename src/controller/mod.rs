//! The VoiceAgent controller: decisions as pure functions ([`desired`],
//! [`plan`]), executed against ElevenLabs, the tenant store and the API
//! server by the reconciler.

pub mod desired;
pub mod plan;
