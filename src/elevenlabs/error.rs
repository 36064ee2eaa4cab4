//! Errors of the ElevenLabs API, classified where the response is read.

use std::time::Duration;

use crate::ids::IdError;

/// A failed ElevenLabs call. `operation` names the call, such as
/// `PATCH /v1/convai/agents/agent_123`; the API key never appears.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ElevenLabsError {
    #[error("ElevenLabs {operation}: not found")]
    NotFound { operation: String },
    /// The request was refused as invalid (400 or 422); `message` is the
    /// provider's own explanation.
    #[error("ElevenLabs {operation} rejected the request ({status}): {message}")]
    Validation {
        operation: String,
        status: u16,
        message: String,
    },
    #[error(
        "ElevenLabs {operation}: the API key was refused ({status}): {message}; check ELEVENLABS_API_KEY"
    )]
    Auth {
        operation: String,
        status: u16,
        message: String,
    },
    #[error("ElevenLabs {operation}: rate limited{}", match retry_after { Some(d) => format!("; retry after {} s", d.as_secs_f64()), None => String::new() })]
    RateLimited {
        operation: String,
        retry_after: Option<Duration>,
    },
    #[error("ElevenLabs {operation}: server error {status}: {message}")]
    Server {
        operation: String,
        status: u16,
        message: String,
    },
    #[error("ElevenLabs {operation}: no answer within {} s", after.as_secs_f64())]
    Timeout { operation: String, after: Duration },
    #[error("ElevenLabs {operation}: {message}")]
    Transport { operation: String, message: String },
    /// A status we do not expect from this API (say 409 or 418).
    #[error("ElevenLabs {operation}: unexpected status {status}: {message}")]
    Unexpected {
        operation: String,
        status: u16,
        message: String,
    },
    /// The answer was 2xx but not what the API documents.
    #[error("ElevenLabs {operation}: bad response: {field} {reason}")]
    BadResponse {
        operation: String,
        field: String,
        reason: String,
    },
    #[error("ElevenLabs request not sent: {0}")]
    InvalidId(#[from] IdError),
}

impl ElevenLabsError {
    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ElevenLabsError::RateLimited { .. }
                | ElevenLabsError::Server { .. }
                | ElevenLabsError::Timeout { .. }
                | ElevenLabsError::Transport { .. }
        )
    }

    /// How long the provider asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ElevenLabsError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
