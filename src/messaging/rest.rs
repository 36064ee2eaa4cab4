//! What the two REST providers (Twilio, the WhatsApp Cloud API) share: an
//! HTTP client with a per-request deadline, endpoints checked at start, and
//! failures below HTTP read the same way.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;

use super::SendError;
use super::config::MessagingConfigError;
use crate::actionlog::record::Provider;

/// Provider text longer than this is cut in errors.
const MAX_DETAIL_CHARS: usize = 300;

/// A client whose requests give up after `timeout`, body included. The
/// connection has a shorter bound of its own, so that a provider we cannot
/// reach is told apart from one that took the request and went quiet.
pub(super) fn client(
    setting: &str,
    timeout: Duration,
) -> Result<reqwest::Client, MessagingConfigError> {
    if timeout.is_zero() {
        return Err(MessagingConfigError::setting(setting, "must be above zero"));
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout((timeout / 2).min(Duration::from_secs(3)))
        .user_agent(concat!("voice-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            MessagingConfigError::setting(setting, format!("cannot build the HTTP client: {e}"))
        })
}

/// `base` (the setting `setting`) with `segments` appended as path
/// segments, each percent-encoded on its own.
pub(super) fn endpoint(
    setting: &str,
    base: &str,
    segments: &[&str],
) -> Result<Url, MessagingConfigError> {
    let bad = |reason: String| MessagingConfigError::setting(setting, reason);
    let mut url =
        Url::parse(base.trim()).map_err(|e| bad(format!("{base:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("{base:?} is not an http(s) URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!("{base:?} must not have a query or fragment")));
    }
    url.path_segments_mut()
        .map_err(|()| bad(format!("{base:?} cannot be a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A request that got no HTTP answer. Only a failure to connect (refused,
/// DNS, the connect timeout) proves the provider never saw the request;
/// after the connection is made, a timeout or a broken connection may come
/// after the provider took the message, so its outcome is unknown.
pub(super) fn transport(provider: Provider, error: reqwest::Error) -> SendError {
    let (connect, timeout) = (error.is_connect(), error.is_timeout());
    let detail = crate::telemetry::error_chain(&error.without_url());
    if connect {
        let message = format!("cannot connect: {detail}");
        SendError::Retryable { provider, message }
    } else if timeout {
        let message = format!("no answer in time: {detail}");
        SendError::Unknown { provider, message }
    } else {
        let message = format!("request failed: {detail}");
        SendError::Unknown { provider, message }
    }
}

/// The status and body of `response`. When the body cannot be read, a
/// success is unconfirmed (the provider took a message we cannot name)
/// and an error is left to its status alone, with an empty body.
pub(super) async fn answer(
    provider: Provider,
    response: reqwest::Response,
) -> Result<(u16, Bytes), SendError> {
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => Ok((status, body)),
        Err(error) if (200..300).contains(&status) => Err(SendError::Unknown {
            provider,
            message: format!(
                "answered HTTP {status} but the answer could not be read: {}",
                crate::telemetry::error_chain(&error.without_url())
            ),
        }),
        Err(_) => Ok((status, Bytes::new())),
    }
}

/// The start of a response body, for errors.
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_encoded_segments_to_the_base_path() {
        let url = endpoint(
            "s",
            "https://graph.facebook.com/v21.0/",
            &["123", "messages"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://graph.facebook.com/v21.0/123/messages"
        );
        let url = endpoint("s", "http://127.0.0.1:9", &["a b", "c/d"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/a%20b/c%2Fd");
    }

    #[test]
    fn endpoint_errors_name_the_setting() {
        for base in ["ftp://x", "not a url", "https://x/?a=b", "mailto:a@b.ro"] {
            let error = endpoint("twilio.base_url", base, &["x"]).unwrap_err();
            assert!(
                error.to_string().starts_with("twilio.base_url: "),
                "{error}"
            );
        }
    }

    #[test]
    fn snippet_cuts_long_bodies_on_a_char_boundary() {
        let body = "ă".repeat(MAX_DETAIL_CHARS + 10);
        let cut = snippet(body.as_bytes());
        assert_eq!(cut.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(snippet(b"  short \n"), "short");
    }
}
