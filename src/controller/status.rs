//! The status a reconcile leaves behind, computed without I/O. A condition
//! keeps its lastTransitionTime while its status stays the same, so a
//! reconcile that changes nothing writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{Phase, VoiceAgentStatus};
use crate::ids::Id;
use crate::tenant::TenantKey;

use super::error::Error;
use super::reason::Reason;

pub const READY: &str = "Ready";
/// kstatus' abnormal-true condition: work is under way (creating, or
/// retrying after a transient failure).
pub const RECONCILING: &str = "Reconciling";
/// kstatus' abnormal-true condition: nothing will change until a person
/// changes the spec or what it names.
pub const STALLED: &str = "Stalled";
pub const AGENT_SYNCED: &str = "AgentSynced";
pub const CONFIG_SYNCED: &str = "ConfigSynced";
/// Whether spec.phoneNumber reaches the agent; only with a phone number.
pub const PHONE_NUMBER: &str = "PhoneNumber";

/// The phone-number part of a status, with its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneStatus {
    pub number: Option<String>,
    pub id: Option<String>,
    pub assigned: bool,
    pub imported: bool,
    pub cond: Cond,
}

/// A condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn ok(reason: Reason, message: String) -> Cond {
        Cond {
            ok: true,
            reason: reason.as_str().into(),
            message,
        }
    }

    pub fn not(reason: Reason, message: String) -> Cond {
        Cond {
            ok: false,
            reason: reason.as_str().into(),
            message,
        }
    }
}

/// Where the work stands, for kstatus' Reconciling and Stalled (see
/// <https://github.com/kubernetes-sigs/cli-utils/tree/master/pkg/kstatus>:
/// Reconciling True is InProgress, Stalled True is Failed, and a resource
/// whose observedGeneration matches with neither True is Current). At most
/// one of the two is ever True, and Ready is True only when both are False.
enum Work {
    Done,
    InProgress(Cond),
    Stalled(Cond),
}

impl Work {
    fn conditions(&self) -> [(&'static str, Cond); 2] {
        let done = |reason: Reason, message: &str| Cond::not(reason, message.to_owned());
        match self {
            Work::Done => [
                (RECONCILING, done(Reason::Reconciled, "nothing left to do")),
                (STALLED, done(Reason::Reconciled, "nothing needs a person")),
            ],
            Work::InProgress(why) => [
                (
                    RECONCILING,
                    Cond {
                        ok: true,
                        ..why.clone()
                    },
                ),
                (
                    STALLED,
                    done(
                        if why.reason == Reason::Creating.as_str() {
                            Reason::Creating
                        } else {
                            Reason::Retrying
                        },
                        "the operator is still at work; nothing needs a person yet",
                    ),
                ),
            ],
            Work::Stalled(why) => [
                (
                    RECONCILING,
                    done(
                        Reason::WaitingForChange,
                        "waiting for a change of the spec or of what it names",
                    ),
                ),
                (
                    STALLED,
                    Cond {
                        ok: true,
                        ..why.clone()
                    },
                ),
            ],
        }
    }
}

/// What a successful reconcile found.
pub struct Synced<'a> {
    pub old: &'a VoiceAgentStatus,
    pub generation: Option<i64>,
    pub now: Timestamp,
    pub enabled: bool,
    pub agent_id: &'a Id,
    pub config_hash: &'a str,
    pub key: &'a TenantKey,
    pub item_version: u64,
    /// ElevenLabs or the item was written or checked in this reconcile.
    pub synced_now: bool,
    /// Fields the API did not keep, as JSON paths (see [`not_kept`]).
    pub not_kept: &'a [String],
    /// `None` when the VoiceAgent has no phone number.
    pub phone: Option<&'a PhoneStatus>,
}

/// Where an AgentSynced message lists the fields the API did not keep;
/// [`not_kept`] reads the list back from there.
const NOT_KEPT_LIST: &str = "did not keep these fields of the spec: ";

