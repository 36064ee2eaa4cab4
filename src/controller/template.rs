//! VoiceAgentTemplates, decided without I/O: the configuration a
//! VoiceAgent that names a template asks for, and how far the template's
//! last edit has reached.
//!
//! The merge rule (also in `docs/architecture.md` and the CRD field
//! docs): the template is the base and the VoiceAgent's own fields go over
//! it. Objects and maps (`voice`, `conversation`, `limits`, `analysis`,
//! `variables`) merge field by field, key by key; lists (`transfer`,
//! `analysis.dataCollection`, `analysis.evaluationCriteria`) are replaced
//! as a whole; other values are overridden. A VoiceAgent field that is
//! left out, or holds its default (the API server writes the CRD's
//! defaults into every VoiceAgent, so the two cannot be told apart), takes
//! the template's value. `businessId`, `locationId`, `enabled`,
//! `phoneNumber`, `telephony` and `deletionPolicy` are the VoiceAgent's
//! alone: the template has no such fields (the CRD refuses `businessId`
//! and `locationId` on a template), and a template names no other
//! template, so references cannot form a cycle.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::crd::{Phase, VoiceAgent, VoiceAgentSpec, VoiceAgentTemplate, VoiceAgentTemplateStatus};

use super::desired::SpecError;

/// A VoiceAgent spec with nothing set but the ids: every default, as JSON.
static DEFAULTS: LazyLock<Value> = LazyLock::new(|| {
    let spec: VoiceAgentSpec = serde_json::from_value(json!({"businessId": "", "locationId": ""}))
        .expect("a spec of ids only deserializes");
    serde_json::to_value(spec).expect("a spec serializes")
});

/// `va` as it is to be reconciled: its spec merged over `template`'s.
pub fn effective(va: &VoiceAgent, template: &VoiceAgentTemplate) -> Result<VoiceAgent, SpecError> {
    let name = template.metadata.name.clone().unwrap_or_default();
    let spec = merged(&va.spec, &template.spec).map_err(|reason| SpecError::Template {
        template: name.clone(),
        reason,
    })?;
    let missing: Vec<&str> = [
        ("businessName", &spec.business_name),
        ("voiceId", &spec.voice_id),
        ("greeting", &spec.greeting),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_empty())
    .map(|(field, _)| field)
    .collect();
    if !missing.is_empty() {
        return Err(SpecError::Template {
            template: name,
            reason: format!(
                "neither the template nor the VoiceAgent sets spec.{}",
                missing.join(", spec.")
            ),
        });
    }
    Ok(VoiceAgent {
        metadata: va.metadata.clone(),
        spec,
        status: va.status.clone(),
    })
}

/// The template's spec with `own` merged over it (see the module docs);
/// the error names what does not fit a VoiceAgent spec.
pub fn merged(
    own: &VoiceAgentSpec,
    template: &crate::crd::VoiceAgentTemplateSpec,
) -> Result<VoiceAgentSpec, String> {
    let mut base = serde_json::to_value(template).map_err(|e| e.to_string())?;
    if let Value::Object(fields) = &mut base {
        for field in ["rollout", "businessId", "locationId"] {
            fields.remove(field);
        }
    }
    let own = serde_json::to_value(own).map_err(|e| e.to_string())?;
    merge(&mut base, without_defaults(own, &DEFAULTS));
    serde_json::from_value(base).map_err(|e| e.to_string())
}

/// `own` without the fields that hold their default value.
fn without_defaults(own: Value, defaults: &Value) -> Value {
    match (own, defaults) {
        (Value::Object(fields), Value::Object(defaults)) => Value::Object(
            fields
                .into_iter()
                .filter_map(|(key, value)| match defaults.get(&key) {
                    Some(default) if *default == value => None,
                    Some(default @ Value::Object(_)) => {
                        Some((key, without_defaults(value, default)))
                    }
                    _ => Some((key, value)),
                })
                .collect::<Map<_, _>>(),
        ),
        (own, _) => own,
    }
}

