//! What the two REST providers (Twilio, the WhatsApp Cloud API) share: an
//! HTTP client with a per-request deadline, endpoints checked at start, and
//! failures below HTTP read the same way.

use std::time::Duration;

use reqwest::Url;

use super::SendError;
use super::config::MessagingConfigError;
use crate::actionlog::record::Provider;

/// Provider text longer than this is cut in errors.
const MAX_DETAIL_CHARS: usize = 300;

/// A client whose requests give up after `timeout`, body included.
pub(super) fn client(
    setting: &str,
    timeout: Duration,
) -> Result<reqwest::Client, MessagingConfigError> {
    if timeout.is_zero() {
        return Err(MessagingConfigError::setting(setting, "must be above zero"));
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
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

/// A request that got no HTTP answer. A timeout is reported as retryable
/// although the provider may have taken the message: a caller that sends
/// again accepts a possible duplicate rather than a lost message.
pub(super) fn transport(provider: Provider, error: reqwest::Error) -> SendError {
    let what = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let message = format!(
        "{what}: {}",
        crate::telemetry::error_chain(&error.without_url())
    );
    SendError::Retryable { provider, message }
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
