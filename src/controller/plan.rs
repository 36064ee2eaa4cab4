//! Decisions the reconciler takes, as pure functions of what it read.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::crd::{VoiceAgent, VoiceAgentStatus, VoiceAgentTemplate};
use crate::elevenlabs::{AgentSummary, DesiredAgent, PhoneNumber, RemoteAgent};
use crate::ids::Id;
use crate::tenant::{SpecGeneration, TenantConfig, TenantKey, TenantSettings};

use super::desired::uid_tag;
use super::reason::Reason;

/// The VoiceAgent that holds `me`'s (businessId, locationId), when it is
/// not `me`: the oldest claimant wins (creation time, then namespace and
/// name, then uid, so every replica decides the same). A claimant being
/// deleted still holds the key until its cleanup is done.
pub fn conflict_holder<'a, T: Borrow<VoiceAgent>>(
    me: &VoiceAgent,
    all: &'a [T],
) -> Option<&'a VoiceAgent> {
    senior_claimant(me, all, |va| {
        va.spec.business_id == me.spec.business_id && va.spec.location_id == me.spec.location_id
    })
}

/// The VoiceAgent that holds `me`'s spec.phoneNumber, when it is not `me`:
/// the same seniority rule as [`conflict_holder`].
pub fn phone_holder<'a, T: Borrow<VoiceAgent>>(
    me: &VoiceAgent,
    all: &'a [T],
) -> Option<&'a VoiceAgent> {
    let number = me.spec.phone_number.as_deref()?;
    senior_claimant(me, all, |va| {
        va.spec.phone_number.as_deref() == Some(number)
    })
}

/// spec.phoneNumber of every VoiceAgent in `all` other than `me`.
pub fn numbers_of_others<T: Borrow<VoiceAgent>>(me: &VoiceAgent, all: &[T]) -> Vec<String> {
    all.iter()
        .map(Borrow::borrow)
        .filter(|va| !same(va, me))
        .filter_map(|va| va.spec.phone_number.clone())
        .collect()
}

/// The oldest of the VoiceAgents in `all` that `claims`, when older than `me`.
fn senior_claimant<'a, T: Borrow<VoiceAgent>>(
    me: &VoiceAgent,
    all: &'a [T],
    claims: impl Fn(&VoiceAgent) -> bool,
) -> Option<&'a VoiceAgent> {
    all.iter()
        .map(Borrow::borrow)
        .filter(|va| claims(va) && !same(va, me))
        .min_by(|a, b| seniority(a, b))
        .filter(|oldest| seniority(oldest, me) == Ordering::Less)
}

fn same(a: &VoiceAgent, b: &VoiceAgent) -> bool {
    a.metadata.uid.is_some() && a.metadata.uid == b.metadata.uid
}

fn seniority(a: &VoiceAgent, b: &VoiceAgent) -> Ordering {
    let created = |va: &VoiceAgent| va.metadata.creation_timestamp.as_ref().map(|t| t.0);
    // A resource without a timestamp has not been stored yet: youngest.
    let by_time = match (created(a), created(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_time
        .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        .then_with(|| a.metadata.uid.cmp(&b.metadata.uid))
}

/// Agents already carrying this VoiceAgent's identity: the one to adopt
/// and any duplicates an earlier crash left behind (ours to delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub keep: Id,
    pub duplicates: Vec<Id>,
}

/// Looks through listed agents for ones tagged with `owner`'s uid. The
/// agent to keep is the smallest id, so repeated runs choose the same.
/// Adoption only runs when status names no agent or a deleted one, so
/// there is none to prefer.
pub fn adoption(candidates: &[AgentSummary], owner: &Id) -> Option<Adoption> {
    let tag = uid_tag(owner);
    let mut ours: Vec<Id> = candidates
        .iter()
        .filter(|agent| agent.tags.contains(&tag))
        .filter_map(|agent| Id::parse("agent_id", &agent.agent_id).ok())
        .collect();
    ours.sort();
    ours.dedup();
    let (keep, duplicates) = ours.split_first()?;
    Some(Adoption {
        keep: keep.clone(),
        duplicates: duplicates.to_vec(),
    })
}

/// What to do about the ElevenLabs agent, decided from the last status
/// before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStep {
    /// Synced with this spec and checked recently: no call.
    Keep(Id),
    /// The spec changed since the last sync (the hash in status differs):
    /// PATCH without reading first.
    Update(Id),
    /// Same spec, but the resync interval is up: read the live agent and
    /// PATCH it if [`patch_needed`] finds changes made by hand.
    CheckDrift(Id),
    /// Status names no agent: adopt one carrying this VoiceAgent's uid,
    /// or create it.
    Create,
}

/// The step for the agent `old` (the status) names, given the hash of the
/// desired agent. An `agentId` that does not parse counts as none.
pub fn agent_step(
    old: &VoiceAgentStatus,
    desired_hash: &str,
    now: Timestamp,
    resync: Duration,
) -> AgentStep {
    let Some(id) = old
        .agent_id
        .as_deref()
        .and_then(|id| Id::parse("status.agentId", id).ok())
    else {
        return AgentStep::Create;
    };
    if old.config_hash.as_deref() != Some(desired_hash) {
        AgentStep::Update(id)
    } else if resync_due(old, now, resync) {
        AgentStep::CheckDrift(id)
    } else {
        AgentStep::Keep(id)
    }
}

