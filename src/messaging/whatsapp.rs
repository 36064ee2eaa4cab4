//! WhatsApp text messages through Meta's WhatsApp Cloud API (Graph API).

use futures::future::BoxFuture;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::config::MessagingConfigError;
use super::{Channel, MessageProvider, OutboundMessage, SendError, Sent, rest};
use crate::actionlog::record::Provider;

/// The production Graph API, at the version this module was written for.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v21.0";
/// The Cloud API's limit for a text body.
const MAX_BODY_CHARS: usize = 4096;
/// Graph error codes for rate and throughput limits, which pass: API
/// calls (4, 80007), the cloud API (130429), spam limits (131048) and
/// sending too fast to one user (131056).
const RATE_LIMIT_CODES: &[i64] = &[4, 80007, 130429, 131048, 131056];
/// The Graph error code of an invalid or expired access token.
const TOKEN_ERROR: i64 = 190;

/// How to reach the WhatsApp Cloud API. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    /// [`DEFAULT_BASE_URL`] in production (it carries the Graph version).
    pub base_url: String,
    /// The business phone number's id in WhatsApp Manager (digits).
    pub phone_number_id: String,
    /// A system-user access token with `whatsapp_business_messaging`.
    pub access_token: SecretString,
    /// Longest one request may take, connection included;
    /// [`DEFAULT_SEND_TIMEOUT`](super::DEFAULT_SEND_TIMEOUT) by default.
    pub timeout: Duration,
}

impl WhatsAppConfig {
    /// Production defaults for the number `phone_number_id`.
    pub fn new(phone_number_id: impl Into<String>, access_token: SecretString) -> Self {
        WhatsAppConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            phone_number_id: phone_number_id.into(),
            access_token,
            timeout: super::DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Sends text messages with `POST /{phone-number-id}/messages`.
#[derive(Debug)]
pub struct WhatsAppProvider {
    http: reqwest::Client,
    url: Url,
    access_token: SecretString,
}

impl WhatsAppProvider {
    /// Checks `config` and prepares the client; errors name the setting.
    pub fn new(config: &WhatsAppConfig) -> Result<WhatsAppProvider, MessagingConfigError> {
        let id = &config.phone_number_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessagingConfigError::setting(
                "whatsapp.phone_number_id",
                "must be the digits of the phone number id",
            ));
        }
        if config.access_token.expose_secret().trim().is_empty() {
            return Err(MessagingConfigError::setting(
                "whatsapp.access_token",
                "must not be empty",
            ));
        }
        let url = rest::endpoint("whatsapp.base_url", &config.base_url, &[id, "messages"])?;
        Ok(WhatsAppProvider {
            http: rest::client("whatsapp.timeout", config.timeout)?,
            url,
            access_token: config.access_token.clone(),
        })
    }

    async fn send_text(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        let to = message.phone_for(Provider::Meta)?;
        if message.text.chars().count() > MAX_BODY_CHARS {
            return Err(SendError::Invalid(format!(
                "a WhatsApp text has at most {MAX_BODY_CHARS} characters"
            )));
        }
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.digits(),
            "type": "text",
            "text": { "preview_url": false, "body": message.text },
        });
        let response = self
            .http
            .post(self.url.clone())
            .bearer_auth(self.access_token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| rest::transport(Provider::Meta, e))?;
        let (status, body) = rest::answer(Provider::Meta, response).await?;
        if !(200..300).contains(&status) {
            return Err(classify(status, &body));
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match value["messages"][0]["id"]
            .as_str()
            .filter(|id| !id.is_empty())
        {
            Some(id) => Ok(Sent {
                external_id: id.to_owned(),
                price: None,
            }),
            // Meta took the request; sending again could deliver it twice.
            None => Err(SendError::Unknown {
                provider: Provider::Meta,
                message: format!("answered without messages[0].id: {}", rest::snippet(&body)),
            }),
        }
    }
}

impl MessageProvider for WhatsAppProvider {
    fn provider(&self) -> Provider {
        Provider::Meta
    }

    fn channel(&self) -> Channel {
        Channel::Meta
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_text(message))
    }
}

