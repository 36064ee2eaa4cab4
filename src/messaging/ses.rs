//! Email through Amazon SES v2 `SendEmail` (simple content: subject and
//! text body).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use futures::future::BoxFuture;

use super::config::MessagingConfigError;
use super::{Channel, EmailAddress, MessageProvider, OutboundMessage, SendError, Sent, aws};
use crate::actionlog::record::Provider;
use crate::ids::Id;

/// Email settings for SES; region, endpoint and credentials come from the
/// AWS SDK configuration the provider is built from.
#[derive(Debug, Clone)]
pub struct SesConfig {
    /// The sender (`FromEmailAddress`): a verified identity, or an address
    /// at a verified domain.
    pub from: EmailAddress,
    /// Configuration set for event publishing and suppression, if any.
    pub configuration_set: Option<String>,
    /// Longest the one attempt of a `SendEmail` may take;
    /// [`DEFAULT_SEND_TIMEOUT`](super::DEFAULT_SEND_TIMEOUT) by default.
    pub timeout: Duration,
}

impl SesConfig {
    /// Sends from `from`, with no configuration set.
    pub fn new(from: EmailAddress) -> Self {
        SesConfig {
            from,
            configuration_set: None,
            timeout: super::DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Sends email with SES v2 `SendEmail`.
#[derive(Debug)]
pub struct SesProvider {
    client: aws_sdk_sesv2::Client,
    config: SesConfig,
}

impl SesProvider {
    /// Checks `config` and builds the SES v2 client from `aws` with one
    /// attempt of at most `config.timeout`; errors name the setting.
    pub fn new(aws: &SdkConfig, config: &SesConfig) -> Result<SesProvider, MessagingConfigError> {
        if config.timeout.is_zero() {
            return Err(MessagingConfigError::setting(
                "ses.timeout",
                "must be above zero",
            ));
        }
        // SES takes the same alphabet and length as our ids: letters,
        // digits, '_' and '-', at most 64.
        if let Some(set) = &config.configuration_set {
            Id::parse("ses.configuration_set", set)
                .map_err(|e| MessagingConfigError::setting(&e.field, e.reason))?;
        }
        let client = aws_sdk_sesv2::Client::from_conf(
            aws_sdk_sesv2::config::Builder::from(aws)
                .retry_config(aws::one_attempt())
                .timeout_config(aws::send_timeouts(config.timeout))
                .build(),
        );
        Ok(SesProvider {
            client,
            config: config.clone(),
        })
    }

    /// The SES v2 client, as configured for sends.
    pub fn client(&self) -> &aws_sdk_sesv2::Client {
        &self.client
    }

    async fn send_email(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        let (to, subject) = message.email_for(Provider::AwsSes)?;
        let utf8 = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| SendError::Invalid(e.to_string()))
        };
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(utf8(subject)?)
                    .body(Body::builder().text(utf8(&message.text)?).build())
                    .build(),
            )
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(self.config.from.as_str())
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(content)
            .set_configuration_set_name(self.config.configuration_set.clone())
            .send()
            .await
            .map_err(|e| aws::classify(Provider::AwsSes, &e))?;
        aws::accepted(Provider::AwsSes, output.message_id())
    }
}

impl MessageProvider for SesProvider {
    fn provider(&self) -> Provider {
        Provider::AwsSes
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_email(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .build()
    }

    #[test]
    fn configuration_set_names_are_checked() {
        let from = EmailAddress::parse("ses.from", "salon@example.com").unwrap();
        let mut config = SesConfig::new(from);
        config.configuration_set = Some("transactional-eu_1".into());
        assert!(SesProvider::new(&aws(), &config).is_ok());
        for bad in ["", "has space", "dot.ted", &"x".repeat(65)] {
            config.configuration_set = Some(bad.into());
            let error = SesProvider::new(&aws(), &config).unwrap_err();
            assert!(
                error.to_string().starts_with("ses.configuration_set: "),
                "{error}"
            );
        }
    }
}