fn resync_due(old: &VoiceAgentStatus, now: Timestamp, resync: Duration) -> bool {
    let Some(last) = old
        .last_synced_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
    else {
        return true;
    };
    let age = now.duration_since(last);
    // A little early, so that the requeue that comes at `resync` (plus
    // jitter) always finds the check due.
    age.as_secs_f64() >= resync.as_secs_f64() * 0.9
}

/// The fields someone changed outside the operator (in the dashboard),
/// when the live agent `remote` needs a PATCH back to `desired`. Fields
/// the last read-back of this same spec found not kept (`not_kept`) are
/// left out: the API drops them whatever we send, so PATCHing them again
/// would only repeat the PATCH at every resync.
pub fn patch_needed(
    desired: &DesiredAgent,
    remote: &RemoteAgent,
    not_kept: &[String],
) -> Option<Vec<String>> {
    let drift: Vec<String> = desired
        .drift(remote)
        .into_iter()
        .filter(|field| !not_kept.contains(field))
        .collect();
    (!drift.is_empty()).then_some(drift)
}

/// The fields, as JSON paths, that the API did not keep: what the agent
/// read back right after a create or update (`remote`) lacks or holds
/// otherwise than `desired`, which was just sent. The API accepts fields
/// its models do not know and drops them without a word (the OpenAPI
/// document closes none of the agent schemas), so only reading back shows
/// it. The official ElevenLabs CLI added the same check for the same
/// reason (elevenlabs/cli `src/shared/verify.ts`, `findMissingPaths` and
/// `verifyAgentPush`, after each create and update); ours compares values
/// too, as the drift check does.
pub fn not_kept(desired: &DesiredAgent, remote: &RemoteAgent) -> Vec<String> {
    desired.drift(remote)
}

/// What to write to the tenant item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemStep<'a> {
    /// Ours, as wanted and written from this spec: nothing is written.
    Keep(&'a TenantConfig),
    /// Ours, and only `enabled` differs, or nothing but the spec
    /// generation it was written from: only that attribute is switched
    /// (or set again), which stores the new generation.
    EnableOnly(bool),
    /// No item, an unclaimed one, another VoiceAgent's (the store's owner
    /// condition then refuses the write) or more than `enabled` differs:
    /// the whole item is put.
    Put,
}

/// The step that brings `current` (the item as read) to `want` for
/// `owner`, planned from generation `planned`. An item as wanted but
/// written from an older spec is written again: the generation it stores
/// is what keeps a replica with an older spec from touching the agent
/// ([`superseded`]), so it must not lag behind a spec edit that left the
/// item's own attributes as they were.
pub fn item_step<'a>(
    current: Option<&'a TenantConfig>,
    owner: &Id,
    want: &TenantSettings,
    planned: SpecGeneration,
) -> ItemStep<'a> {
    let Some(ours) = current.filter(|c| c.owner.as_ref() == Some(owner)) else {
        return ItemStep::Put;
    };
    if ours.settings == *want && ours.spec_generation == Some(planned) {
        return ItemStep::Keep(ours);
    }
    let only_enabled = TenantSettings {
        enabled: want.enabled,
        ..ours.settings.clone()
    } == *want;
    if only_enabled {
        ItemStep::EnableOnly(want.enabled)
    } else {
        ItemStep::Put
    }
}

/// What a plan for `va` (with `template`, when it names one) is made from.
pub fn spec_generation(va: &VoiceAgent, template: Option<&VoiceAgentTemplate>) -> SpecGeneration {
    let planned = SpecGeneration::of(va.metadata.generation);
    match template {
        Some(t) => planned.with_template(
            t.metadata
                .creation_timestamp
                .as_ref()
                .map(|at| at.0.as_second()),
            t.metadata.generation,
        ),
        None => planned,
    }
}

/// The generation the tenant item was written from, when it is newer than
/// the one this reconcile `planned` from: then the reconcile changes
/// nothing anywhere (see [`crate::tenant::StoreError::Superseded`]). An
/// item without one, or none at all, supersedes nothing.
pub fn superseded(
    current: Option<&TenantConfig>,
    planned: SpecGeneration,
) -> Option<SpecGeneration> {
    current
        .and_then(|item| item.spec_generation)
        .filter(|stored| *stored > planned)
}

/// The Event for tenant item `item` just written: whether it was switched
/// off, on again, or otherwise rewritten. `enabled_before` is `None` when
/// there was no item.
pub fn item_event(
    key: &TenantKey,
    item: &TenantConfig,
    enabled_before: Option<bool>,
) -> (Reason, String) {
    match (enabled_before, item.settings.enabled) {
        (Some(true) | None, false) => (
            Reason::Disabled,
            format!(
                "tenant {key} disabled: calls are refused; ElevenLabs agent {} is kept",
                item.settings.agent_id
            ),
        ),
        (Some(false), true) => (Reason::Enabled, format!("tenant {key} enabled again")),
        _ => (
            Reason::ConfigSynced,
            format!(
                "tenant {key} configuration written (version {})",
                item.version
            ),
        ),
    }
}

/// Whether the phone number needs a look at the workspace's numbers:
/// status does not show spec.phoneNumber pointing where `enabled` says,
/// or the resync is due (someone may have moved it by hand).
pub fn phone_due(
    spec_number: Option<&str>,
    enabled: bool,
    old: &VoiceAgentStatus,
    now: Timestamp,
    resync: Duration,
) -> bool {
    match spec_number {
        None => old.phone_number_id.is_some(),
        Some(number) => {
            old.phone_number.as_deref() != Some(number)
                || old.phone_number_id.is_none()
                || old.phone_number_assigned != Some(enabled)
                || resync_due(old, now, resync)
        }
    }
}

