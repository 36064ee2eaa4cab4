//! The one error type of the bridge routes: each variant picks its status,
//! the body names the field at fault, and internal causes are logged but
//! never sent back.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admin::AdminError;
use crate::elevenlabs::signature::SignatureError;
use crate::tenant::TenantKey;

/// Why a bridge request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong signature, bearer secret or admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// A field is missing, has the wrong type or an invalid value.
    #[error("{field}: {reason}")]
    BadField { field: String, reason: String },
    /// The body is not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("no voice agent is configured for {0}")]
    UnknownTenant(TenantKey),
    /// The change collides with what someone else manages.
    #[error("{0}")]
    Conflict(String),
    /// The request names one tenant and refers to another's agent or call.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The tenant store or the cluster cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected answer; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::BadField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadField { .. } | ApiError::NotJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownTenant(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        ApiError::Unauthorized(e.to_string())
    }
}

impl From<crate::ids::IdError> for ApiError {
    fn from(e: crate::ids::IdError) -> Self {
        ApiError::field(e.field, e.reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({"error": self.to_string()});
        match &self {
            ApiError::BadField { field, .. } => body["field"] = json!(field),
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(cause = %cause, "request refused"),
            other => tracing::info!(status = status.as_u16(), reason = %other, "request refused"),
        }
        (status, Json(body)).into_response()
    }
}

/// Parses `body` as `T`, naming the path of the field at fault.
///
/// A body that parses takes serde_json alone; the path is tracked only to
/// explain a body that does not (tracking it costs about as much again as
/// the parse, on every custom-LLM turn and webhook).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => de
            .end()
            .map(|()| value)
            .map_err(|e| ApiError::NotJson(e.to_string())),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::NotJson(inner.to_string()));
            }
            let message = inner.to_string();
            // serde names a missing field in its message, not in the path.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                Some(name) if path == "." => name.to_owned(),
                Some(name) => format!("{path}.{name}"),
                None => path,
            };
            let reason = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            Err(ApiError::field(field, reason))
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        match e {
            AdminError::NotFound(m) => ApiError::NotFound(m),
            AdminError::Conflict(m) => ApiError::Conflict(m),
            AdminError::Invalid { field, reason } => ApiError::BadField { field, reason },
            AdminError::Unavailable(m) => ApiError::Unavailable(m),
            AdminError::Internal(m) => ApiError::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        message: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        content: String,
    }

    #[test]
    fn errors_name_the_field_path() {
        let field = |body: &str| match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::BadField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{}"#), "message");
        assert_eq!(field(r#"{"message":{}}"#), "message.content");
        assert_eq!(field(r#"{"message":{"content":5}}"#), "message.content");
        assert!(matches!(
            parse_json::<Outer>(b"{\"message\":"),
            Err(ApiError::NotJson(_))
        ));
    }
}
