//! SMS through Amazon SNS `Publish` to a phone number.

use aws_sdk_sns::types::MessageAttributeValue;
use futures::future::BoxFuture;

use super::config::MessagingConfigError;
use super::{Channel, MessageProvider, OutboundMessage, SendError, Sent, aws_error};
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

/// SMS settings for SNS; region and credentials come from the AWS SDK
/// configuration the client was built from.
#[derive(Debug, Clone, Default)]
pub struct SnsConfig {
    /// Transactional by default.
    pub sms_type: SmsType,
    /// Alphanumeric sender id (`AWS.SNS.SMS.SenderID`), where the
    /// destination country supports one: 1 to 11 letters and digits, at
    /// least one letter.
    pub sender_id: Option<String>,
}

/// Sends SMS with SNS `Publish`.
#[derive(Debug)]
pub struct SnsProvider {
    client: aws_sdk_sns::Client,
    attributes: Vec<(&'static str, MessageAttributeValue)>,
}

impl SnsProvider {
    /// Checks `config`; errors name the setting.
    pub fn new(
        client: aws_sdk_sns::Client,
        config: &SnsConfig,
    ) -> Result<SnsProvider, MessagingConfigError> {
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
            .map_err(|e| aws_error::classify(Provider::AwsSns, &e))?;
        aws_error::accepted(Provider::AwsSns, output.message_id())
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

    fn client() -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new("eu-central-1"))
            .build();
        aws_sdk_sns::Client::from_conf(config)
    }

    #[test]
    fn sender_ids_are_checked() {
        for good in ["Salon", "SALON2024", "A", "Abcdefghijk"] {
            let config = SnsConfig {
                sender_id: Some(good.into()),
                ..SnsConfig::default()
            };
            let provider = SnsProvider::new(client(), &config).unwrap();
            assert_eq!(provider.attributes.len(), 2, "{good}");
        }
        for bad in ["", "12345", "Salon Ana", "Abcdefghijkl", "Salon-Ana", "Ană"] {
            let config = SnsConfig {
                sender_id: Some(bad.into()),
                ..SnsConfig::default()
            };
            let error = SnsProvider::new(client(), &config).unwrap_err();
            assert!(error.to_string().starts_with("sns.sender_id: "), "{bad}");
        }
    }

    #[test]
    fn the_sms_type_is_transactional_unless_set() {
        let provider = SnsProvider::new(client(), &SnsConfig::default()).unwrap();
        let (name, value) = &provider.attributes[0];
        assert_eq!(*name, "AWS.SNS.SMS.SMSType");
        assert_eq!(value.string_value(), Some("Transactional"));
        assert_eq!(value.data_type(), "String");
    }
}
