//! VoiceAgentTemplates on a real kube-apiserver, with ElevenLabs on the
//! contract-keeping stand-in: an edit rolls out with bounded concurrency
//! and the template counts it, a missing template stalls its VoiceAgents
//! before any call, and the API server refuses a template that names a
//! location.

use std::time::{Duration, Instant};

use crate::support::cluster::{self, until};
use crate::support::fake_elevenlabs::{FakeElevenLabs, Faults};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use voice_operator::crd::{Phase, VoiceAgent, VoiceAgentTemplate};

use super::apiserver::{LONG, dynamo_store, running, settled, start};

/// The chain's template: everything but the location.
fn template(name: &str, max_concurrent: u32) -> VoiceAgentTemplate {
    serde_json::from_value(json!({
        "apiVersion": "voiceagents.io/v1alpha1",
        "kind": "VoiceAgentTemplate",
        "metadata": {"name": name},
        "spec": {
            "businessName": "Dental Chain",
            "voiceId": "21m00Tcm4TlvDq8ikWAM",
            "language": "ro",
            "greeting": "Bună ziua!",
            "customPrompt": "You answer for the clinic at {{address}}.",
            "limits": {"concurrentCalls": 2},
            "rollout": {"maxConcurrent": max_concurrent}
        }
    }))
    .unwrap()
}

/// Location `n` of the chain, naming `template`.
fn location(template: &str, n: usize) -> VoiceAgent {
    serde_json::from_value(json!({
        "apiVersion": "voiceagents.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": format!("chain-l{n:02}")},
        "spec": {
            "businessId": "B0900009",
            "locationId": format!("L{n:07}"),
            "templateRef": {"name": template},
            "variables": {"address": format!("Strada {n}")}
        }
    }))
    .unwrap()
}

/// The most requests matching `what` in flight at one moment, each taken
/// as in flight for `latency` from its arrival (the stand-in answers none
/// sooner, and a slot is freed only after its answer).
fn most_in_flight(arrivals: &[(Instant, String)], what: &str, latency: Duration) -> usize {
    // A tenth off each interval keeps timer jitter from joining two that
    // only touch.
    let span = latency.mul_f64(0.9);
    let starts: Vec<Instant> = arrivals
        .iter()
        .filter(|(_, r)| r.starts_with(what))
        .map(|(at, _)| *at)
        .collect();
    starts
        .iter()
        .map(|&t| starts.iter().filter(|&&s| s <= t && t < s + span).count())
        .max()
        .unwrap_or(0)
}

async fn template_status(api: &Api<VoiceAgentTemplate>, name: &str) -> Value {
    let t = api.get(name).await.unwrap();
    json!({"generation": t.metadata.generation, "status": t.status})
}