/// The AgentSynced condition. A field the API did not keep makes it False:
/// the agent exists and answers calls, but not as the spec says, and that
/// must be visible. Ready and the phase say whether calls are answered,
/// so they stay as they are; a second write would not help (the API drops
/// the field again), so it waits for a change of spec.
fn agent_synced(agent_id: &Id, not_kept: &[String]) -> Cond {
    if not_kept.is_empty() {
        Cond::ok(
            Reason::Synced,
            format!("ElevenLabs agent {agent_id} matches the spec"),
        )
    } else {
        Cond::not(
            Reason::FieldsNotKept,
            format!(
                "ElevenLabs agent {agent_id} answers calls, but read back after the last write it {NOT_KEPT_LIST}{}",
                not_kept.join(", ")
            ),
        )
    }
}

/// The fields the last read-back found not kept, from the AgentSynced
/// condition that names them; empty when it names none. The status keeps
/// them so that the resync's drift check does not PATCH them again.
pub fn not_kept(old: &VoiceAgentStatus) -> Vec<String> {
    old.conditions
        .iter()
        .find(|c| c.type_ == AGENT_SYNCED && c.reason == Reason::FieldsNotKept.as_str())
        .and_then(|c| c.message.split_once(NOT_KEPT_LIST))
        .map(|(_, list)| list.split(", ").map(str::to_owned).collect())
        .unwrap_or_default()
}

pub fn synced(s: Synced<'_>) -> VoiceAgentStatus {
    let (phase, ready) = if s.enabled {
        (
            Phase::Active,
            Cond::ok(
                Reason::Active,
                format!("agent {} answers calls for {}", s.agent_id, s.key),
            ),
        )
    } else {
        (
            Phase::Disabled,
            Cond::ok(
                Reason::Disabled,
                format!(
                    "{} is disabled: calls are refused; agent {} is kept",
                    s.key, s.agent_id
                ),
            ),
        )
    };
    // A number that does not reach the agent as the spec says waits for a
    // person (a Secret, a key, a number another agent holds).
    let (ready, work) = match s.phone.filter(|p| !p.cond.ok) {
        Some(phone) => (
            Cond {
                ok: false,
                reason: phone.cond.reason.clone(),
                message: format!(
                    "agent {} is {} but its phone number does not reach it: {}",
                    s.agent_id,
                    if s.enabled { "Active" } else { "Disabled" },
                    phone.cond.message
                ),
            },
            Work::Stalled(phone.cond.clone()),
        ),
        None => (ready, Work::Done),
    };
    let [reconciling, stalled] = work.conditions();
    let mut conds = vec![
        (READY, ready),
        reconciling,
        stalled,
        (AGENT_SYNCED, agent_synced(s.agent_id, s.not_kept)),
        (
            CONFIG_SYNCED,
            Cond::ok(
                Reason::Synced,
                format!("tenant {} is current (version {})", s.key, s.item_version),
            ),
        ),
    ];
    if let Some(phone) = s.phone {
        conds.push((PHONE_NUMBER, phone.cond.clone()));
    }
    VoiceAgentStatus {
        phase: Some(phase),
        agent_id: Some(s.agent_id.to_string()),
        observed_generation: s.generation,
        last_synced_at: if s.synced_now {
            Some(s.now.to_string())
        } else {
            s.old.last_synced_at.clone()
        },
        config_hash: Some(s.config_hash.to_owned()),
        phone_number: s.phone.and_then(|p| p.number.clone()),
        phone_number_id: s.phone.and_then(|p| p.id.clone()),
        phone_number_assigned: s.phone.map(|p| p.assigned),
        phone_number_imported: s.phone.filter(|p| p.id.is_some()).map(|p| p.imported),
        // The reconciler sets it: it knows which template it applied.
        template_generation: None,
        conditions: conditions(&s.old.conditions, s.generation, s.now, &conds),
    }
}

