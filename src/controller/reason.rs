//! Every reason the controller gives, in a condition, an Event or the
//! failure counter. Users see these words (`kubectl describe`, alerts on
//! the counter), so they are written once, here.

use std::fmt;

/// A short PascalCase cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Ready: the agent answers calls.
    Active,
    /// Ready, and the Event: the tenant is switched off, its agent kept.
    Disabled,
    /// The tenant was switched on again.
    Enabled,
    /// AgentSynced and ConfigSynced: ElevenLabs or the item match the spec.
    Synced,
    /// An older VoiceAgent holds the same location.
    Conflict,
    /// A condition no reconcile has set yet.
    NotReconciled,
    Created,
    Adopted,
    DuplicateDeleted,
    Updated,
    DriftCorrected,
    AgentMissing,
    /// The tenant item was written.
    ConfigSynced,
    /// Deletion found nothing of its own to clean up.
    Deleted,
    AgentDeleted,
    AgentRetained,
    ConfigDeleted,
    ElevenLabsRateLimited,
    ElevenLabsRejected,
    ElevenLabsAuth,
    ElevenLabsTimeout,
    ElevenLabsServerError,
    ElevenLabsError,
    TenantOwnedElsewhere,
    TenantItemInvalid,
    TenantStoreError,
    KubernetesError,
    InvalidSpec,
}

impl Reason {
    /// The word as users see it, the variant's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Active => "Active",
            Reason::Disabled => "Disabled",
            Reason::Enabled => "Enabled",
            Reason::Synced => "Synced",
            Reason::Conflict => "Conflict",
            Reason::NotReconciled => "NotReconciled",
            Reason::Created => "Created",
            Reason::Adopted => "Adopted",
            Reason::DuplicateDeleted => "DuplicateDeleted",
            Reason::Updated => "Updated",
            Reason::DriftCorrected => "DriftCorrected",
            Reason::AgentMissing => "AgentMissing",
            Reason::ConfigSynced => "ConfigSynced",
            Reason::Deleted => "Deleted",
            Reason::AgentDeleted => "AgentDeleted",
            Reason::AgentRetained => "AgentRetained",
            Reason::ConfigDeleted => "ConfigDeleted",
            Reason::ElevenLabsRateLimited => "ElevenLabsRateLimited",
            Reason::ElevenLabsRejected => "ElevenLabsRejected",
            Reason::ElevenLabsAuth => "ElevenLabsAuth",
            Reason::ElevenLabsTimeout => "ElevenLabsTimeout",
            Reason::ElevenLabsServerError => "ElevenLabsServerError",
            Reason::ElevenLabsError => "ElevenLabsError",
            Reason::TenantOwnedElsewhere => "TenantOwnedElsewhere",
            Reason::TenantItemInvalid => "TenantItemInvalid",
            Reason::TenantStoreError => "TenantStoreError",
            Reason::KubernetesError => "KubernetesError",
            Reason::InvalidSpec => "InvalidSpec",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_reads_as_its_name() {
        use Reason::*;
        let all = [
            Active,
            Disabled,
            Enabled,
            Synced,
            Conflict,
            NotReconciled,
            Created,
            Adopted,
            DuplicateDeleted,
            Updated,
            DriftCorrected,
            AgentMissing,
            ConfigSynced,
            Deleted,
            AgentDeleted,
            AgentRetained,
            ConfigDeleted,
            ElevenLabsRateLimited,
            ElevenLabsRejected,
            ElevenLabsAuth,
            ElevenLabsTimeout,
            ElevenLabsServerError,
            ElevenLabsError,
            TenantOwnedElsewhere,
            TenantItemInvalid,
            TenantStoreError,
            KubernetesError,
            InvalidSpec,
        ];
        for reason in all {
            assert_eq!(reason.as_str(), format!("{reason:?}"));
            assert_eq!(reason.to_string(), reason.as_str());
        }
    }
}
