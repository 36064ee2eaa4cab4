//! AWS SDK answers (SNS, SES v2) read for what callers act on: errors
//! sorted into classes, and the message id of an accepted message. Both
//! SDKs share the smithy error types, so one reading serves both.

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{SendError, Sent};
use crate::actionlog::record::Provider;

/// Error codes that mean our credentials or their permissions were refused.
const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSecurity",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "NotAuthorized",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];

/// Error codes for throttling and passing service trouble, whatever the
/// HTTP status (several arrive as 400).
const RETRYABLE_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "KMSThrottling",
    "LimitExceededException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "Throttled",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

/// The three outcomes a service error can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Retryable,
    Permanent,
}

/// Classifies a service error by its code first, then its HTTP status.
fn class_of(code: Option<&str>, status: u16) -> Class {
    match code {
        Some(code) if AUTH_CODES.contains(&code) => Class::Auth,
        Some(code) if RETRYABLE_CODES.contains(&code) => Class::Retryable,
        _ => match status {
            401 | 403 => Class::Auth,
            429 | 500..=599 => Class::Retryable,
            _ => Class::Permanent,
        },
    }
}

/// What an SNS or SES call that succeeded means: sent, with the
/// `MessageId` it answered. Without one it is a permanent error, not a
/// retryable one: the service took the request, and sending again could
/// deliver the message twice.
pub(super) fn accepted(provider: Provider, message_id: Option<&str>) -> Result<Sent, SendError> {
    match message_id {
        Some(id) if !id.is_empty() => Ok(Sent {
            external_id: id.to_owned(),
            price: None,
        }),
        _ => Err(SendError::Permanent {
            provider,
            message: "answered without a MessageId".into(),
        }),
    }
}

/// The [`SendError`] for a failed SNS or SES call. The provider's code and
/// message are kept (`MessageRejected: Email address not verified …`).
pub(super) fn classify<E>(provider: Provider, error: &SdkError<E>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            let status = context.raw().status().as_u16();
            let message = match (err.code(), err.message()) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code.to_owned(),
                (None, Some(text)) => format!("HTTP {status}: {text}"),
                (None, None) => format!("HTTP {status}: {message}"),
            };
            match class_of(err.code(), status) {
                Class::Auth => SendError::Auth { provider, message },
                Class::Retryable => SendError::Retryable { provider, message },
                Class::Permanent => SendError::Permanent { provider, message },
            }
        }
        // No answer, or one we could not read: the SDK has already spent
        // its own retries, a later attempt may fare better.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SendError::Retryable { provider, message }
        }
        // The request could not be built from what we gave it.
        SdkError::ConstructionFailure(_) => SendError::Invalid(message),
        _ => SendError::Permanent { provider, message },
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::config::http::HttpResponse;
    use aws_sdk_sns::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    #[test]
    fn an_accepted_message_needs_its_id() {
        let sent = accepted(Provider::AwsSes, Some("0100018c-abc")).unwrap();
        assert_eq!(sent.external_id, "0100018c-abc");
        for missing in [None, Some("")] {
            match accepted(Provider::AwsSns, missing) {
                Err(SendError::Permanent { provider, message }) => {
                    assert_eq!(provider, Provider::AwsSns);
                    assert_eq!(message, "answered without a MessageId");
                }
                other => panic!("{missing:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn codes_decide_before_the_status() {
        assert_eq!(class_of(Some("AuthorizationError"), 403), Class::Auth);
        assert_eq!(class_of(Some("InvalidClientTokenId"), 403), Class::Auth);
        assert_eq!(class_of(Some("SignatureDoesNotMatch"), 400), Class::Auth);
        assert_eq!(class_of(Some("Throttling"), 400), Class::Retryable);
        assert_eq!(class_of(Some("Throttled"), 400), Class::Retryable);
        assert_eq!(
            class_of(Some("TooManyRequestsException"), 429),
            Class::Retryable
        );
        assert_eq!(
            class_of(Some("LimitExceededException"), 400),
            Class::Retryable
        );
        assert_eq!(class_of(Some("InvalidParameter"), 400), Class::Permanent);
        assert_eq!(class_of(Some("MessageRejected"), 400), Class::Permanent);
        assert_eq!(
            class_of(Some("AccountSuspendedException"), 400),
            Class::Permanent
        );
        // A KMS key we may not use is configuration, not our credentials.
        assert_eq!(class_of(Some("KMSAccessDenied"), 400), Class::Permanent);
    }

    #[test]
    fn the_status_decides_unknown_codes() {
        assert_eq!(class_of(None, 500), Class::Retryable);
        assert_eq!(class_of(Some("Whatever"), 503), Class::Retryable);
        assert_eq!(class_of(None, 429), Class::Retryable);
        assert_eq!(class_of(None, 403), Class::Auth);
        assert_eq!(class_of(None, 404), Class::Permanent);
    }

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<PublishError> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(PublishError::generic(meta), response)
    }

    #[test]
    fn service_errors_keep_code_and_message() {
        let error = classify(
            Provider::AwsSns,
            &service_error("InvalidParameter", "Invalid parameter: PhoneNumber", 400),
        );
        assert_eq!(
            error,
            SendError::Permanent {
                provider: Provider::AwsSns,
                message: "InvalidParameter: Invalid parameter: PhoneNumber".into()
            }
        );
        let error = classify(
            Provider::AwsSns,
            &service_error("Throttling", "Rate exceeded", 400),
        );
        assert!(error.is_retryable(), "{error:?}");
        let error = classify(
            Provider::AwsSes,
            &service_error("InvalidClientTokenId", "The security token is invalid", 403),
        );
        assert!(matches!(error, SendError::Auth { .. }), "{error:?}");
    }

    #[test]
    fn no_answer_is_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let dispatch: SdkError<PublishError> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert!(classify(Provider::AwsSns, &dispatch).is_retryable());
        let timeout: SdkError<PublishError> = SdkError::timeout_error("attempt timed out");
        assert!(classify(Provider::AwsSns, &timeout).is_retryable());
    }
}