/// Another VoiceAgent holds the location: nothing was touched.
pub fn conflict(
    old: &VoiceAgentStatus,
    generation: Option<i64>,
    now: Timestamp,
    message: &str,
) -> VoiceAgentStatus {
    let cond = || Cond::not(Reason::Conflict, message.to_owned());
    let [reconciling, stalled] = Work::Stalled(cond()).conditions();
    VoiceAgentStatus {
        phase: Some(Phase::Conflict),
        agent_id: None,
        observed_generation: generation,
        last_synced_at: None,
        config_hash: None,
        phone_number: None,
        phone_number_id: None,
        phone_number_assigned: None,
        phone_number_imported: None,
        template_generation: None,
        conditions: conditions(
            &old.conditions,
            generation,
            now,
            &[
                (READY, cond()),
                reconciling,
                stalled,
                (AGENT_SYNCED, cond()),
                (CONFIG_SYNCED, cond()),
            ],
        ),
    }
}

/// A failed reconcile. Permanent failures set phase Error; transient ones
/// keep the phase (Pending if there was none). Ready says why, and so does
/// AgentSynced or ConfigSynced when ElevenLabs or the tenant store failed;
/// the other conditions are carried over.
pub fn failed(
    old: &VoiceAgentStatus,
    generation: Option<i64>,
    now: Timestamp,
    err: &Error,
) -> VoiceAgentStatus {
    let why = Cond::not(err.reason(), err.to_string());
    let phase = if err.is_permanent() {
        Phase::Error
    } else {
        old.phase.unwrap_or(Phase::Pending)
    };
    let failed_side = match err {
        Error::ElevenLabs(_) => Some(AGENT_SYNCED),
        Error::Store(_) => Some(CONFIG_SYNCED),
        Error::Kube(_) | Error::Spec(_) => None,
    };
    let side = |kind: &str| {
        if failed_side == Some(kind) {
            why.clone()
        } else {
            carried(old, kind)
        }
    };
    let work = if err.is_permanent() {
        Work::Stalled(why.clone())
    } else {
        Work::InProgress(Cond {
            message: format!("retrying with a backoff after: {}", why.message),
            ..why.clone()
        })
    };
    let [reconciling, stalled] = work.conditions();
    let mut conds = vec![
        (READY, why.clone()),
        reconciling,
        stalled,
        (AGENT_SYNCED, side(AGENT_SYNCED)),
        (CONFIG_SYNCED, side(CONFIG_SYNCED)),
    ];
    if old.conditions.iter().any(|c| c.type_ == PHONE_NUMBER) {
        conds.push((PHONE_NUMBER, carried(old, PHONE_NUMBER)));
    }
    VoiceAgentStatus {
        phase: Some(phase),
        observed_generation: generation,
        conditions: conditions(&old.conditions, generation, now, &conds),
        ..old.clone()
    }
}

