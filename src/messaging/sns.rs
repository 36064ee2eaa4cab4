//! SMS through Amazon SNS `Publish` to a phone number.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use futures::future::BoxFuture;

use super::config::MessagingConfigError;
use super::{Channel, MessageProvider, OutboundMessage, SendError, Sent, aws};
use crate::actionlog::record::Provider;

/// SNS refuses longer SMS bodies.
const MAX_BODY_BYTES: usize = 1600;

/// How SNS routes the SMS (`AWS.SNS.SMS.SMSType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmsType {
    /// Critical messages, routed for reliability (confirmations, codes).
    #[default]
    Transactional,
    /// Marketing, routed for cost.
    Promotional,
}

impl SmsType {
    fn as_str(self) -> &'static str {
        match self {
            SmsType::Transactional => "Transactional",
            SmsType::Promotional => "Promotional",
        }
    }
}

/// SMS settings for SNS; region, endpoint and credentials come from the
/// AWS SDK configuration the provider is built from.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// Transactional by default.
    pub sms_type: SmsType,
    /// Alphanumeric sender id (`AWS.SNS.SMS.SenderID`), where the
    /// destination country supports one: 1 to 11 letters and digits, at
    /// least one letter.
    pub sender_id: Option<String>,
    /// Longest the one attempt of a `Publish` may take;
    /// [`DEFAULT_SEND_TIMEOUT`](super::DEFAULT_SEND_TIMEOUT) by default.
    pub timeout: Duration,
}

impl Default for SnsConfig {
    fn default() -> Self {
        SnsConfig {
            sms_type: SmsType::default(),
            sender_id: None,
            timeout: super::DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Sends SMS with SNS `Publish`.
#[derive(Debug)]
pub struct SnsProvider {
    client: aws_sdk_sns::Client,
    attributes: Vec<(&'static str, MessageAttributeValue)>,
}

impl SnsProvider {
    /// Checks `config` and builds the SNS client from `aws` with one
    /// attempt of at most `config.timeout`; errors name the setting.
    pub fn new(aws: &SdkConfig, config: &SnsConfig) -> Result<SnsProvider, MessagingConfigError> {
        if config.timeout.is_zero() {
            return Err(MessagingConfigError::setting(
                "sns.timeout",
                "must be above zero",
            ));
        }
        let client = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(aws)
                .retry_config(aws::one_attempt())
                .timeout_config(aws::send_timeouts(config.timeout))
                .build(),
        );
        let mut attributes = vec![("AWS.SNS.SMS.SMSType", config.sms_type.as_str())];
        if let Some(sender) = &config.sender_id {
            let valid = (1..=11).contains(&sender.len())
                && sender.bytes().all(|b| b.is_ascii_alphanumeric())
                && sender.bytes().any(|b| b.is_ascii_alphabetic());
            if !valid {
                return Err(MessagingConfigError::setting(
                    "sns.sender_id",
                    "must be 1 to 11 letters and digits with at least one letter",
                ));
            }
            attributes.push(("AWS.SNS.SMS.SenderID", sender));
        }
        let attributes = attributes
            .into_iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|value| (name, value))
                    .map_err(|e| MessagingConfigError::setting("sns", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(SnsProvider { client, attributes })
    }

    /// The SNS client, as configured for sends.
    pub fn client(&self) -> &aws_sdk_sns::Client {
        &self.client
    }

    async fn publish(&self, message: &OutboundMessage) -> Result<Sent, SendError> {
        let to = message.phone_for(Provider::AwsSns)?;
        if message.text.len() > MAX_BODY_BYTES {
            return Err(SendError::Invalid(format!(
                "an SMS through SNS has at most {MAX_BODY_BYTES} bytes"
            )));
        }
        let mut request = self
            .client
            .publish()
            .phone_number(to.as_str())
            .message(&message.text);
        for (name, value) in &self.attributes {
            request = request.message_attributes(*name, value.clone());
        }
        let output = request
            .send()
            .await
            .map_err(|e| aws::classify(Provider::AwsSns, &e))?;
        aws::accepted(Provider::AwsSns, output.message_id())
    }
}

impl MessageProvider for SnsProvider {
    fn provider(&self) -> Provider {
        Provider::AwsSns
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.publish(message))
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
    fn sender_ids_are_checked() {
        for good in ["Salon", "SALON2024", "A", "Abcdefghijk"] {
            let config = SnsConfig {
                sender_id: Some(good.into()),
                ..SnsConfig::default()
            };
            let provider = SnsProvider::new(&aws(), &config).unwrap();
            assert_eq!(provider.attributes.len(), 2, "{good}");
        }
        for bad in ["", "12345", "Salon Ana", "Abcdefghijkl", "Salon-Ana", "Ană"] {
            let config = SnsConfig {
                sender_id: Some(bad.into()),
                ..SnsConfig::default()
            };
            let error = SnsProvider::new(&aws(), &config).unwrap_err();
            assert!(error.to_string().starts_with("sns.sender_id: "), "{bad}");
        }
    }

    #[test]
    fn the_sms_type_is_transactional_unless_set() {
        let provider = SnsProvider::new(&aws(), &SnsConfig::default()).unwrap();
        let (name, value) = &provider.attributes[0];
        assert_eq!(*name, "AWS.SNS.SMS.SMSType");
        assert_eq!(value.string_value(), Some("Transactional"));
        assert_eq!(value.data_type(), "String");
    }
}
