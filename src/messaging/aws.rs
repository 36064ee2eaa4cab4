//! What the two AWS providers (SNS, SES v2) share: the SDK settings of a
//! send, and their answers read for what callers act on (errors sorted into
//! classes, the message id of an accepted message). Both SDKs share the
//! smithy types, so one reading serves both.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{SendError, Sent};
use crate::actionlog::record::Provider;

/// One attempt per send. The SDK's standard retry resends after a timeout
/// or a 5xx, which for `Publish` and `SendEmail` may deliver the message
/// twice: neither takes an idempotency token (SNS's
/// `MessageDeduplicationId` applies only to FIFO topics, not to SMS sent
/// to a phone number; SES v2 `SendEmail` has no token at all). Whether to
/// send again is decided by the caller, from what the error proves.
pub(super) fn one_attempt() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(1)
}

/// The time bounds of a send: `timeout` for the whole call, and a shorter
/// one for the connection, so that a service we could not reach (the
/// message was not sent) is told apart from one that went quiet after the
/// request left (it may have been).
pub(super) fn send_timeouts(timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout((timeout / 2).min(Duration::from_secs(3)))
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout)
        .build()
}

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

/// Error codes for throttling, whatever the HTTP status (several arrive as
/// 400): the service turned the request away without acting on it. A
/// `RequestTimeout` code says the service gave up reading our request.
const THROTTLED_CODES: &[&str] = &[
    "KMSThrottling",
    "LimitExceededException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "Throttled",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

/// What a service error proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Retryable,
    Permanent,
    /// A server error (`InternalError`, `ServiceUnavailable`, any 5xx):
    /// the service may have sent the message before it failed.
    Unknown,
}

/// Classifies a service error by its code first, then its HTTP status.
fn class_of(code: Option<&str>, status: u16) -> Class {
    match code {
        Some(code) if AUTH_CODES.contains(&code) => Class::Auth,
        Some(code) if THROTTLED_CODES.contains(&code) => Class::Retryable,
        _ => match status {
            401 | 403 => Class::Auth,
            429 => Class::Retryable,
            500..=599 => Class::Unknown,
            _ => Class::Permanent,
        },
    }
}

/// What an SNS or SES call that succeeded means: sent, with the
/// `MessageId` it answered. Without one the outcome is unknown: the
/// service took the request, and sending again could deliver the message
/// twice.
pub(super) fn accepted(provider: Provider, message_id: Option<&str>) -> Result<Sent, SendError> {
    match message_id {
        Some(id) if !id.is_empty() => Ok(Sent {
            external_id: id.to_owned(),
            price: None,
        }),
        _ => Err(SendError::Unknown {
            provider,
            message: "answered without a MessageId".into(),
        }),
    }
}

/// Whether the request never left: the connection itself failed (refused,
/// unreachable, unresolvable, the connect timeout), as hyper's client or
/// the operating system reports it.
fn never_connected(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(error);
    while let Some(error) = next {
        let connect = error
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect);
        let refused = error.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            )
        });
        if connect || refused {
            return true;
        }
        next = error.source();
    }
    false
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
                Class::Unknown => SendError::Unknown { provider, message },
            }
        }
        SdkError::DispatchFailure(_) if never_connected(error) => SendError::Retryable {
            provider,
            message: format!("cannot connect: {message}"),
        },
        // The request may have left: no answer in time, a connection lost
        // mid-request, or an answer we could not read.
        SdkError::TimeoutError(_) => SendError::Unknown {
            provider,
            message: format!("no answer in time: {message}"),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SendError::Unknown { provider, message }
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
                Err(SendError::Unknown { provider, message }) => {
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
        assert_eq!(class_of(None, 500), Class::Unknown);
        assert_eq!(class_of(Some("Whatever"), 503), Class::Unknown);
        assert_eq!(class_of(Some("InternalError"), 500), Class::Unknown);
        assert_eq!(class_of(Some("ServiceUnavailable"), 503), Class::Unknown);
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
    fn a_refused_connection_is_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let dispatch: SdkError<PublishError> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let error = classify(Provider::AwsSns, &dispatch);
        assert!(error.is_retryable(), "{error:?}");
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }

    #[test]
    fn a_timeout_or_a_broken_connection_is_unknown() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let dispatch: SdkError<PublishError> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert!(classify(Provider::AwsSns, &dispatch).is_unknown());
        let timeout: SdkError<PublishError> = SdkError::timeout_error("attempt timed out");
        let error = classify(Provider::AwsSns, &timeout);
        assert!(error.is_unknown(), "{error:?}");
        assert!(error.to_string().contains("no answer in time"), "{error}");
    }

    #[test]
    fn a_send_makes_one_attempt_within_its_timeout() {
        assert_eq!(one_attempt().max_attempts(), 1);
        let timeouts = send_timeouts(Duration::from_millis(1500));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_millis(750)));
        let long = send_timeouts(Duration::from_secs(30));
        assert_eq!(long.connect_timeout(), Some(Duration::from_secs(3)));
    }
}
