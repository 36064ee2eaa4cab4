//! The VoiceAgent controller: decisions as pure functions ([`desired`],
//! [`plan`], [`status`], [`template`]), executed against ElevenLabs, the tenant store
//! and the API server by [`reconcile`], run under leader election by
//! [`runner`].

pub mod desired;
pub mod error;
pub mod inventory;
pub mod metrics;
pub mod objects;
pub mod plan;
pub mod reason;
pub mod reconcile;
pub mod runner;
pub mod status;
pub mod template;

pub use error::Error;
pub use metrics::Metrics;
pub use reconcile::{Context, Parts, Timing, error_policy, reconcile};