#[tokio::test]
async fn a_template_edit_rolls_out_to_twenty_voiceagents_at_most_three_at_a_time() {
    const AGENTS: usize = 20;
    let latency = Duration::from_millis(150);
    let (client, ns) = cluster::with_namespace("rollout").await;
    let fake = FakeElevenLabs::start(Faults {
        latency: Some(latency),
        ..Faults::default()
    })
    .await;
    let op = start(&client, &ns, &fake, dynamo_store().await);
    let templates: Api<VoiceAgentTemplate> = Api::namespaced(client.clone(), &ns);
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    templates
        .create(&PostParams::default(), &template("chain", 3))
        .await
        .unwrap();
    for n in 0..AGENTS {
        api.create(&PostParams::default(), &location("chain", n))
            .await
            .unwrap();
    }
    for n in 0..AGENTS {
        settled(&api, &format!("chain-l{n:02}"), Phase::Active).await;
    }
    // Each agent has the template's settings and its own address.
    let agents = fake.agents();
    assert_eq!(agents.len(), AGENTS);
    for agent in agents.values() {
        let config = &agent["conversation_config"]["agent"];
        assert_eq!(config["first_message"], "Bună ziua!");
        assert!(
            config["dynamic_variables"]["dynamic_variable_placeholders"]["address"]
                .as_str()
                .unwrap()
                .starts_with("Strada ")
        );
        assert_eq!(
            agent["platform_settings"]["call_limits"]["agent_concurrency_limit"],
            2
        );
    }
    let creates = fake.take_arrivals();
    assert!(most_in_flight(&creates, "POST /v1/convai/agents/create", latency) <= 3);

    // The edit: every agent gets the new greeting, never more than three
    // PATCHes in flight at once.
    let edit = json!({"spec": {"greeting": "Bună seara!"}});
    templates
        .patch("chain", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    until(
        LONG,
        "every agent to have the edited greeting",
        || async { fake.agents() },
        |agents| {
            agents
                .values()
                .all(|a| a["conversation_config"]["agent"]["first_message"] == "Bună seara!")
        },
    )
    .await;
    let status = until(
        LONG,
        "the template to count every VoiceAgent updated",
        || template_status(&templates, "chain"),
        |s| s["status"]["updated"] == AGENTS,
    )
    .await;
    assert_eq!(
        status,
        json!({"generation": 2, "status": {"observedGeneration": 2, "voiceAgents": AGENTS,
            "updated": AGENTS, "pending": 0, "failed": 0}})
    );
    let arrivals = fake.take_arrivals();
    let patches = arrivals
        .iter()
        .filter(|(_, r)| r.starts_with("PATCH /v1/convai/agents/"))
        .count();
    assert_eq!(patches, AGENTS, "one PATCH per agent");
    let most = most_in_flight(&arrivals, "PATCH /v1/convai/agents/", latency);
    assert!(
        (1..=3).contains(&most),
        "{most} agent PATCHes were in flight at once; maxConcurrent is 3"
    );
    op.stop().await;
}

#[tokio::test]
async fn a_missing_template_stalls_its_voiceagent_until_it_exists() {
    let (client, ns, fake, _, op, api) = running("notemplate").await;
    api.create(&PostParams::default(), &location("chain", 1))
        .await
        .unwrap();
    let stalled = settled(&api, "chain-l01", Phase::Error).await;
    let conditions = &stalled.status.as_ref().unwrap().conditions;
    let stall = conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(
        (stall.status.as_str(), stall.reason.as_str()),
        ("True", "TemplateNotFound")
    );
    assert!(
        stall
            .message
            .contains("VoiceAgentTemplate chain does not exist"),
        "{}",
        stall.message
    );
    assert!(fake.agents().is_empty(), "nothing reached ElevenLabs");
    assert!(
        fake.take_log()
            .iter()
            .all(|r| !r.starts_with("POST") && !r.starts_with("PATCH")),
        "no write reached ElevenLabs"
    );

    // The template appears: the VoiceAgent is reconciled at once.
    let templates: Api<VoiceAgentTemplate> = Api::namespaced(client.clone(), &ns);
    templates
        .create(&PostParams::default(), &template("chain", 5))
        .await
        .unwrap();
    let active = settled(&api, "chain-l01", Phase::Active).await;
    assert_eq!(active.status.unwrap().template_generation, Some(1));
    assert_eq!(fake.agents().len(), 1);

    // Deleted again: the VoiceAgent says so at once, not at its next
    // resync (10 minutes), and its agent is left as it was.
    templates
        .delete("chain", &Default::default())
        .await
        .unwrap();
    settled(&api, "chain-l01", Phase::Error).await;
    assert_eq!(fake.agents().len(), 1);
    op.stop().await;
}

#[tokio::test]
async fn the_api_server_refuses_a_template_that_names_a_location() {
    let (client, ns) = cluster::with_namespace("badtemplate").await;
    let templates: Api<VoiceAgentTemplate> = Api::namespaced(client.clone(), &ns);
    for field in ["businessId", "locationId"] {
        let mut bad = template(&format!("bad-{}", field.to_lowercase()), 5);
        match field {
            "businessId" => bad.spec.business_id = Some("B1".into()),
            _ => bad.spec.location_id = Some("L1".into()),
        }
        match templates.create(&PostParams::default(), &bad).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422);
                assert!(
                    status
                        .message
                        .contains("a VoiceAgentTemplate cannot set businessId or locationId"),
                    "{}",
                    status.message
                );
            }
            other => panic!("a template with {field} was not refused: {other:?}"),
        }
    }
    // A VoiceAgent without a template still needs its own voice.
    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let mut alone = location("chain", 2);
    alone.spec.template_ref = None;
    match api.create(&PostParams::default(), &alone).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert!(
                status
                    .message
                    .contains("spec.businessName, spec.voiceId and spec.greeting are required"),
                "{}",
                status.message
            );
        }
        other => panic!("a VoiceAgent without a voice was not refused: {other:?}"),
    }
}
