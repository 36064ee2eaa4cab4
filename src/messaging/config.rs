//! Which messaging providers run, and which one each tenant uses: one
//! typed configuration, turned into a [`Messaging`] in one place.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

use super::ses::{SesConfig, SesProvider};
use super::smtp::{SmtpConfig, SmtpProvider};
use super::sns::{SnsConfig, SnsProvider};
use super::twilio::{TwilioConfig, TwilioProvider};
use super::whatsapp::{WhatsAppConfig, WhatsAppProvider};
use super::{Channel, Messaging};
use crate::aws::NoRegion;
use crate::ids::Id;

/// The messaging providers to run and how tenants are routed among them.
/// `Debug` shows no secret.
#[derive(Debug, Clone, Default)]
pub struct MessagingConfig {
    pub twilio: Option<TwilioConfig>,
    pub whatsapp: Option<WhatsAppConfig>,
    pub sns: Option<SnsConfig>,
    pub ses: Option<SesConfig>,
    pub smtp: Option<SmtpConfig>,
    /// Default SMS provider (`twilio` or `aws_sns`); without it Twilio is
    /// the default when both are configured.
    pub sms_default: Option<String>,
    /// Default email provider (`aws_ses` or `smtp`); without it SES is the
    /// default when both are configured.
    pub email_default: Option<String>,
    /// Per-tenant choices that override the defaults.
    pub routes: Vec<Route>,
}

impl MessagingConfig {
    /// Whether no provider at all is configured.
    pub fn is_empty(&self) -> bool {
        self.twilio.is_none()
            && self.whatsapp.is_none()
            && self.sns.is_none()
            && self.ses.is_none()
            && self.smtp.is_none()
    }
}

/// One tenant's provider for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub business_id: String,
    pub channel: Channel,
    /// An action-log provider name, such as `aws_sns` or `smtp`.
    pub provider: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.business_id, self.channel, self.provider)
    }
}

/// Why the messaging configuration cannot be used. Messages name the
/// setting or route entry at fault and never carry a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MessagingConfigError {
    /// A setting, such as `twilio.account_sid`, has a value we cannot use.
    #[error("{setting}: {reason}")]
    Setting { setting: String, reason: String },
    /// A route entry is malformed or names a provider that is not configured.
    #[error("route {entry:?}: {reason}")]
    Route { entry: String, reason: String },
    #[error(transparent)]
    Aws(#[from] NoRegion),
}

