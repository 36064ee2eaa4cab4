//! SMS through Twilio's Programmable Messaging API.

use futures::future::BoxFuture;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::MessagingConfigError;
use super::{Channel, MessageProvider, OutboundMessage, PhoneNumber, SendError, Sent, rest};
use crate::actionlog::cost::Money;
use crate::actionlog::record::Provider;

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Twilio refuses longer bodies (error 21617); checking first saves a call.
const MAX_BODY_CHARS: usize = 1600;

/// Who an SMS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// A number of the account, sent as `From`.
    Number(PhoneNumber),
    /// A Messaging Service (`MG` and 32 hex digits), sent as
    /// `MessagingServiceSid`; Twilio picks the number from its pool.
    MessagingService(String),
}

/// How to reach Twilio. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// [`DEFAULT_BASE_URL`] in production.
    pub base_url: String,
    /// `AC` and 32 hex digits; also the basic-auth user.
    pub account_sid: String,
    /// The account's auth token (basic-auth password).
    pub auth_token: SecretString,
    pub from: TwilioSender,
    /// Longest one request may take, connection included;
    /// [`DEFAULT_SEND_TIMEOUT`](super::DEFAULT_SEND_TIMEOUT) by default.
    pub timeout: Duration,
}

impl TwilioConfig {
    /// Production defaults for the account `account_sid`.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: SecretString,
        from: TwilioSender,
    ) -> Self {
        TwilioConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            account_sid: account_sid.into(),
            auth_token,
            from,
            timeout: super::DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Sends SMS with `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
#[derive(Debug)]
pub struct TwilioProvider {
    http: reqwest::Client,
    url: Url,
    account_sid: String,
    auth_token: SecretString,
    from: TwilioSender,
}

impl TwilioProvider {
    /// Checks `config` and prepares the client; errors name the setting.
    pub fn new(config: &TwilioConfig) -> Result<TwilioProvider, MessagingConfigError> {
        check_sid("twilio.account_sid", "AC", &config.account_sid)?;
        if let TwilioSender::MessagingService(sid) = &config.from {
            check_sid("twilio.from", "MG", sid)?;
        }
        if config.auth_token.expose_secret().trim().is_empty() {
            return Err(MessagingConfigError::setting(
                "twilio.auth_token",
                "must not be empty",
            ));
        }
        let url = rest::endpoint(
            "twilio.base_url",
            &config.base_url,
            &[
                "2010-04-01",
                "Accounts",
                &config.account_sid,
                "Messages.json",
            ],
        )?;
        Ok(TwilioProvider {
            http: rest::client("twilio.timeout", config.timeout)?,
            url,
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            from: config.from.clone(),
        })
    }

    async fn send_sms(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        let to = message.phone_for(Provider::Twilio)?;
        if message.text.chars().count() > MAX_BODY_CHARS {
            return Err(SendError::Invalid(format!(
                "an SMS through Twilio has at most {MAX_BODY_CHARS} characters"
            )));
        }
        let from = match &self.from {
            TwilioSender::Number(number) => ("From", number.as_str()),
            TwilioSender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = form_encode(&[("To", to.as_str()), from, ("Body", &message.text)]);
        let response = self
            .http
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| rest::transport(Provider::Twilio, e))?;
        let (status, body) = rest::answer(Provider::Twilio, response).await?;
        if !(200..300).contains(&status) {
            return Err(classify(status, &body));
        }
        created(&body)
    }
}

impl MessageProvider for TwilioProvider {
    fn provider(&self) -> Provider {
        Provider::Twilio
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_sms(message))
    }
}

/// Checks a Twilio SID: a two-letter prefix and 32 hex digits. The account
/// SID goes into the URL path, so nothing else may pass.
fn check_sid(setting: &str, prefix: &str, sid: &str) -> Result<(), MessagingConfigError> {
    let ok = sid
        .strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(MessagingConfigError::setting(
            setting,
            format!("must be {prefix} followed by 32 hex digits"),
        ))
    }
}

/// `application/x-www-form-urlencoded`, as the WHATWG URL standard
/// serializes it (what Twilio parses).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn push(out: &mut String, text: &str) {
        for byte in text.bytes() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(char::from(byte));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push(&mut out, name);
        out.push('=');
        push(&mut out, value);
    }
    out
}

/// Reads the 201 answer: the message `sid`, and `price` in `price_unit`
/// once Twilio knows it. Twilio's Message resource says the price is
/// "populated after the message has been sent. May not be immediately
/// available", so it is often null here; it is written as a negative
/// amount charged ("-0.00750") and kept as what the message cost.
/// (twilio-go rest/api/v2010/docs/ApiV2010Message.md, `Price`.)
fn created(body: &[u8]) -> Result<Sent, SendError> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(sid) = value["sid"].as_str().filter(|s| !s.is_empty()) else {
        // Twilio took the request; sending again could deliver it twice.
        return Err(SendError::Unknown {
            provider: Provider::Twilio,
            message: format!("answered without a message sid: {}", rest::snippet(body)),
        });
    };
    let amount = match &value["price"] {
        Value::String(p) => p.trim().parse::<f64>().ok(),
        Value::Number(p) => p.as_f64(),
        _ => None,
    };
    let price = amount
        .zip(value["price_unit"].as_str())
        .and_then(|(amount, unit)| {
            Money::new("price", amount.abs(), unit)
                .inspect_err(|e| tracing::debug!(error = %e, "Twilio's price is not usable"))
                .ok()
        });
    Ok(Sent {
        external_id: sid.to_owned(),
        price,
    })
}

/// The error for a non-2xx answer, with Twilio's own code and message
/// (`{"code": 21211, "message": …, "more_info": …, "status": 400}`).
fn classify(status: u16, body: &[u8]) -> SendError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut message = format!("HTTP {status}");
    match (value["code"].as_u64(), value["message"].as_str()) {
        (Some(code), Some(text)) => message.push_str(&format!(", error {code}: {text}")),
        (None, Some(text)) => message.push_str(&format!(": {text}")),
        _ => {
            let snippet = rest::snippet(body);
            if !snippet.is_empty() {
                message.push_str(&format!(": {snippet}"));
            }
        }
    }
    if let Some(more) = value["more_info"].as_str() {
        message.push_str(&format!(" ({more})"));
    }
    let provider = Provider::Twilio;
    // Only a 429 says Twilio turned the request away unprocessed; a 5xx
    // on this POST may come after the message was created, and the
    // Messages API takes no idempotency key to make a resend safe
    // (CreateMessage in twilio/twilio-oai spec/yaml/twilio_api_v2010.yaml).
    match status {
        401 | 403 => SendError::Auth { provider, message },
        429 => SendError::Retryable { provider, message },
        500..=599 => SendError::Unknown { provider, message },
        _ => SendError::Permanent { provider, message },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_are_classified_by_status_and_keep_twilios_words() {
        let body = json!({
            "code": 21211,
            "message": "The 'To' number +4072100011 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400
        })
        .to_string();
        assert_eq!(
            classify(400, body.as_bytes()),
            SendError::Permanent {
                provider: Provider::Twilio,
                message: "HTTP 400, error 21211: The 'To' number +4072100011 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)".into()
            }
        );
        let auth = json!({"code": 20003, "message": "Authenticate", "status": 401}).to_string();
        assert!(
            matches!(classify(401, auth.as_bytes()), SendError::Auth { message, .. } if message.contains("20003"))
        );
        assert!(matches!(classify(403, b""), SendError::Auth { .. }));
        assert!(classify(429, br#"{"code":20429,"message":"Too Many Requests"}"#).is_retryable());
        assert!(classify(503, b"<html>down</html>").is_unknown());
        assert!(classify(500, b"").is_unknown());
        assert_eq!(
            classify(404, b"not here"),
            SendError::Permanent {
                provider: Provider::Twilio,
                message: "HTTP 404: not here".into()
            }
        );
    }

    #[test]
    fn created_reads_sid_and_price() {
        let sent =
            created(br#"{"sid":"SM0123","status":"queued","price":"-0.00750","price_unit":"USD"}"#)
                .unwrap();
        assert_eq!(sent.external_id, "SM0123");
        assert_eq!(sent.price, Some(Money::new("t", 0.0075, "USD").unwrap()));
        let sent = created(br#"{"sid":"SM0123","price":-0.04,"price_unit":"eur"}"#).unwrap();
        assert_eq!(sent.price, Some(Money::new("t", 0.04, "EUR").unwrap()));
        for unknown in [
            r#"{"sid":"SM0123","price":null,"price_unit":"USD"}"#,
            r#"{"sid":"SM0123","price":"-0.0075","price_unit":null}"#,
            r#"{"sid":"SM0123","price":"n/a","price_unit":"USD"}"#,
        ] {
            assert_eq!(
                created(unknown.as_bytes()).unwrap().price,
                None,
                "{unknown}"
            );
        }
        assert!(matches!(created(b"{}"), Err(SendError::Unknown { .. })));
    }

    #[test]
    fn sids_are_checked() {
        assert!(check_sid("s", "AC", &format!("AC{}", "a1".repeat(16))).is_ok());
        for bad in [
            "",
            "AC",
            "ACxyz",
            &format!("MG{}", "0".repeat(32)),
            &format!("AC{}/", "0".repeat(31)),
        ] {
            let error = check_sid("twilio.account_sid", "AC", bad).unwrap_err();
            assert!(error.to_string().starts_with("twilio.account_sid: "));
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let config = TwilioConfig::new(
            format!("AC{}", "0".repeat(32)),
            SecretString::from("tok-very-secret"),
            TwilioSender::MessagingService(format!("MG{}", "0".repeat(32))),
        );
        let provider = TwilioProvider::new(&config).unwrap();
        assert!(!format!("{config:?}{provider:?}").contains("tok-very-secret"));
    }

    proptest! {
        #[test]
        fn form_encoding_round_trips(pairs in proptest::collection::vec((".*", ".*"), 0..4)) {
            let pairs: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let encoded = form_encode(&pairs);
            let url = Url::parse(&format!("http://x/?{encoded}")).unwrap();
            let decoded: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let expected: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            prop_assert_eq!(decoded, expected);
        }
    }
}
