//! Every reason the controller gives, in a condition, an Event or the
//! failure counter. Users see these words (`kubectl describe`, alerts on
//! the counter), so they are written once, here.

use std::fmt;

/// Declares [`Reason`] with its variants, each reading as its own name.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A short PascalCase cause.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &[Reason] = &[$(Reason::$name),*];

            /// The word as users see it, the variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }
    };
}

reasons! {
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
    /// Reconciling: the ElevenLabs agent is being made.
    Creating,
    /// Reconciling and Stalled False: the last reconcile did all it had to.
    Reconciled,
    /// Stalled False: a transient failure, retried with a backoff.
    Retrying,
    /// Reconciling False: nothing more happens until a person changes the
    /// spec or what it names.
    WaitingForChange,
    Created,
    Adopted,
    DuplicateDeleted,
    Updated,
    DriftCorrected,
    /// AgentSynced and the Event: reading the agent back after a write
    /// showed fields the API accepted but did not keep.
    FieldsNotKept,
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
    /// The tenant item changed after the reconcile read it (another writer
    /// came first); the reconcile runs again at once, nothing is stalled.
    TenantItemChanged,
    /// The tenant item was written from a newer spec than this reconcile's
    /// (an old leader whose cache lags); it writes nothing and runs again
    /// once its cache has caught up, nothing is stalled.
    TenantSpecSuperseded,
    TenantStoreError,
    KubernetesError,
    InvalidSpec,
    /// Stalled: spec.templateRef names a VoiceAgentTemplate that does not
    /// exist; nothing is sent to ElevenLabs until it does.
    TemplateNotFound,
    /// PhoneNumber: spec.phoneNumber reaches this agent (or, disabled, none).
    PhoneNumberAssigned,
    /// The Event: the number no longer points at this agent.
    PhoneNumberUnassigned,
    /// The Event: the operator imported the number into the workspace.
    PhoneNumberImported,
    /// The Event: the operator removed a number it had imported.
    PhoneNumberDeleted,
    /// PhoneNumber: an agent no VoiceAgent manages, or an older
    /// VoiceAgent, holds the number; nothing is touched.
    PhoneNumberHeld,
    /// PhoneNumber: not in the workspace and nothing says how to import it.
    PhoneNumberMissing,
    /// PhoneNumber: the Twilio Secret, or a key of it, is missing.
    TelephonySecretMissing,
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
        assert_eq!(Reason::ALL.len(), 43);
        for reason in Reason::ALL {
            assert_eq!(reason.as_str(), format!("{reason:?}"));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!(
            Reason::ElevenLabsRateLimited.as_str(),
            "ElevenLabsRateLimited"
        );
    }
}