impl MessagingConfigError {
    /// The error for `setting`.
    pub fn setting(setting: &str, reason: impl Into<String>) -> Self {
        MessagingConfigError::Setting {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Parses a compact route list, `BUSINESS:CHANNEL=PROVIDER` entries
/// separated by commas, such as
/// `B0100001:sms=aws_sns,B0100001:email=smtp,B0200002:sms=twilio`. Whether
/// each provider is configured is checked by [`build`].
pub fn parse_routes(text: &str) -> Result<Vec<Route>, MessagingConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut routes: Vec<Route> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let fail = |reason: String| MessagingConfigError::Route {
            entry: entry.to_owned(),
            reason,
        };
        let shape = || fail("expected BUSINESS_ID:CHANNEL=PROVIDER".into());
        let (target, provider) = entry.split_once('=').ok_or_else(shape)?;
        let (business_id, channel) = target.split_once(':').ok_or_else(shape)?;
        let business_id =
            Id::parse("business id", business_id.trim()).map_err(|e| fail(e.to_string()))?;
        let channel = Channel::parse(channel)
            .ok_or_else(|| fail(format!("unknown channel {channel:?} (sms, email or meta)")))?;
        let provider = provider.trim();
        if provider.is_empty() {
            return Err(fail("names no provider".into()));
        }
        if let Some(earlier) = routes
            .iter()
            .find(|r| r.business_id == business_id.as_str() && r.channel == channel)
        {
            return Err(fail(format!("repeats the route {earlier}")));
        }
        routes.push(Route {
            business_id: business_id.as_str().to_owned(),
            channel,
            provider: provider.to_owned(),
        });
    }
    Ok(routes)
}

/// Builds the configured providers. SNS and SES clients start from the AWS
/// SDK's standard environment ([`crate::aws::load`]); each provider then
/// makes one attempt within its own `timeout`.
pub async fn build(config: &MessagingConfig) -> Result<Messaging, MessagingConfigError> {
    let service = match (config.sns.is_some(), config.ses.is_some()) {
        (true, true) => Some("SNS and SES"),
        (true, false) => Some("SNS"),
        (false, true) => Some("SES"),
        (false, false) => None,
    };
    let aws = match service {
        Some(service) => Some(
            crate::aws::load(
                service,
                RetryConfig::standard().with_max_attempts(1),
                super::DEFAULT_SEND_TIMEOUT,
            )
            .await?,
        ),
        None => None,
    };
    assemble(config, aws.as_ref())
}

/// [`build`] with AWS SDK settings of the caller's (tests, or a process
/// that already loaded them); their retry and timeout settings give way to
/// the providers' own.
pub fn build_with_aws(
    config: &MessagingConfig,
    aws: &SdkConfig,
) -> Result<Messaging, MessagingConfigError> {
    assemble(config, Some(aws))
}

fn assemble(
    config: &MessagingConfig,
    aws: Option<&SdkConfig>,
) -> Result<Messaging, MessagingConfigError> {
    let no_aws = |setting: &str| {
        MessagingConfigError::setting(
            setting,
            "needs the AWS SDK configuration, which was not loaded",
        )
    };
    // Order matters: the first provider added for a channel is its default.
    let mut messaging = Messaging::default();
    if let Some(twilio) = &config.twilio {
        messaging = messaging.with(Arc::new(TwilioProvider::new(twilio)?));
    }
    if let Some(sns) = &config.sns {
        let aws = aws.ok_or_else(|| no_aws("sns"))?;
        messaging = messaging.with(Arc::new(SnsProvider::new(aws, sns)?));
    }
    if let Some(ses) = &config.ses {
        let aws = aws.ok_or_else(|| no_aws("ses"))?;
        messaging = messaging.with(Arc::new(SesProvider::new(aws, ses)?));
    }
    if let Some(smtp) = &config.smtp {
        messaging = messaging.with(Arc::new(SmtpProvider::new(smtp)?));
    }
    if let Some(whatsapp) = &config.whatsapp {
        messaging = messaging.with(Arc::new(WhatsAppProvider::new(whatsapp)?));
    }
    for (setting, channel, name) in [
        ("sms_default", Channel::Sms, &config.sms_default),
        ("email_default", Channel::Email, &config.email_default),
    ] {
        if let Some(name) = name {
            messaging = messaging
                .prefer(channel, name)
                .map_err(|reason| MessagingConfigError::setting(setting, reason))?;
        }
    }
    let mut seen = BTreeMap::new();
    for route in &config.routes {
        let entry = route.to_string();
        if let Some(earlier) =
            seen.insert((route.business_id.as_str(), route.channel), entry.clone())
        {
            return Err(MessagingConfigError::Route {
                entry,
                reason: format!("repeats the route {earlier}"),
            });
        }
        messaging = messaging
            .route(&route.business_id, route.channel, &route.provider)
            .map_err(|reason| MessagingConfigError::Route { entry, reason })?;
    }
    Ok(messaging)
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::super::twilio::TwilioSender;
    use super::*;

    #[test]
    fn routes_parse_from_the_compact_list() {
        let routes =
            parse_routes(" B0100001:sms=aws_sns, B0100001:email=smtp,B0200002:whatsapp=meta ")
                .unwrap();
        assert_eq!(
            routes,
            vec![
                Route {
                    business_id: "B0100001".into(),
                    channel: Channel::Sms,
                    provider: "aws_sns".into()
                },
                Route {
                    business_id: "B0100001".into(),
                    channel: Channel::Email,
                    provider: "smtp".into()
                },
                Route {
                    business_id: "B0200002".into(),
                    channel: Channel::Meta,
                    provider: "meta".into()
                },
            ]
        );
        assert_eq!(routes[0].to_string(), "B0100001:sms=aws_sns");
        assert_eq!(parse_routes("  ").unwrap(), Vec::new());
    }

    #[test]
    fn route_errors_name_the_entry() {
        for (text, entry, reason) in [
            (
                "B1:sms=twilio,B2:fax=twilio",
                "B2:fax=twilio",
                "unknown channel",
            ),
            ("B1:sms", "B1:sms", "expected BUSINESS_ID:CHANNEL=PROVIDER"),
            ("B1=twilio", "B1=twilio", "expected"),
            ("B1:sms=", "B1:sms=", "names no provider"),
            ("B 1:sms=twilio", "B 1:sms=twilio", "business id"),
            ("B1:sms=twilio,,B2:sms=twilio", "", "expected"),
            (
                "B1:sms=twilio,B1:SMS=aws_sns",
                "B1:SMS=aws_sns",
                "repeats the route B1:sms=twilio",
            ),
        ] {
            match parse_routes(text) {
                Err(MessagingConfigError::Route {
                    entry: got,
                    reason: why,
                }) => {
                    assert_eq!(got, entry, "{text}");
                    assert!(why.contains(reason), "{text}: {why}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    fn twilio() -> TwilioConfig {
        TwilioConfig::new(
            format!("AC{}", "0".repeat(32)),
            SecretString::from("tw-token-secret"),
            TwilioSender::MessagingService(format!("MG{}", "1".repeat(32))),
        )
    }

    #[tokio::test]
    async fn defaults_and_routes_name_the_setting_at_fault() {
        let config = MessagingConfig {
            twilio: Some(twilio()),
            sms_default: Some("aws_sns".into()),
            ..MessagingConfig::default()
        };
        let error = build(&config).await.err().unwrap().to_string();
        assert!(
            error.starts_with("sms_default: aws_sns is not a configured sms provider"),
            "{error}"
        );

        let config = MessagingConfig {
            twilio: Some(twilio()),
            routes: parse_routes("B0100001:email=smtp").unwrap(),
            ..MessagingConfig::default()
        };
        let error = build(&config).await.err().unwrap().to_string();
        assert!(error.starts_with("route \"B0100001:email=smtp\": smtp is not a configured email provider (configured: none)"), "{error}");

        let mut bad = twilio();
        bad.account_sid = "AC123".into();
        let config = MessagingConfig {
            twilio: Some(bad),
            ..MessagingConfig::default()
        };
        let error = build(&config).await.err().unwrap().to_string();
        assert!(error.starts_with("twilio.account_sid: "), "{error}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = MessagingConfig {
            twilio: Some(twilio()),
            routes: parse_routes("B0100001:sms=twilio").unwrap(),
            ..MessagingConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("B0100001"));
        assert!(!shown.contains("tw-token-secret"), "{shown}");
    }

    #[test]
    fn aws_providers_need_the_sdk_configuration() {
        let config = MessagingConfig {
            sns: Some(SnsConfig::default()),
            ..MessagingConfig::default()
        };
        let error = assemble(&config, None).err().unwrap().to_string();
        assert!(error.starts_with("sns: "), "{error}");
    }
}
