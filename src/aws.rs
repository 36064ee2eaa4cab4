//! The AWS SDK configuration every AWS client here starts from: the SDK's
//! standard environment (AWS_REGION, AWS_ENDPOINT_URL, the credentials
//! chain), with our timeouts and retry policy.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// No region came from the environment or the profile.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "no AWS region is configured; {service} needs one (set AWS_REGION, or a region in the AWS profile)"
)]
pub struct NoRegion {
    pub service: &'static str,
}

/// Loads the SDK configuration for `service` (named in the error).
pub async fn load(
    service: &'static str,
    retry: RetryConfig,
    attempt_timeout: Duration,
) -> Result<aws_config::SdkConfig, NoRegion> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await;
    if sdk.region().is_none() {
        return Err(NoRegion { service });
    }
    Ok(sdk)
}