/// One call about a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneStep {
    /// Point the number at no agent.
    Unassign(Id),
    /// Point the number at our agent.
    Assign(Id),
    /// Import spec.phoneNumber (credentials from spec.telephony), pointed
    /// at our agent from the start when `assign`.
    Import { assign: bool },
    /// Remove a number this VoiceAgent imported and no longer names.
    Delete(Id),
}

/// Why the number is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneBlock {
    /// An agent that no VoiceAgent of ours manages answers the number.
    HeldByForeignAgent { agent_id: String },
    /// Not in the workspace, and spec.telephony does not say how to import it.
    NotInWorkspace,
}

/// What to do about the phone numbers of one VoiceAgent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonePlan {
    /// In order: spec.phoneNumber first, so that a failure half-way never
    /// leaves the agent without a number; then the numbers let go.
    pub steps: Vec<PhoneStep>,
    /// The number spec.phoneNumber is in the workspace, when it is there,
    /// and whether the operator imported it.
    pub target: Option<(Id, bool)>,
    pub blocked: Option<PhoneBlock>,
}

/// What the workspace holds and who we are, for [`phone_plan`].
pub struct PhoneView<'a> {
    pub spec_number: Option<&'a str>,
    pub enabled: bool,
    pub can_import: bool,
    pub agent: &'a Id,
    /// The VoiceAgent's uid, which the label of a number it imported carries.
    pub uid: &'a str,
    pub old: &'a VoiceAgentStatus,
    pub numbers: &'a [PhoneNumber],
    /// Agent ids of every VoiceAgent this operator manages.
    pub ours: &'a [String],
    /// spec.phoneNumber of every other VoiceAgent: a number one of them
    /// names is never removed.
    pub claimed: &'a [String],
    /// deletionPolicy Delete: a number this VoiceAgent imported and no
    /// longer names is removed from the workspace.
    pub delete_imported: bool,
}

/// The label a number imported for a VoiceAgent carries: its business and
/// location for people, and its uid, so that the operator recognises the
/// import even when the answer to the import request was lost.
pub fn import_label(business_name: &str, location_id: &str, uid: &str) -> String {
    format!("{business_name} ({location_id}) {}", import_mark(uid))
}

fn import_mark(uid: &str) -> String {
    format!("[voice-operator {uid}]")
}

/// Whether the VoiceAgent `uid` imported `n`: its label carries the mark,
/// or the status recorded the import.
fn imported_by(n: &PhoneNumber, uid: &str, old: &VoiceAgentStatus) -> bool {
    (!uid.is_empty() && n.label.ends_with(&import_mark(uid)))
        || (old.phone_number_id.as_deref() == Some(n.phone_number_id.as_str())
            && old.phone_number_imported == Some(true))
}

/// The steps that point spec.phoneNumber at our agent (or at none while
/// disabled), moving the assignment off a number the spec no longer
/// names. A number another agent answers is left alone: when that agent
/// is not one of ours the plan is blocked, naming it.
pub fn phone_plan(v: &PhoneView<'_>) -> PhonePlan {
    let mine = |n: &PhoneNumber| n.assigned_agent.as_deref() == Some(v.agent.as_str());
    let wanted = v
        .spec_number
        .and_then(|number| v.numbers.iter().find(|n| n.phone_number == number));
    if let Some(found) = wanted
        && let Some(holder) = found.assigned_agent.as_deref()
        && holder != v.agent.as_str()
        && !v.ours.iter().any(|a| a == holder)
    {
        return PhonePlan {
            steps: Vec::new(),
            target: None,
            blocked: Some(PhoneBlock::HeldByForeignAgent {
                agent_id: holder.to_owned(),
            }),
        };
    }
    let mut steps = Vec::new();
    let mut target = None;
    let mut blocked = None;
    match (v.spec_number, wanted) {
        (None, _) => {}
        (Some(_), Some(found)) => {
            let id = found.phone_number_id.clone();
            if v.enabled && !mine(found) {
                steps.push(PhoneStep::Assign(id.clone()));
            } else if !v.enabled && mine(found) {
                steps.push(PhoneStep::Unassign(id.clone()));
            }
            target = Some((id, imported_by(found, v.uid, v.old)));
        }
        (Some(_), None) if !v.enabled => {}
        (Some(_), None) if v.can_import => steps.push(PhoneStep::Import { assign: true }),
        (Some(_), None) => blocked = Some(PhoneBlock::NotInWorkspace),
    }
    for n in v.numbers {
        if Some(n.phone_number.as_str()) == v.spec_number {
            continue;
        }
        if mine(n) {
            steps.push(PhoneStep::Unassign(n.phone_number_id.clone()));
        }
        if v.delete_imported && imported_by(n, v.uid, v.old) && !v.claimed.contains(&n.phone_number)
        {
            steps.push(PhoneStep::Delete(n.phone_number_id.clone()));
        }
    }
    PhonePlan {
        steps,
        target,
        blocked,
    }
}

