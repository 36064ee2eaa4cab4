//! Decisions the reconciler takes, as pure functions of what it read.

use std::borrow::Borrow;
use std::cmp::Ordering;

use crate::crd::VoiceAgent;
use crate::elevenlabs::{AgentSummary, DesiredAgent, RemoteAgent};
use crate::ids::Id;

use super::desired::{self, uid_tag};

/// The VoiceAgent that holds `me`'s (businessId, locationId), when it is
/// not `me`: the oldest claimant wins (creation time, then namespace and
/// name, then uid, so every replica decides the same). A claimant being
/// deleted still holds the key until its cleanup is done.
pub fn conflict_holder<'a, T: Borrow<VoiceAgent>>(
    me: &VoiceAgent,
    all: &'a [T],
) -> Option<&'a VoiceAgent> {
    let claims = |va: &VoiceAgent| {
        va.spec.business_id == me.spec.business_id && va.spec.location_id == me.spec.location_id
    };
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
/// agent to keep is `preferred` when it is among them (the one status
/// names), otherwise the smallest id, so repeated runs choose the same.
pub fn adoption(
    candidates: &[AgentSummary],
    owner: &Id,
    preferred: Option<&Id>,
) -> Option<Adoption> {
    let tag = uid_tag(owner);
    let mut ours: Vec<Id> = candidates
        .iter()
        .filter(|agent| agent.tags.contains(&tag))
        .filter_map(|agent| Id::parse("agent_id", &agent.agent_id).ok())
        .collect();
    ours.sort();
    ours.dedup();
    let keep = match preferred {
        Some(p) if ours.contains(p) => p.clone(),
        _ => ours.first()?.clone(),
    };
    ours.retain(|id| *id != keep);
    Some(Adoption {
        keep,
        duplicates: ours,
    })
}

/// Why an existing agent gets a PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch {
    /// The spec changed since the last sync (the hash in status differs).
    SpecChanged,
    /// Someone changed these fields outside the operator (the dashboard).
    Drift(Vec<String>),
}

/// Whether the agent must be updated. With a new spec hash the PATCH goes
/// out without comparing; otherwise `remote` (read on resync) is compared.
pub fn patch_needed(
    status_hash: Option<&str>,
    desired: &DesiredAgent,
    remote: Option<&RemoteAgent>,
) -> Option<Patch> {
    if status_hash != Some(desired::config_hash(desired).as_str()) {
        return Some(Patch::SpecChanged);
    }
    let drift = desired.drift(remote?);
    (!drift.is_empty()).then_some(Patch::Drift(drift))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::controller::desired::{OperatorSettings, agent, config_hash};
    use crate::crd::VoiceAgentSpec;

    fn va(name: &str, uid: &str, location: &str, created_secs: Option<i64>) -> VoiceAgent {
        let spec: VoiceAgentSpec = serde_json::from_value(json!({
            "businessId": "B1", "locationId": location, "businessName": "Clinic",
            "voiceId": "v1", "greeting": "Hello"
        }))
        .unwrap();
        let mut va = VoiceAgent::new(name, spec);
        va.metadata.uid = Some(uid.into());
        va.metadata.namespace = Some("tenants".into());
        va.metadata.creation_timestamp =
            created_secs.map(|s| Time(Timestamp::from_second(s).unwrap()));
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
        let found = adoption(&listed, &owner, None).unwrap();
        assert_eq!(found.keep.as_str(), "agent_a");
        assert_eq!(found.duplicates, [Id::parse("x", "agent_c").unwrap()]);
        let preferred = Id::parse("x", "agent_c").unwrap();
        let found = adoption(&listed, &owner, Some(&preferred)).unwrap();
        assert_eq!(found.keep.as_str(), "agent_c");
        assert_eq!(found.duplicates, [Id::parse("x", "agent_a").unwrap()]);
        assert_eq!(adoption(&listed[2..], &owner, None), None);
    }

    #[test]
    fn a_patch_goes_out_on_spec_change_or_drift_only() {
        let mut clinic = va("c", "u1", "L1", Some(1));
        clinic.spec.greeting = "Hello".into();
        let op = OperatorSettings {
            public_url: "https://voice.example.com".into(),
            llm_secret_id: None,
            default_prompt: "p".into(),
        };
        let desired = agent(&clinic, &op).unwrap();
        let hash = config_hash(&desired);
        let body = desired.body();
        let remote = RemoteAgent {
            agent_id: Id::parse("agent_id", "agent_1").unwrap(),
            name: desired.name.clone(),
            tags: desired.tags.clone(),
            conversation_config: body["conversation_config"].clone(),
            platform_settings: json!({}),
        };
        assert_eq!(patch_needed(None, &desired, None), Some(Patch::SpecChanged));
        assert_eq!(
            patch_needed(Some("old"), &desired, Some(&remote)),
            Some(Patch::SpecChanged)
        );
        assert_eq!(patch_needed(Some(&hash), &desired, None), None);
        assert_eq!(patch_needed(Some(&hash), &desired, Some(&remote)), None);
        let mut edited = remote.clone();
        edited.conversation_config["tts"]["voice_id"] = json!("changed-by-hand");
        assert_eq!(
            patch_needed(Some(&hash), &desired, Some(&edited)),
            Some(Patch::Drift(vec![
                "conversation_config.tts.voice_id".into()
            ]))
        );
    }
}