/// A VoiceAgent whose ElevenLabs agent is about to be made: Reconciling
/// True, so that kstatus (and Flux, `kubectl wait`) sees it in progress
/// before the first call to ElevenLabs rather than Current with no status.
pub fn creating(
    old: &VoiceAgentStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> VoiceAgentStatus {
    let why = Cond::not(Reason::Creating, "creating the ElevenLabs agent".into());
    let [reconciling, stalled] = Work::InProgress(why.clone()).conditions();
    let conds = [
        (READY, why),
        reconciling,
        stalled,
        (AGENT_SYNCED, carried(old, AGENT_SYNCED)),
        (CONFIG_SYNCED, carried(old, CONFIG_SYNCED)),
    ];
    VoiceAgentStatus {
        phase: Some(old.phase.unwrap_or(Phase::Pending)),
        observed_generation: generation,
        conditions: conditions(&old.conditions, generation, now, &conds),
        ..old.clone()
    }
}

/// Whether `status` already says the agent of `generation` is being made.
pub fn is_creating(status: &VoiceAgentStatus, generation: Option<i64>) -> bool {
    status.observed_generation == generation
        && status.conditions.iter().any(|c| {
            c.type_ == RECONCILING && c.status == "True" && c.reason == Reason::Creating.as_str()
        })
}

/// An existing condition, carried over unchanged, or Unknown.
fn carried(old: &VoiceAgentStatus, kind: &str) -> Cond {
    match old.conditions.iter().find(|c| c.type_ == kind) {
        Some(c) => Cond {
            ok: c.status == "True",
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => Cond::not(Reason::NotReconciled, "not reconciled yet".into()),
    }
}

/// Builds conditions in a fixed order, keeping the transition time of
/// each one whose status did not change.
pub fn conditions(
    old: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
    wanted: &[(&str, Cond)],
) -> Vec<Condition> {
    let mut out: Vec<Condition> = wanted
        .iter()
        .map(|(kind, cond)| {
            let status = if cond.ok { "True" } else { "False" };
            let since = old
                .iter()
                .find(|c| c.type_ == *kind && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: (*kind).to_owned(),
                status: status.into(),
                reason: cond.reason.clone(),
                message: cond.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect();
    let rank = |t: &str| {
        [
            READY,
            RECONCILING,
            STALLED,
            AGENT_SYNCED,
            CONFIG_SYNCED,
            PHONE_NUMBER,
        ]
        .iter()
        .position(|k| *k == t)
    };
    out.sort_by_key(|c| rank(&c.type_));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::desired::SpecError;
    use crate::elevenlabs::ElevenLabsError;
    use crate::tenant::StoreError;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn synced_at(
        old: &VoiceAgentStatus,
        now: Timestamp,
        enabled: bool,
        synced_now: bool,
    ) -> VoiceAgentStatus {
        synced_with(old, now, enabled, synced_now, &[])
    }

    fn synced_with(
        old: &VoiceAgentStatus,
        now: Timestamp,
        enabled: bool,
        synced_now: bool,
        not_kept: &[String],
    ) -> VoiceAgentStatus {
        let key = TenantKey::parse("B1", "L1").unwrap();
        let id = Id::parse("agent_id", "agent_1").unwrap();
        synced(Synced {
            old,
            generation: Some(2),
            now,
            enabled,
            agent_id: &id,
            config_hash: "h1",
            key: &key,
            item_version: 3,
            synced_now,
            not_kept,
            phone: None,
        })
    }

    #[test]
    fn fields_not_kept_turn_agent_synced_false_and_are_read_back_from_it() {
        let t0 = ts("2026-11-24T10:00:00Z");
        let dropped = [
            "platform_settings.privacy.retention_days".to_owned(),
            "platform_settings.workspace_overrides.webhooks.events".to_owned(),
        ];
        let s = synced_with(&VoiceAgentStatus::default(), t0, true, true, &dropped);
        assert_eq!(s.phase, Some(Phase::Active), "the agent answers calls");
        let get = |k: &str| s.conditions.iter().find(|c| c.type_ == k).unwrap();
        assert_eq!(get(READY).status, "True");
        let agent = get(AGENT_SYNCED);
        assert_eq!(
            (agent.status.as_str(), agent.reason.as_str()),
            ("False", "FieldsNotKept")
        );
        assert_eq!(
            agent.message,
            "ElevenLabs agent agent_1 answers calls, but read back after the last write it \
             did not keep these fields of the spec: platform_settings.privacy.retention_days, \
             platform_settings.workspace_overrides.webhooks.events"
        );
        assert_eq!(not_kept(&s), dropped);
        // A failure carries the condition, and the list with it.
        let timeout = Error::ElevenLabs(ElevenLabsError::Timeout {
            operation: "GET /v1/convai/agents/agent_1".into(),
            after: std::time::Duration::from_secs(10),
        });
        let store = failed(
            &s,
            Some(2),
            t0,
            &Error::Store(StoreError::Unavailable {
                backend: "DynamoDB",
                message: "throttled".into(),
            }),
        );
        assert_eq!(not_kept(&store), dropped);
        assert!(not_kept(&failed(&s, Some(2), t0, &timeout)).is_empty());
        // Kept again at the next write: True, and nothing remembered.
        let fixed = synced_with(&s, t0, true, true, &[]);
        assert!(not_kept(&fixed).is_empty());
        assert_eq!(
            fixed
                .conditions
                .iter()
                .find(|c| c.type_ == AGENT_SYNCED)
                .unwrap()
                .status,
            "True"
        );
        assert!(not_kept(&VoiceAgentStatus::default()).is_empty());
    }

    #[test]
    fn an_unchanged_reconcile_gives_an_equal_status() {
        let first = synced_at(
            &VoiceAgentStatus::default(),
            ts("2026-11-24T10:00:00Z"),
            true,
            true,
        );
        assert_eq!(first.phase, Some(Phase::Active));
        let statuses: Vec<(&str, &str)> = first
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                (READY, "True"),
                (RECONCILING, "False"),
                (STALLED, "False"),
                (AGENT_SYNCED, "True"),
                (CONFIG_SYNCED, "True")
            ]
        );
        let again = synced_at(&first, ts("2026-11-24T10:01:00Z"), true, false);
        assert_eq!(again, first);
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let t0 = ts("2026-11-24T10:00:00Z");
        let t1 = ts("2026-11-24T10:05:00Z");
        let ok = synced_at(&VoiceAgentStatus::default(), t0, true, true);
        let rate_limited = Error::ElevenLabs(ElevenLabsError::RateLimited {
            operation: "PATCH /v1/convai/agents/agent_1".into(),
            retry_after: None,
        });
        let failed = failed(&ok, Some(2), t1, &rate_limited);
        assert_eq!(failed.phase, Some(Phase::Active), "transient: phase kept");
        let get = |s: &VoiceAgentStatus, k: &str| {
            s.conditions.iter().find(|c| c.type_ == k).unwrap().clone()
        };
        assert_eq!(get(&failed, READY).status, "False");
        assert_eq!(get(&failed, READY).last_transition_time, Time(t1));
        assert_eq!(get(&failed, AGENT_SYNCED).reason, "ElevenLabsRateLimited");
        // ConfigSynced was not involved: carried over, time and all.
        assert_eq!(get(&failed, CONFIG_SYNCED), get(&ok, CONFIG_SYNCED));
        let rejected = Error::ElevenLabs(ElevenLabsError::Validation {
            operation: "PATCH /v1/convai/agents/agent_1".into(),
            status: 422,
            message: "voice_id: Voice 'nope' does not exist".into(),
        });
        let permanent = super::failed(&ok, Some(2), t1, &rejected);
        assert_eq!(permanent.phase, Some(Phase::Error));
        assert_eq!(permanent.agent_id, ok.agent_id);
    }

    #[test]
    fn conflict_clears_what_the_operator_would_own() {
        let s = conflict(
            &VoiceAgentStatus::default(),
            Some(1),
            ts("2026-11-24T10:00:00Z"),
            "held",
        );
        assert_eq!(s.phase, Some(Phase::Conflict));
        assert!(s.agent_id.is_none());
        for c in &s.conditions {
            match c.type_.as_str() {
                STALLED => assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Conflict")),
                RECONCILING => assert_eq!(c.status, "False"),
                _ => assert_eq!(
                    (c.status.as_str(), c.reason.as_str()),
                    ("False", "Conflict")
                ),
            }
        }
    }

    #[test]
    fn disabled_is_ready_with_its_own_reason() {
        let s = synced_at(
            &VoiceAgentStatus::default(),
            ts("2026-11-24T10:00:00Z"),
            false,
            true,
        );
        assert_eq!(s.phase, Some(Phase::Disabled));
        assert_eq!(s.conditions[0].reason, "Disabled");
    }

    #[test]
    fn a_failure_shows_in_the_condition_of_the_side_that_failed() {
        let t0 = ts("2026-11-24T10:00:00Z");
        let t1 = ts("2026-11-24T10:05:00Z");
        let ok = synced_at(&VoiceAgentStatus::default(), t0, true, true);
        let get = |s: &VoiceAgentStatus, k: &str| {
            s.conditions.iter().find(|c| c.type_ == k).unwrap().clone()
        };
        let unavailable = Error::Store(StoreError::Unavailable {
            backend: "DynamoDB",
            message: "throttled".into(),
        });
        let store = failed(&ok, Some(2), t1, &unavailable);
        assert_eq!(store.phase, Some(Phase::Active));
        assert_eq!(get(&store, READY).reason, "TenantStoreError");
        assert_eq!(get(&store, CONFIG_SYNCED).reason, "TenantStoreError");
        assert_eq!(get(&store, AGENT_SYNCED), get(&ok, AGENT_SYNCED));
        // Neither side: only Ready says why; a first failure is Pending, or
        // Error when permanent, and the others are not reconciled yet.
        let spec = failed(
            &VoiceAgentStatus::default(),
            Some(1),
            t1,
            &Error::Spec(SpecError::NoUid),
        );
        assert_eq!(spec.phase, Some(Phase::Error));
        assert_eq!(get(&spec, READY).reason, "InvalidSpec");
        for kind in [AGENT_SYNCED, CONFIG_SYNCED] {
            assert_eq!(get(&spec, kind).reason, "NotReconciled");
            assert_eq!(get(&spec, kind).status, "False");
        }
        let timeout = Error::ElevenLabs(ElevenLabsError::Timeout {
            operation: "GET /v1/convai/agents/agent_1".into(),
            after: std::time::Duration::from_secs(10),
        });
        let first = failed(&VoiceAgentStatus::default(), Some(1), t1, &timeout);
        assert_eq!(first.phase, Some(Phase::Pending));
    }

    /// kstatus' rules over every status the controller writes: Reconciling
    /// and Stalled never both True, Ready True exactly when neither is,
    /// and every condition carries the generation it describes.
    #[test]
    fn every_status_follows_the_kstatus_rules() {
        let t0 = ts("2026-11-24T10:00:00Z");
        let none = VoiceAgentStatus::default();
        let ok = synced_at(&none, t0, true, true);
        let blocked_phone = PhoneStatus {
            number: Some("+40312345678".into()),
            id: None,
            assigned: false,
            imported: false,
            cond: Cond::not(
                Reason::TelephonySecretMissing,
                "Secret tenants/clinic-twilio does not exist".into(),
            ),
        };
        let key = TenantKey::parse("B1", "L1").unwrap();
        let id = Id::parse("agent_id", "agent_1").unwrap();
        let phone_stalled = synced(Synced {
            old: &ok,
            generation: Some(2),
            now: t0,
            enabled: true,
            agent_id: &id,
            config_hash: "h1",
            key: &key,
            item_version: 3,
            synced_now: true,
            not_kept: &[],
            phone: Some(&blocked_phone),
        });
        let transient = Error::ElevenLabs(ElevenLabsError::RateLimited {
            operation: "PATCH /v1/convai/agents/agent_1".into(),
            retry_after: None,
        });
        let permanent = Error::Spec(SpecError::NoUid);
        let cases = [
            ("creating", creating(&none, Some(2), t0), "InProgress"),
            ("active", ok.clone(), "Current"),
            ("disabled", synced_at(&none, t0, false, true), "Current"),
            ("phone stalled", phone_stalled, "Failed"),
            (
                "retrying",
                failed(&ok, Some(2), t0, &transient),
                "InProgress",
            ),
            ("refused", failed(&ok, Some(2), t0, &permanent), "Failed"),
            ("conflict", conflict(&none, Some(2), t0, "held"), "Failed"),
        ];
        for (name, s, want) in cases {
            let is_true = |k: &str| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == k)
                    .unwrap_or_else(|| panic!("{name}: no {k}"))
                    .status
                    == "True"
            };
            let (ready, reconciling, stalled) =
                (is_true(READY), is_true(RECONCILING), is_true(STALLED));
            assert!(!(reconciling && stalled), "{name}: both True");
            assert_eq!(ready, !reconciling && !stalled, "{name}: Ready");
            assert!(
                s.conditions
                    .iter()
                    .all(|c| c.observed_generation == Some(2)),
                "{name}: observedGeneration"
            );
            assert_eq!(s.observed_generation, Some(2), "{name}");
            // kstatus' decision for a resource whose generation is observed.
            let got = if reconciling {
                "InProgress"
            } else if stalled {
                "Failed"
            } else {
                "Current"
            };
            assert_eq!(got, want, "{name}");
        }
        // Creating is written once per generation.
        let c = creating(&none, Some(2), t0);
        assert!(is_creating(&c, Some(2)));
        assert!(!is_creating(&c, Some(3)));
        assert!(!is_creating(&ok, Some(2)));
    }
}