/// The phone-number calls of a deletion: every number pointing at one of
/// `agents` (ours) is unassigned, and with `delete_imported` every number
/// this VoiceAgent imported (label mark or status) that no other
/// VoiceAgent names is removed from the workspace. A number it found
/// there is never removed.
pub fn phone_cleanup(
    numbers: &[PhoneNumber],
    agents: &[Id],
    uid: &str,
    old: &VoiceAgentStatus,
    claimed: &[String],
    delete_imported: bool,
) -> (Vec<Id>, Vec<Id>) {
    let unassign = numbers
        .iter()
        .filter(|n| {
            n.assigned_agent
                .as_deref()
                .is_some_and(|a| agents.iter().any(|ours| ours.as_str() == a))
        })
        .map(|n| n.phone_number_id.clone())
        .collect();
    let delete = numbers
        .iter()
        .filter(|n| {
            delete_imported && imported_by(n, uid, old) && !claimed.contains(&n.phone_number)
        })
        .map(|n| n.phone_number_id.clone())
        .collect();
    (unassign, delete)
}

/// How long a VoiceAgent whose number is blocked waits before looking
/// again: as long as it has been blocked (so the waits double), within
/// `base` and `max`.
pub fn blocked_wait(
    blocked_since: Option<Timestamp>,
    now: Timestamp,
    base: Duration,
    max: Duration,
) -> Duration {
    let age = blocked_since
        .map(|since| Duration::from_secs_f64(now.duration_since(since).as_secs_f64().max(0.0)))
        .unwrap_or_default();
    age.clamp(base, max)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controller::desired::{self, agent, config_hash};
    use crate::testkit::fixtures::{created_at, operator_settings, voice_agent};

    fn va(name: &str, uid: &str, location: &str, created_secs: Option<i64>) -> VoiceAgent {
        let mut va = voice_agent(name, uid, location);
        va.metadata.creation_timestamp = created_secs.map(created_at);
        va
    }

    #[test]
    fn the_oldest_claimant_holds_the_location() {
        let old = va("old", "u-old", "L1", Some(100));
        let new = va("new", "u-new", "L1", Some(200));
        let elsewhere = va("other", "u-other", "L2", Some(50));
        let all = vec![new.clone(), old.clone(), elsewhere.clone()];
        assert_eq!(
            conflict_holder(&new, &all).and_then(|v| v.metadata.uid.clone()),
            Some("u-old".into())
        );
        assert!(conflict_holder(&old, &all).is_none());
        assert!(conflict_holder(&elsewhere, &all).is_none());
        // Not yet in the cache: still decided against the stored one.
        let fresh = va("fresh", "u-fresh", "L1", None);
        assert_eq!(
            conflict_holder(&fresh, &all).and_then(|v| v.metadata.name.clone()),
            Some("old".into())
        );
    }

    #[test]
    fn same_second_claims_are_broken_by_name_the_same_way_everywhere() {
        let a = va("a", "u-a", "L1", Some(100));
        let b = va("b", "u-b", "L1", Some(100));
        for all in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
            assert!(conflict_holder(&a, &all).is_none());
            assert_eq!(
                conflict_holder(&b, &all).and_then(|v| v.metadata.name.clone()),
                Some("a".into())
            );
        }
    }

    fn summary(id: &str, tags: &[&str]) -> AgentSummary {
        AgentSummary {
            agent_id: id.into(),
            name: "Agent Clinic".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn adoption_finds_our_agents_and_names_duplicates() {
        let owner = Id::parse("uid", "u1").unwrap();
        let listed = [
            summary("agent_c", &["voice-operator", "uid:u1"]),
            summary("agent_a", &["voice-operator", "uid:u1"]),
            summary("agent_b", &["voice-operator", "uid:u2"]),
            summary("agent_d", &[]),
        ];
        let found = adoption(&listed, &owner).unwrap();
        assert_eq!(found.keep.as_str(), "agent_a");
        assert_eq!(found.duplicates, [Id::parse("x", "agent_c").unwrap()]);
        // Whatever order the listing comes in, and listed twice, the same
        // agent is kept and none is both kept and a duplicate.
        let mut shuffled = listed.to_vec();
        shuffled.reverse();
        shuffled.push(summary("agent_a", &["uid:u1"]));
        assert_eq!(adoption(&shuffled, &owner), Some(found));
        assert_eq!(adoption(&listed[2..], &owner), None);
    }

    fn synced(agent_id: &str, hash: Option<&str>, at: &str) -> VoiceAgentStatus {
        VoiceAgentStatus {
            agent_id: Some(agent_id.into()),
            config_hash: hash.map(Into::into),
            last_synced_at: Some(at.into()),
            ..VoiceAgentStatus::default()
        }
    }

    #[test]
    fn resync_is_due_after_most_of_the_interval() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let at = |s: &str| VoiceAgentStatus {
            last_synced_at: Some(s.into()),
            ..VoiceAgentStatus::default()
        };
        let ten_min = Duration::from_secs(600);
        assert!(!resync_due(&at("2026-11-24T09:55:00Z"), now, ten_min));
        assert!(resync_due(&at("2026-11-24T09:50:00Z"), now, ten_min));
        assert!(resync_due(&VoiceAgentStatus::default(), now, ten_min));
        assert!(resync_due(&at("not a time"), now, ten_min));
    }

    #[test]
    fn the_agent_step_follows_status_hash_and_resync() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let ten_min = Duration::from_secs(600);
        let id = Id::parse("agent_id", "agent_1").unwrap();
        let step = |old: &VoiceAgentStatus| agent_step(old, "h1", now, ten_min);
        let recent = "2026-11-24T09:55:00Z";
        let long_ago = "2026-11-24T09:00:00Z";
        assert_eq!(step(&VoiceAgentStatus::default()), AgentStep::Create);
        assert_eq!(
            step(&synced("not an id!", Some("h1"), recent)),
            AgentStep::Create
        );
        assert_eq!(
            step(&synced("agent_1", Some("h1"), recent)),
            AgentStep::Keep(id.clone())
        );
        assert_eq!(
            step(&synced("agent_1", Some("h1"), long_ago)),
            AgentStep::CheckDrift(id.clone())
        );
        // A new spec is sent without reading, resync due or not.
        for at in [recent, long_ago] {
            assert_eq!(
                step(&synced("agent_1", Some("h0"), at)),
                AgentStep::Update(id.clone())
            );
            assert_eq!(
                step(&synced("agent_1", None, at)),
                AgentStep::Update(id.clone())
            );
        }
    }

    #[test]
    fn a_patch_goes_out_on_spec_change_or_drift_only() {
        let mut clinic = va("c", "u1", "L1", Some(1));
        clinic.spec.greeting = "Hello".into();
        let desired = agent(&clinic, &operator_settings()).unwrap();
        let hash = config_hash(&desired);
        let body = desired.body();
        let remote = RemoteAgent {
            agent_id: Id::parse("agent_id", "agent_1").unwrap(),
            name: desired.name.clone(),
            tags: desired.tags.clone(),
            conversation_config: body["conversation_config"].clone(),
            platform_settings: body["platform_settings"].clone(),
        };
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let ten_min = Duration::from_secs(600);
        let (recent, long_ago) = ("2026-11-24T09:55:00Z", "2026-11-24T09:00:00Z");
        let id = remote.agent_id.clone();
        let step = |status_hash: Option<&str>, at: &str| {
            agent_step(&synced("agent_1", status_hash, at), &hash, now, ten_min)
        };
        // A new spec is patched without reading the live agent.
        assert_eq!(step(None, recent), AgentStep::Update(id.clone()));
        assert_eq!(step(Some("old"), long_ago), AgentStep::Update(id.clone()));
        // The same spec is only compared when the resync reads the agent.
        assert_eq!(step(Some(&hash), recent), AgentStep::Keep(id.clone()));
        assert_eq!(step(Some(&hash), long_ago), AgentStep::CheckDrift(id));
        assert_eq!(patch_needed(&desired, &remote, &[]), None);
        let mut edited = remote.clone();
        edited.conversation_config["tts"]["voice_id"] = json!("changed-by-hand");
        assert_eq!(
            patch_needed(&desired, &edited, &[]),
            Some(vec!["conversation_config.tts.voice_id".into()])
        );
    }

    #[test]
    fn a_field_the_api_does_not_keep_is_named_once_and_never_patched_again() {
        let desired = agent(&va("c", "u1", "L1", Some(1)), &operator_settings()).unwrap();
        let body = desired.body();
        let mut remote = RemoteAgent {
            agent_id: Id::parse("agent_id", "agent_1").unwrap(),
            name: desired.name.clone(),
            tags: desired.tags.clone(),
            conversation_config: body["conversation_config"].clone(),
            platform_settings: body["platform_settings"].clone(),
        };
        assert_eq!(not_kept(&desired, &remote), Vec::<String>::new());
        // Read back after the write: the API dropped one field.
        let dropped = "platform_settings.privacy.retention_days";
        remote.platform_settings["privacy"]
            .as_object_mut()
            .unwrap()
            .remove("retention_days");
        let found = not_kept(&desired, &remote);
        assert_eq!(found, [dropped]);
        // The resync reads the same agent: no PATCH for the dropped field...
        assert_eq!(patch_needed(&desired, &remote, &found), None);
        // ...but one for a hand edit beside it, naming only the edit.
        remote.conversation_config["agent"]["first_message"] = json!("Hi");
        assert_eq!(
            patch_needed(&desired, &remote, &found),
            Some(vec!["conversation_config.agent.first_message".into()])
        );
        // Without the memory, the dropped field alone would PATCH each time.
        remote.conversation_config["agent"]["first_message"] = json!(desired.first_message);
        assert_eq!(
            patch_needed(&desired, &remote, &[]),
            Some(vec![dropped.into()])
        );
    }

    const GEN: SpecGeneration = SpecGeneration {
        voice_agent: 2,
        template_created: 0,
        template: 0,
    };

    fn item(owner: Option<&str>, settings: TenantSettings) -> TenantConfig {
        TenantConfig {
            key: TenantKey::parse("B1", "L1").unwrap(),
            settings,
            owner: owner.map(|o| Id::parse("uid", o).unwrap()),
            version: 4,
            spec_generation: Some(GEN),
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_item_is_kept_switched_or_put() {
        let owner = Id::parse("uid", "u1").unwrap();
        let agent_id = Id::parse("agent_id", "agent_1").unwrap();
        let want = desired::tenant_settings(&va("c", "u1", "L1", Some(1)), &agent_id);
        assert!(want.enabled);
        assert_eq!(item_step(None, &owner, &want, GEN), ItemStep::Put);
        let same = item(Some("u1"), want.clone());
        assert_eq!(
            item_step(Some(&same), &owner, &want, GEN),
            ItemStep::Keep(&same)
        );
        let off = item(
            Some("u1"),
            TenantSettings {
                enabled: false,
                ..want.clone()
            },
        );
        assert_eq!(
            item_step(Some(&off), &owner, &want, GEN),
            ItemStep::EnableOnly(true)
        );
        assert_eq!(
            item_step(Some(&same), &owner, &off.settings, GEN),
            ItemStep::EnableOnly(false)
        );
        let greeting = item(
            Some("u1"),
            TenantSettings {
                greeting: "Hi".into(),
                ..want.clone()
            },
        );
        assert_eq!(
            item_step(Some(&greeting), &owner, &want, GEN),
            ItemStep::Put
        );
        let off_and_greeting = item(
            Some("u1"),
            TenantSettings {
                enabled: false,
                ..greeting.settings.clone()
            },
        );
        assert_eq!(
            item_step(Some(&off_and_greeting), &owner, &want, GEN),
            ItemStep::Put
        );
        // Not ours, even when it reads as wanted: put, and the store decides.
        assert_eq!(
            item_step(Some(&item(None, want.clone())), &owner, &want, GEN),
            ItemStep::Put
        );
        assert_eq!(
            item_step(Some(&item(Some("u2"), want.clone())), &owner, &want, GEN),
            ItemStep::Put
        );
        assert_eq!(
            item_step(
                Some(&item(Some("u2"), off.settings.clone())),
                &owner,
                &want,
                GEN
            ),
            ItemStep::Put
        );
        // As wanted, but written from an older spec (or before generations
        // were stored): written again, to store this one.
        let newer = SpecGeneration {
            voice_agent: 3,
            ..GEN
        };
        assert_eq!(
            item_step(Some(&same), &owner, &want, newer),
            ItemStep::EnableOnly(true)
        );
        let legacy = TenantConfig {
            spec_generation: None,
            ..same.clone()
        };
        assert_eq!(
            item_step(Some(&legacy), &owner, &want, GEN),
            ItemStep::EnableOnly(true)
        );
    }

    #[test]
    fn only_an_item_from_a_newer_spec_supersedes_a_plan() {
        let agent_id = Id::parse("agent_id", "agent_1").unwrap();
        let want = desired::tenant_settings(&va("c", "u1", "L1", Some(1)), &agent_id);
        let stored = item(Some("u1"), want);
        let at = |voice_agent, template| {
            SpecGeneration::of(Some(voice_agent)).with_template(Some(100), Some(template))
        };
        assert_eq!(superseded(None, at(1, 0)), None);
        assert_eq!(superseded(Some(&stored), GEN), None);
        assert_eq!(superseded(Some(&stored), at(3, 0)), None);
        assert_eq!(superseded(Some(&stored), at(1, 9)), Some(GEN));
        // Same VoiceAgent generation: the template's decides.
        let templated = TenantConfig {
            spec_generation: Some(at(2, 5)),
            ..stored.clone()
        };
        assert_eq!(superseded(Some(&templated), at(2, 4)), Some(at(2, 5)));
        assert_eq!(superseded(Some(&templated), at(2, 5)), None);
        // Another template named: the VoiceAgent's generation rose, and a
        // lower template generation does not matter.
        assert_eq!(superseded(Some(&templated), at(3, 1)), None);
        // The template deleted and made again: generation 1, made later.
        let remade = SpecGeneration::of(Some(2)).with_template(Some(101), Some(1));
        assert_eq!(superseded(Some(&templated), remade), None);
        let legacy = TenantConfig {
            spec_generation: None,
            ..stored
        };
        assert_eq!(superseded(Some(&legacy), at(0, 0)), None);
    }

    #[test]
    fn the_item_event_says_what_the_write_switched() {
        let key = TenantKey::parse("B1", "L1").unwrap();
        let agent_id = Id::parse("agent_id", "agent_1").unwrap();
        let on = desired::tenant_settings(&va("c", "u1", "L1", Some(1)), &agent_id);
        let off = item(
            Some("u1"),
            TenantSettings {
                enabled: false,
                ..on.clone()
            },
        );
        let on = item(Some("u1"), on);
        let disabled = (
            Reason::Disabled,
            "tenant B1/L1 disabled: calls are refused; ElevenLabs agent agent_1 is kept".to_owned(),
        );
        assert_eq!(item_event(&key, &off, Some(true)), disabled);
        assert_eq!(item_event(&key, &off, None), disabled);
        assert_eq!(
            item_event(&key, &on, Some(false)),
            (Reason::Enabled, "tenant B1/L1 enabled again".to_owned())
        );
        let written = (
            Reason::ConfigSynced,
            "tenant B1/L1 configuration written (version 4)".to_owned(),
        );
        assert_eq!(item_event(&key, &on, Some(true)), written);
        assert_eq!(item_event(&key, &on, None), written);
        assert_eq!(item_event(&key, &off, Some(false)), written);
    }

    fn number(id: &str, e164: &str, agent: Option<&str>) -> PhoneNumber {
        PhoneNumber {
            phone_number_id: Id::parse("phone_number_id", id).unwrap(),
            phone_number: e164.into(),
            label: e164.into(),
            provider: crate::elevenlabs::PhoneProvider::Twilio,
            assigned_agent: agent.map(Into::into),
        }
    }

    fn pid(s: &str) -> Id {
        Id::parse("phone_number_id", s).unwrap()
    }

    const A: &str = "+40312345678";
    const B: &str = "+40312345679";

    const UID: &str = "u-me";

    fn plan_for(
        spec: Option<&str>,
        enabled: bool,
        can_import: bool,
        numbers: &[PhoneNumber],
        old: &VoiceAgentStatus,
    ) -> PhonePlan {
        plan_with(spec, enabled, can_import, numbers, old, &[], false)
    }

    fn plan_with(
        spec: Option<&str>,
        enabled: bool,
        can_import: bool,
        numbers: &[PhoneNumber],
        old: &VoiceAgentStatus,
        claimed: &[String],
        delete_imported: bool,
    ) -> PhonePlan {
        let agent = Id::parse("agent_id", "agent_me").unwrap();
        phone_plan(&PhoneView {
            spec_number: spec,
            enabled,
            can_import,
            agent: &agent,
            uid: UID,
            old,
            numbers,
            ours: &["agent_me".into(), "agent_sibling".into()],
            claimed,
            delete_imported,
        })
    }

    /// A number this VoiceAgent imported: its label carries the mark.
    fn imported(id: &str, e164: &str, agent: Option<&str>) -> PhoneNumber {
        PhoneNumber {
            label: import_label("Clinica Dr. Pop", "L1", UID),
            ..number(id, e164, agent)
        }
    }

    #[test]
    fn a_found_number_is_assigned_and_unassigned_while_disabled() {
        let none = VoiceAgentStatus::default();
        let free = [number("p1", A, None)];
        let plan = plan_for(Some(A), true, false, &free, &none);
        assert_eq!(plan.steps, [PhoneStep::Assign(pid("p1"))]);
        assert_eq!(plan.target, Some((pid("p1"), false)));
        assert_eq!(plan.blocked, None);
        let mine = [number("p1", A, Some("agent_me"))];
        assert!(
            plan_for(Some(A), true, false, &mine, &none)
                .steps
                .is_empty()
        );
        assert_eq!(
            plan_for(Some(A), false, false, &mine, &none).steps,
            [PhoneStep::Unassign(pid("p1"))]
        );
        assert!(
            plan_for(Some(A), false, false, &free, &none)
                .steps
                .is_empty()
        );
    }

    #[test]
    fn an_absent_number_is_imported_only_when_it_can_be() {
        let none = VoiceAgentStatus::default();
        let plan = plan_for(Some(A), true, true, &[], &none);
        assert_eq!(plan.steps, [PhoneStep::Import { assign: true }]);
        let plan = plan_for(Some(A), true, false, &[], &none);
        assert_eq!(plan.blocked, Some(PhoneBlock::NotInWorkspace));
        assert!(plan.steps.is_empty());
        // Disabled: nothing to import yet.
        let plan = plan_for(Some(A), false, true, &[], &none);
        assert!(plan.steps.is_empty() && plan.blocked.is_none());
    }

    #[test]
    fn a_changed_number_moves_and_a_removed_one_is_let_go() {
        let none = VoiceAgentStatus::default();
        let numbers = [number("p1", A, Some("agent_me")), number("p2", B, None)];
        // The new number first: a failure half-way leaves the agent
        // reachable on the old one.
        assert_eq!(
            plan_for(Some(B), true, false, &numbers, &none).steps,
            [PhoneStep::Assign(pid("p2")), PhoneStep::Unassign(pid("p1"))]
        );
        assert_eq!(
            plan_for(Some(B), true, true, &numbers[..1], &none).steps,
            [
                PhoneStep::Import { assign: true },
                PhoneStep::Unassign(pid("p1"))
            ]
        );
        // Moving to a number that cannot be had: blocked, the old one kept.
        assert_eq!(
            plan_for(Some(B), true, false, &numbers[..1], &none).blocked,
            Some(PhoneBlock::NotInWorkspace)
        );
        let plan = plan_for(None, true, false, &numbers, &none);
        assert_eq!(plan.steps, [PhoneStep::Unassign(pid("p1"))]);
        assert_eq!(plan.target, None);
    }

    #[test]
    fn a_number_let_go_is_removed_only_when_imported_here_unclaimed_and_policy_delete() {
        let none = VoiceAgentStatus::default();
        let numbers = [imported("p1", A, Some("agent_me")), number("p2", B, None)];
        let moved = plan_with(Some(B), true, false, &numbers, &none, &[], true);
        assert_eq!(
            moved.steps,
            [
                PhoneStep::Assign(pid("p2")),
                PhoneStep::Unassign(pid("p1")),
                PhoneStep::Delete(pid("p1"))
            ]
        );
        // Retained by policy, or named by another VoiceAgent: kept.
        let retained = plan_with(Some(B), true, false, &numbers, &none, &[], false);
        assert!(!retained.steps.contains(&PhoneStep::Delete(pid("p1"))));
        let claimed = plan_with(Some(B), true, false, &numbers, &none, &[A.into()], true);
        assert!(!claimed.steps.contains(&PhoneStep::Delete(pid("p1"))));
        // Found in the workspace (no mark, status says found): kept.
        let found = [number("p1", A, Some("agent_me")), number("p2", B, None)];
        let plan = plan_with(Some(B), true, false, &found, &none, &[], true);
        assert!(!plan.steps.contains(&PhoneStep::Delete(pid("p1"))));
        // Imported by another VoiceAgent (another uid in the mark): kept.
        let theirs = [PhoneNumber {
            label: import_label("Other", "L9", "u-other"),
            ..number("p3", A, None)
        }];
        let plan = plan_with(None, true, false, &theirs, &none, &[], true);
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn an_import_whose_answer_was_lost_is_still_known_as_imported() {
        // The import went through but its answer never came back, so the
        // status does not know the id; the label's mark does.
        let none = VoiceAgentStatus::default();
        let numbers = [imported("p1", A, Some("agent_me"))];
        let plan = plan_for(Some(A), true, true, &numbers, &none);
        assert!(plan.steps.is_empty());
        assert_eq!(plan.target, Some((pid("p1"), true)));
        let (_, delete) = phone_cleanup(&numbers, &[], UID, &none, &[], true);
        assert_eq!(delete, [pid("p1")]);
    }

    #[test]
    fn a_number_a_foreign_agent_answers_blocks_and_one_of_ours_is_taken_over() {
        let none = VoiceAgentStatus::default();
        let numbers = [
            number("p1", B, Some("agent_me")),
            number("p2", A, Some("agent_x")),
        ];
        let plan = plan_for(Some(A), true, true, &numbers, &none);
        assert_eq!(
            plan.blocked,
            Some(PhoneBlock::HeldByForeignAgent {
                agent_id: "agent_x".into()
            })
        );
        // Touches nothing, not even the old number.
        assert!(plan.steps.is_empty());
        // Held by the agent of a VoiceAgent of ours that no longer claims
        // it (the seniority rule ran before): taken over.
        let sibling = [number("p2", A, Some("agent_sibling"))];
        assert_eq!(
            plan_for(Some(A), true, false, &sibling, &none).steps,
            [PhoneStep::Assign(pid("p2"))]
        );
    }

    #[test]
    fn only_a_number_the_operator_imported_is_ever_deleted() {
        let me = Id::parse("agent_id", "agent_me").unwrap();
        let numbers = [
            number("p1", A, Some("agent_me")),
            number("p2", B, Some("agent_x")),
        ];
        let status = |imported: bool| VoiceAgentStatus {
            phone_number_id: Some("p1".into()),
            phone_number_imported: Some(imported),
            ..VoiceAgentStatus::default()
        };
        let cleanup =
            |numbers: &[PhoneNumber], imported: bool, claimed: &[String], delete: bool| {
                phone_cleanup(
                    numbers,
                    std::slice::from_ref(&me),
                    UID,
                    &status(imported),
                    claimed,
                    delete,
                )
            };
        assert_eq!(
            cleanup(&numbers, true, &[], true),
            (vec![pid("p1")], vec![pid("p1")])
        );
        assert_eq!(
            cleanup(&numbers, false, &[], true),
            (vec![pid("p1")], vec![])
        );
        assert_eq!(
            cleanup(&numbers, true, &[], false),
            (vec![pid("p1")], vec![])
        );
        // Another VoiceAgent names it now: unassigned, kept.
        assert_eq!(
            cleanup(&numbers, true, &[A.into()], true),
            (vec![pid("p1")], vec![])
        );
        // Gone from the workspace already: nothing to delete.
        assert_eq!(cleanup(&numbers[1..], true, &[], true), (vec![], vec![]));
    }

    #[test]
    fn the_older_claimant_of_a_number_holds_it() {
        let mut old = va("old", "u-old", "L1", Some(100));
        let mut new = va("new", "u-new", "L2", Some(200));
        old.spec.phone_number = Some(A.into());
        new.spec.phone_number = Some(A.into());
        let all = vec![new.clone(), old.clone()];
        assert_eq!(
            phone_holder(&new, &all).and_then(|v| v.metadata.name.clone()),
            Some("old".into())
        );
        assert!(phone_holder(&old, &all).is_none());
        new.spec.phone_number = Some(B.into());
        assert!(phone_holder(&new, &[old.clone(), new.clone()]).is_none());
    }

    #[test]
    fn the_workspace_is_read_only_when_status_does_not_show_the_number_settled() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let ten_min = Duration::from_secs(600);
        let settled = VoiceAgentStatus {
            phone_number: Some(A.into()),
            phone_number_id: Some("p1".into()),
            phone_number_assigned: Some(true),
            last_synced_at: Some("2026-11-24T09:55:00Z".into()),
            ..VoiceAgentStatus::default()
        };
        assert!(!phone_due(Some(A), true, &settled, now, ten_min));
        assert!(phone_due(Some(A), false, &settled, now, ten_min));
        assert!(phone_due(Some(B), true, &settled, now, ten_min));
        assert!(phone_due(None, true, &settled, now, ten_min));
        assert!(!phone_due(
            None,
            true,
            &VoiceAgentStatus::default(),
            now,
            ten_min
        ));
        let stale = VoiceAgentStatus {
            last_synced_at: Some("2026-11-24T09:00:00Z".into()),
            ..settled
        };
        assert!(phone_due(Some(A), true, &stale, now, ten_min));
    }

    #[test]
    fn a_blocked_number_waits_as_long_as_it_has_been_blocked() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(300));
        assert_eq!(blocked_wait(None, now, base, max), base);
        let since = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        assert_eq!(
            blocked_wait(since("2026-11-24T09:59:30Z"), now, base, max),
            Duration::from_secs(30)
        );
        assert_eq!(
            blocked_wait(since("2026-11-24T08:00:00Z"), now, base, max),
            max
        );
    }
}