/// The error for a non-2xx answer, read from the Graph error object
/// (`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`).
/// Meta answers most errors, rate limits included, with HTTP 400, so the
/// code decides before the status.
fn classify(status: u16, body: &[u8]) -> SendError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &value["error"];
    let code = error["code"].as_i64();
    let mut message = format!("HTTP {status}");
    match error["message"].as_str() {
        Some(text) => message.push_str(&format!(": {text}")),
        None => {
            let snippet = rest::snippet(body);
            if !snippet.is_empty() {
                message.push_str(&format!(": {snippet}"));
            }
        }
    }
    if let Some(details) = error["error_data"]["details"].as_str() {
        message.push_str(&format!(" ({details})"));
    }
    let mut ids = Vec::new();
    if let Some(code) = code {
        ids.push(format!("code {code}"));
    }
    if let Some(subcode) = error["error_subcode"].as_i64() {
        ids.push(format!("subcode {subcode}"));
    }
    if let Some(trace) = error["fbtrace_id"].as_str() {
        ids.push(format!("fbtrace_id {trace}"));
    }
    if !ids.is_empty() {
        message.push_str(&format!(" [{}]", ids.join(", ")));
    }
    let provider = Provider::Meta;
    let rate_limited = code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c));
    if code == Some(TOKEN_ERROR) || status == 401 {
        SendError::Auth { provider, message }
    } else if rate_limited || status == 429 {
        SendError::Retryable { provider, message }
    } else if (500..600).contains(&status) {
        // The Cloud API takes no idempotency key (`biz_opaque_callback_data`
        // is only echoed in webhooks), so a server error on this POST
        // leaves the message's fate unknown.
        SendError::Unknown { provider, message }
    } else {
        SendError::Permanent { provider, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_error(code: i64, message: &str) -> Vec<u8> {
        json!({"error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_subcode": 2494055,
            "fbtrace_id": "AbCdEf123"
        }})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn token_errors_are_auth() {
        let error = classify(400, &graph_error(190, "Error validating access token"));
        assert_eq!(
            error,
            SendError::Auth {
                provider: Provider::Meta,
                message: "HTTP 400: Error validating access token [code 190, subcode 2494055, fbtrace_id AbCdEf123]".into()
            }
        );
        assert!(matches!(classify(401, b""), SendError::Auth { .. }));
    }

    #[test]
    fn rate_limits_are_retryable_and_server_errors_unknown() {
        for code in [4, 80007, 130429, 131048, 131056] {
            assert!(
                classify(400, &graph_error(code, "limit")).is_retryable(),
                "{code}"
            );
        }
        assert!(classify(429, b"").is_retryable());
        assert!(classify(500, &graph_error(1, "An unknown error occurred")).is_unknown());
        assert!(classify(503, b"<html>").is_unknown());
    }

    #[test]
    fn other_errors_are_permanent_with_details() {
        let body = json!({"error": {
            "message": "(#131026) Message undeliverable",
            "code": 131026,
            "error_data": {"messaging_product": "whatsapp", "details": "Receiver is not on WhatsApp"},
            "fbtrace_id": "X"
        }})
        .to_string();
        assert_eq!(
            classify(400, body.as_bytes()),
            SendError::Permanent {
                provider: Provider::Meta,
                message: "HTTP 400: (#131026) Message undeliverable (Receiver is not on WhatsApp) [code 131026, fbtrace_id X]".into()
            }
        );
        assert!(matches!(
            classify(400, &graph_error(100, "Invalid parameter")),
            SendError::Permanent { .. }
        ));
    }

    #[test]
    fn config_errors_name_the_setting() {
        let token = SecretString::from("EAAG-secret");
        for (id, base, setting) in [
            ("12ab", DEFAULT_BASE_URL, "whatsapp.phone_number_id"),
            ("", DEFAULT_BASE_URL, "whatsapp.phone_number_id"),
            ("123", "graph.facebook.com", "whatsapp.base_url"),
        ] {
            let mut config = WhatsAppConfig::new(id, token.clone());
            config.base_url = base.to_owned();
            let error = WhatsAppProvider::new(&config).unwrap_err().to_string();
            assert!(error.starts_with(setting), "{error}");
            assert!(!error.contains("EAAG-secret"));
        }
        let config = WhatsAppConfig::new("123", SecretString::from(" "));
        assert!(
            WhatsAppProvider::new(&config)
                .unwrap_err()
                .to_string()
                .starts_with("whatsapp.access_token")
        );
        let provider = WhatsAppProvider::new(&WhatsAppConfig::new("123", token)).unwrap();
        assert!(!format!("{provider:?}").contains("EAAG-secret"));
    }
}