/// Objects merge key by key; anything else in `over` replaces `base`.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// How far `template`'s current generation has reached among `agents`
/// (the VoiceAgents of its namespace; those naming other templates are
/// not counted).
pub fn rollout(template: &VoiceAgentTemplate, agents: &[VoiceAgent]) -> VoiceAgentTemplateStatus {
    let name = template.metadata.name.as_deref();
    let generation = template.metadata.generation;
    let mut status = VoiceAgentTemplateStatus {
        observed_generation: generation,
        ..VoiceAgentTemplateStatus::default()
    };
    for va in agents
        .iter()
        .filter(|va| va.spec.template_ref.as_ref().map(|r| r.name.as_str()) == name)
    {
        status.voice_agents += 1;
        let Some(s) = &va.status else {
            status.pending += 1;
            continue;
        };
        let current = s.observed_generation == va.metadata.generation;
        match s.phase {
            Some(Phase::Error | Phase::Conflict) if current => status.failed += 1,
            Some(Phase::Active | Phase::Disabled)
                if current && s.template_generation == generation =>
            {
                status.updated += 1
            }
            _ => status.pending += 1,
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{TemplateRef, VoiceAgentStatus, VoiceAgentTemplateSpec};
    use crate::testkit::fixtures::voice_agent;

    /// A dental chain's template: Romanian, a prompt naming the address,
    /// its own voice speed, limits, a staff number and shared variables.
    fn chain() -> VoiceAgentTemplate {
        let spec: VoiceAgentTemplateSpec = serde_json::from_value(json!({
            "businessName": "Dental Chain",
            "voiceId": "chainvoice",
            "language": "ro",
            "greeting": "Bună ziua!",
            "customPrompt": "You answer for the clinic at {{address}}.",
            "voice": {"speed": 1.1, "stability": 0.4},
            "conversation": {"recordCalls": false, "maxDurationSeconds": 600},
            "limits": {"concurrentCalls": 3, "dailyCalls": 300},
            "transfer": [{"number": "+40722000111", "condition": "a person"}],
            "notify": {"email": "calls@chain.example"},
            "variables": {"opening_hours": "9-17", "brand": "Chain"},
            "rollout": {"maxConcurrent": 2}
        }))
        .unwrap();
        let mut template = VoiceAgentTemplate::new("chain", spec);
        template.metadata.generation = Some(4);
        template
    }

    /// A VoiceAgent of the chain as the API server hands it over: the
    /// CRD's defaults written in, only the ids and the template set.
    fn location(name: &str, extra: Value) -> VoiceAgent {
        let mut spec =
            json!({"businessId": "B1", "locationId": name, "templateRef": {"name": "chain"}});
        merge(&mut spec, extra);
        let mut va = voice_agent(name, &format!("uid-{name}"), name);
        va.spec = serde_json::from_value(spec).unwrap();
        va.metadata.generation = Some(1);
        va
    }

    #[test]
    fn an_empty_voiceagent_takes_everything_from_the_template() {
        let va = effective(&location("L1", json!({})), &chain()).unwrap();
        let spec = &va.spec;
        assert_eq!(
            (
                spec.business_name.as_str(),
                spec.voice_id.as_str(),
                spec.language.as_str()
            ),
            ("Dental Chain", "chainvoice", "ro")
        );
        assert_eq!(spec.greeting, "Bună ziua!");
        assert_eq!(spec.conversation.max_duration_seconds, 600);
        assert!(!spec.conversation.record_calls);
        // Defaults stay where neither says anything.
        assert_eq!(spec.conversation.turn_timeout_seconds, 10);
        assert!(spec.enabled);
        assert_eq!(spec.transfer.len(), 1);
        assert_eq!(spec.limits.as_ref().unwrap().daily_calls, Some(300));
        assert_eq!(
            spec.notify.as_ref().and_then(|n| n.email.as_deref()),
            Some("calls@chain.example")
        );
        assert_eq!(
            spec.template_ref,
            Some(TemplateRef {
                name: "chain".into()
            })
        );
        assert_eq!(
            (spec.business_id.as_str(), spec.location_id.as_str()),
            ("B1", "L1")
        );
    }

    #[test]
    fn objects_merge_field_by_field_maps_key_by_key_and_lists_are_replaced() {
        let va = location(
            "L2",
            json!({
                "greeting": "Salut!",
                "voice": {"speed": 0.9},
                "conversation": {"maxDurationSeconds": 900},
                "limits": {"dailyCalls": 50},
                "transfer": [{"number": "+40722000999", "condition": "an emergency"}],
                "variables": {"address": "Str. Lunga 1", "brand": "Chain Nord"}
            }),
        );
        let spec = effective(&va, &chain()).unwrap().spec;
        assert_eq!(spec.greeting, "Salut!");
        let voice = spec.voice.unwrap();
        assert_eq!((voice.speed, voice.stability), (Some(0.9), Some(0.4)));
        assert_eq!(spec.conversation.max_duration_seconds, 900);
        assert!(!spec.conversation.record_calls, "the template's, kept");
        let limits = spec.limits.unwrap();
        assert_eq!(
            (limits.concurrent_calls, limits.daily_calls),
            (Some(3), Some(50))
        );
        assert_eq!(spec.transfer.len(), 1);
        assert_eq!(spec.transfer[0].number, "+40722000999");
        assert_eq!(
            spec.variables.into_iter().collect::<Vec<_>>(),
            [
                ("address".to_owned(), "Str. Lunga 1".to_owned()),
                ("brand".to_owned(), "Chain Nord".to_owned()),
                ("opening_hours".to_owned(), "9-17".to_owned()),
            ]
        );
    }

    #[test]
    fn a_field_at_its_default_takes_the_templates_value() {
        // language en and recordCalls true are the CRD's defaults, so the
        // API server writes them into every VoiceAgent; they do not
        // override the template.
        let va = location(
            "L3",
            json!({"language": "en", "conversation": {"recordCalls": true}, "enabled": false}),
        );
        let spec = effective(&va, &chain()).unwrap().spec;
        assert_eq!(spec.language, "ro");
        assert!(!spec.conversation.record_calls);
        // enabled is the VoiceAgent's own.
        assert!(!spec.enabled);
    }

    #[test]
    fn a_template_that_leaves_a_required_field_unset_is_named() {
        let mut bare = chain();
        bare.spec.voice_id = None;
        bare.spec.greeting = None;
        let err = effective(&location("L4", json!({})), &bare).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.templateRef: VoiceAgentTemplate chain: neither the template nor the VoiceAgent sets spec.voiceId, spec.greeting"
        );
        let own = location("L4", json!({"voiceId": "own", "greeting": "Hi"}));
        assert_eq!(effective(&own, &bare).unwrap().spec.voice_id, "own");
    }

    #[test]
    fn without_a_template_the_spec_is_its_own() {
        // An absent template leaves nothing to merge: the reconciler uses
        // the VoiceAgent as it is (a missing one is TemplateNotFound).
        let own = location(
            "L5",
            json!({"businessName": "Solo", "voiceId": "v", "greeting": "Hi"}),
        );
        let empty = VoiceAgentTemplate::new("chain", VoiceAgentTemplateSpec::default());
        let spec = effective(&own, &empty).unwrap().spec;
        let mut expected = own.spec.clone();
        expected.template_ref = Some(TemplateRef {
            name: "chain".into(),
        });
        assert_eq!(spec, expected);
    }

    #[test]
    fn the_rollout_counts_each_voiceagent_of_the_template_once() {
        let template = chain();
        let with = |name: &str, phase: Phase, template_generation: i64, observed: i64| {
            let mut va = location(name, json!({}));
            va.status = Some(VoiceAgentStatus {
                phase: Some(phase),
                observed_generation: Some(observed),
                template_generation: Some(template_generation),
                ..VoiceAgentStatus::default()
            });
            va
        };
        let mut other = location("O1", json!({}));
        other.spec.template_ref = Some(TemplateRef {
            name: "other".into(),
        });
        let agents = [
            with("A", Phase::Active, 4, 1),
            with("B", Phase::Disabled, 4, 1),
            with("C", Phase::Active, 3, 1),
            with("D", Phase::Error, 4, 1),
            // A spec edit not yet observed: pending, whatever it showed.
            with("E", Phase::Error, 4, 0),
            location("F", json!({})),
            other,
        ];
        assert_eq!(
            rollout(&template, &agents),
            VoiceAgentTemplateStatus {
                observed_generation: Some(4),
                voice_agents: 6,
                updated: 2,
                pending: 3,
                failed: 1,
            }
        );
    }
}
