//! Where the admin API's VoiceAgents live: the trait the admin routes
//! (`http::admin`) call, its error, and the cluster backend
//! ([`kube::KubeAdmin`]). `local` mode has its own backend over the
//! manifests directory (`local::admin::DirAdmin`).

pub mod kube;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::crd::{VoiceAgent, VoiceAgentTemplate};
use crate::tenant::TenantKey;

pub use self::kube::KubeAdmin;

/// Field manager of what the admin API applies, distinct from the
/// controller's so that server-side apply keeps their fields apart.
pub const ADMIN_FIELD_MANAGER: &str = "voice-operator-admin";

/// Why an admin backend could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// There is no VoiceAgent for the location.
    #[error("{0}")]
    NotFound(String),
    /// The change collides with someone else's (another field manager, a
    /// file edited in between, a VoiceAgent being deleted).
    #[error("{0}")]
    Conflict(String),
    /// The VoiceAgent would be invalid; `field` names the part at fault.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The cluster or the directory cannot be reached or written now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected answer.
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// No VoiceAgent holds `key`.
    pub fn no_agent(key: &TenantKey) -> AdminError {
        AdminError::NotFound(format!("no VoiceAgent exists for {key}"))
    }
}

/// Where VoiceAgents live for the admin API: the cluster, or the manifests
/// directory in `local` mode.
pub trait AgentAdmin: Send + Sync {
    /// Creates or updates the VoiceAgent of `key` with the `spec` fields
    /// given (the others are left as they are). `found` is what
    /// [`AgentAdmin::find`] has just answered, so that it need not be
    /// looked up again.
    fn apply<'a>(
        &'a self,
        key: &'a TenantKey,
        found: Option<&'a VoiceAgent>,
        spec: Map<String, Value>,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>>;
    /// The VoiceAgent of `key`, whatever its name, also while it is being
    /// deleted.
    fn find<'a>(
        &'a self,
        key: &'a TenantKey,
    ) -> BoxFuture<'a, Result<Option<VoiceAgent>, AdminError>>;
    /// Sets `spec.enabled` of the VoiceAgent of `key`.
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        enabled: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>>;
    /// The VoiceAgentTemplate `name` in `va`'s namespace, for the
    /// configuration `status` shows; `None` when there is none.
    fn template<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, AdminError>>;
}

/// The name the admin API gives a new VoiceAgent: a DNS label made of
/// the two ids.
pub fn resource_name(key: &TenantKey) -> String {
    let raw = format!("{}-{}", key.business_id, key.location_id).to_ascii_lowercase();
    raw.replace('_', "-").trim_matches('-').to_owned()
}

/// Whether `va` holds `key`'s location.
pub fn owns(va: &VoiceAgent, key: &TenantKey) -> bool {
    va.spec.business_id == key.business_id.as_str()
        && va.spec.location_id == key.location_id.as_str()
}
