//! Every ElevenLabs-facing route end to end over HTTP on port 0, signed
//! with the scheme of the shared vectors: what each answers, and the
//! agent-log records each leaves.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

use crate::support::bridge::{
    ADMIN_TOKEN, LLM_SECRET, Options, TestBridge, WEBHOOK_SECRET, bearer_post, json_of, llm_events,
    sign, signed_json, signed_post,
};
use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use crate::support::sse;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use voice_operator::agent::{AgentRuntime, Answer, END_CALL, ToolRunner, Turn};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient};

fn seed_message() -> Vec<u8> {
    std::fs::read(crate::support::fixture(
        "elevenlabs/seed_webhook_message.json",
    ))
    .unwrap()
}

fn post_call_fixture() -> Value {
    serde_json::from_slice(
        &std::fs::read(crate::support::fixture(
            "elevenlabs/post_call_transcription.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

fn assert_schema_valid(records: &[Value]) {
    let validator = crate::support::agent_log_validator();
    for r in records {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{r}: {errors:?}");
    }
}

async fn clinic() -> TestBridge {
    let bridge = TestBridge::start(Options::default()).await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    bridge
}

/// The clinic and a second tenant, B0200002/L0200002 on agent_b2.
async fn clinic_and_second_tenant() -> TestBridge {
    let bridge = clinic().await;
    bridge
        .tenant("B0200002", "L0200002", "agent_b2", true)
        .await;
    bridge
}

#[tokio::test]
async fn the_seed_message_gets_the_seed_answer_and_one_receive_record() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let response = signed_post(&url, &seed_message()).await;
    assert!(response.headers().contains_key("x-request-id"));
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["continueConversation"], json!(true));
    assert!(body["actions"].is_array());
    let said = body["response"].as_str().unwrap();
    assert!(said.starts_with("[scripted agent]"), "{said}");
    // "programare" asks the scripted agent for a booking; no app server is
    // configured, so the tool fails and the answer says so.
    assert_eq!(body["actions"][0]["name"], json!("create_appointment"));

    let records = bridge.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_schema_valid(&records);
    let data = &records[0]["data"];
    assert_eq!(records[0]["businessId"], json!("B0100001"));
    assert_eq!(data["actionType"], json!("voice_call"));
    assert_eq!(data["subAction"], json!("receive"));
    assert_eq!(data["provider"], json!("elevenlabs"));
    assert_eq!(data["agentSessionId"], json!("conv_test_123"));
    assert_eq!(data["externalId"], json!("conv_test_123"));
    assert_eq!(data["metadata"]["callDuration"], json!(5));
    assert_eq!(data["metadata"]["conversationId"], json!("conv_test_123"));
}

#[tokio::test]
async fn signatures_are_checked_before_anything_else() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let body = seed_message();
    let client = reqwest::Client::new();

    let missing = client.post(&url).body(body.clone()).send().await.unwrap();
    let (status, answer) = json_of(missing).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("ElevenLabs-Signature")
    );

    // The shared vector for this very body: right secret and digest, but
    // signed a year ago, so now it is a replay.
    let vector: Value = serde_json::from_slice(
        &std::fs::read(crate::support::fixture(
            "elevenlabs/seed_webhook_vector.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let expired = client
        .post(&url)
        .header("ElevenLabs-Signature", vector["header"].as_str().unwrap())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(expired).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("old"),
        "{answer}"
    );

    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'5').unwrap();
    tampered[at] = b'6';
    let bad = client
        .post(&url)
        .header("ElevenLabs-Signature", sign(&body))
        .body(tampered)
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(bad).await;
    assert_eq!(status, 401);
    assert!(answer["error"].as_str().unwrap().contains("does not match"));
    assert!(bridge.records().await.is_empty());
}

#[tokio::test]
async fn bad_bodies_get_400_naming_the_field() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let cases = [
        (b"{\"event\":\"message\",".to_vec(), None),
        (
            br#"{"event":"message","conversationId":"c1","metadata":{"businessId":"B0100001"}}"#
                .to_vec(),
            Some("metadata.locationId"),
        ),
        (
            br#"{"event":"message","conversationId":"c1","message":{"content":7},"metadata":{"businessId":"B0100001","locationId":"L0100001"}}"#.to_vec(),
            Some("message.content"),
        ),
        (
            br#"{"event":"message","conversationId":"c/1","message":{"content":"hi"},"metadata":{"businessId":"B0100001","locationId":"L0100001"}}"#.to_vec(),
            Some("conversationId"),
        ),
        (
            br#"{"event":"shout","conversationId":"c1","metadata":{"businessId":"B0100001","locationId":"L0100001"}}"#.to_vec(),
            Some("event"),
        ),
        (
            br#"{"event":"message","conversationId":"c1","metadata":{"businessId":"B0100001","locationId":"L0100001"}}"#.to_vec(),
            Some("message"),
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = json_of(signed_post(&url, &body).await).await;
        assert_eq!(status, 400, "{answer}");
        match field {
            Some(f) => assert_eq!(answer["field"], json!(f), "{answer}"),
            None => assert!(answer["error"].as_str().unwrap().contains("not valid JSON")),
        }
    }
}

#[tokio::test]
async fn unknown_tenants_are_refused_and_disabled_ones_hear_the_closing_sentence() {
    let bridge = TestBridge::start(Options {
        runtime: Arc::new(NeverRuns),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0200002", "L0200002", "agent_b2", false)
        .await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let body = |kind: &str, b: &str, l: &str| {
        json!({"event":kind,"conversationId":format!("conv_{b}"),
               "message":{"content":"hello"},"metadata":{"businessId":b,"locationId":l}})
    };
    let (status, answer) = signed_json(&url, &body("message", "B9", "L9")).await;
    assert_eq!(status, 404, "{answer}");
    assert!(bridge.records().await.is_empty());

    // The seed's own way to end a conversation: one sentence, no actions,
    // continueConversation false. No ElevenLabs access here, so English.
    for kind in ["conversation_start", "message"] {
        let (status, answer) = signed_json(&url, &body(kind, "B0200002", "L0200002")).await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(
            answer,
            json!({"response": ENGLISH_CLOSING, "continueConversation": false, "actions": []}),
            "{kind}"
        );
    }
    let (status, answer) =
        signed_json(&url, &body("conversation_end", "B0200002", "L0200002")).await;
    assert_eq!((status, &answer["status"]), (200, &json!("ok")), "{answer}");

    // Each event is on the audit trail, marked as reaching a disabled agent.
    let records = bridge.records().await;
    assert_schema_valid(&records);
    let events: Vec<&Value> = records
        .iter()
        .map(|r| &r["data"]["metadata"]["event"])
        .collect();
    assert_eq!(
        events,
        [
            &json!("conversation_start"),
            &json!("message"),
            &json!("conversation_end")
        ]
    );
    for r in &records {
        assert_eq!(r["data"]["subAction"], json!("receive"), "{r}");
        assert_eq!(r["data"]["metadata"]["tenantDisabled"], json!(true), "{r}");
    }

    // A bad signature is still refused before the tenant is looked at.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("ElevenLabs-Signature", "t=1,v0=00")
        .json(&body("message", "B0200002", "L0200002"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
}

/// The sentence a disabled tenant's caller hears when the agent's
/// language is English or unknown.
const ENGLISH_CLOSING: &str =
    "Sorry, this line is not taking calls at the moment, please call again later.";

/// A runtime that fails the test if a turn reaches it.
struct NeverRuns;

impl AgentRuntime for NeverRuns {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        _tools: &'a dyn ToolRunner,
        _stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        panic!("the agent ran for a disabled tenant: {turn:?}")
    }
}

#[tokio::test]
async fn a_disabled_tenants_custom_llm_turn_says_the_closing_sentence_in_its_language_then_ends_the_call()
 {
    let elevenlabs = FakeElevenLabs::start(Faults::default()).await;
    elevenlabs.insert(
        "agent_b2",
        json!({"name": "Agent Clinica", "tags": ["voice-operator", "tenant:B0200002:L0200002"],
               "conversation_config": {"agent": {"language": "ro"}}, "platform_settings": {}}),
    );
    let platform = ElevenLabsClient::new(ClientConfig::new(
        elevenlabs.uri(),
        secrecy::SecretString::from(API_KEY),
    ))
    .unwrap();
    let bridge = TestBridge::start(Options {
        runtime: Arc::new(NeverRuns),
        configure: Box::new(move |b| b.agents = Some(Arc::new(platform))),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0200002", "L0200002", "agent_b2", false)
        .await;
    // Its agent is unknown to ElevenLabs: the sentence falls back to English.
    bridge
        .tenant("B0300003", "L0300003", "agent_b3", false)
        .await;
    let url =
        |b: &str, l: &str| format!("{}/api/elevenlabs/llm/{b}/{l}/chat/completions", bridge.url);
    let request = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "Vreau o programare"}]});

    let client = reqwest::Client::new();
    let unauthenticated = client
        .post(url("B0200002", "L0200002"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    let mut events = llm_events(&url("B0200002", "L0200002"), &request).await;
    let chunks = sse::chunks(&sse::read_data(&mut events, Duration::from_secs(10)).await);
    assert_eq!(chunks.len(), 4, "{chunks:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], json!("assistant"));
    let said = sse::said(&chunks);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("Ne pare rău"), "{said:?}");
    // Then the call ends: an end_call in OpenAI's streaming shape, after
    // the sentence.
    let call = &chunks[2]["choices"][0]["delta"]["tool_calls"];
    assert_eq!(call.as_array().map(Vec::len), Some(1), "{chunks:?}");
    assert_eq!(call[0]["index"], json!(0));
    assert_eq!(call[0]["type"], json!("function"));
    assert_eq!(call[0]["function"]["name"], json!(END_CALL));
    let arguments: Value =
        serde_json::from_str(call[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["reason"], json!("the voice agent is disabled"));
    assert_eq!(
        chunks[3]["choices"][0]["finish_reason"],
        json!("tool_calls")
    );

    let not_streamed = json!({"model": "m", "stream": false,
        "messages": [{"role": "user", "content": "hello"}]});
    let (status, completion) =
        json_of(bearer_post(&url("B0300003", "L0300003"), LLM_SECRET, &not_streamed).await).await;
    assert_eq!(status, 200, "{completion}");
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["content"], json!(ENGLISH_CLOSING));
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["name"],
        json!(END_CALL)
    );
    assert_eq!(choice["finish_reason"], json!("tool_calls"));

    // Each turn is recorded, and so is each call it ended.
    let records = bridge.records().await;
    assert_eq!(records.len(), 4, "{records:?}");
    assert_schema_valid(&records);
    let event = |r: &Value| r["data"]["metadata"]["event"].as_str().map(str::to_owned);
    for r in &records {
        assert_eq!(r["data"]["actionType"], json!("voice_call"));
    }
    let turns: Vec<&Value> = records
        .iter()
        .filter(|r| event(r).as_deref() == Some("custom_llm_turn"))
        .collect();
    assert_eq!(turns.len(), 2, "{records:?}");
    for r in turns {
        assert_eq!(r["data"]["metadata"]["tenantDisabled"], json!(true));
    }
    let ended: Vec<&Value> = records
        .iter()
        .filter(|r| event(r).as_deref() == Some("handoff"))
        .collect();
    assert_eq!(ended.len(), 2, "{records:?}");
    for r in ended {
        assert_eq!(r["data"]["metadata"]["handoff"], json!(END_CALL));
        assert_eq!(r["data"]["subAction"], json!("send"));
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let huge = json!({"event":"message","conversationId":"c1",
        "message":{"content":"a".repeat(70 * 1024)},
        "metadata":{"businessId":"B0100001","locationId":"L0100001"}})
    .to_string();
    let response = signed_post(&url, huge.as_bytes()).await;
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn one_tenant_cannot_touch_another_tenants_agent_or_conversation() {
    let bridge = clinic_and_second_tenant().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let turn = |b: &str, l: &str, conv: &str, agent: Option<&str>| {
        let mut v = json!({"event":"message","conversationId":conv,
            "message":{"content":"hello"},"metadata":{"businessId":b,"locationId":l}});
        if let Some(a) = agent {
            v["agentId"] = json!(a);
        }
        v
    };
    let (ok, _) = signed_json(&url, &turn("B0100001", "L0100001", "conv_a", None)).await;
    assert_eq!(ok, 200);
    let (status, answer) = signed_json(&url, &turn("B0200002", "L0200002", "conv_a", None)).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("conv_a"));
    let other_agent = turn("B0200002", "L0200002", "conv_b", Some("agent_b1"));
    let (status, _) = signed_json(&url, &other_agent).await;
    assert_eq!(status, 403);

    // Post-call: B2's dynamic variables on B1's agent.
    let mut event = post_call_fixture();
    event["data"]["conversation_id"] = json!("conv_c");
    event["data"]["agent_id"] = json!("agent_b1");
    event["data"]["conversation_initiation_client_data"]["dynamic_variables"] =
        json!({"business_id": "B0200002", "location_id": "L0200002"});
    let post_call = format!("{}/api/elevenlabs/post-call", bridge.url);
    let (status, answer) = signed_json(&post_call, &event).await;
    // Acknowledged, so that ElevenLabs keeps the webhook on, but not logged.
    assert_eq!((status, &answer["status"]), (200, &json!("ignored")));
    // Only the one accepted turn was logged.
    assert_eq!(bridge.records().await.len(), 1);
}

#[tokio::test]
async fn a_whole_call_through_the_seed_webhook_logs_start_turns_and_duration() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/webhook", bridge.url);
    let event = |kind: &str, extra: Value| {
        let mut v = json!({"event":kind,"conversationId":"conv_full",
            "metadata":{"businessId":"B0100001","locationId":"L0100001","callerPhone":"+40721000111"}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    for body in [
        event("conversation_start", json!({})),
        event("message", json!({"message": {"content": "hello"}})),
        event("conversation_end", json!({"duration": 42})),
    ] {
        let (status, answer) = signed_json(&url, &body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let records = bridge.records().await;
    assert_eq!(records.len(), 3);
    assert_schema_valid(&records);
    let events: Vec<&Value> = records
        .iter()
        .map(|r| &r["data"]["metadata"]["event"])
        .collect();
    assert_eq!(
        events,
        [
            &json!("conversation_start"),
            &json!("message"),
            &json!("conversation_end")
        ]
    );
    assert_eq!(records[2]["data"]["metadata"]["callDuration"], json!(42));
    assert_eq!(
        records[2]["data"]["recipient"]["phone"],
        json!("+40721000111")
    );
}

/// Says "Hello", then waits for the test's go before finishing: the first
/// chunk must reach the client while this runtime is still busy.
struct Held {
    go: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl AgentRuntime for Held {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        _tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let tx = stream.expect("the custom-LLM route streams");
            tx.send("Hello".into()).await.unwrap();
            let go = self.go.lock().unwrap().take().unwrap();
            go.await.unwrap();
            tx.send(format!(", {}", turn.session_id)).await.unwrap();
            Answer {
                text: format!("Hello, {}", turn.session_id),
                tools: vec![],
                ..Answer::default()
            }
        })
    }
}

#[tokio::test]
async fn the_custom_llm_streams_chunks_before_the_turn_is_over() {
    let (go_tx, go_rx) = oneshot::channel();
    let bridge = TestBridge::start(Options {
        runtime: Arc::new(Held {
            go: std::sync::Mutex::new(Some(go_rx)),
        }),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    let url = format!(
        "{}/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
        bridge.url
    );
    let request = json!({
        "model": "bedrock-agent",
        "stream": true,
        "messages": [
            {"role": "system", "content": "You are a dental assistant."},
            {"role": "user", "content": "Vreau o programare"}
        ],
        "tools": [],
        "user_id": "caller-1",
        "elevenlabs_extra_body": {"conversation_id": "conv_llm_1"}
    });
    let mut events = llm_events(&url, &request).await;
    macro_rules! next {
        () => {
            tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .expect("an event within 5 s")
                .expect("the stream goes on")
                .expect("well-formed SSE")
                .data
        };
    }
    let role: Value = serde_json::from_str(&next!()).unwrap();
    assert_eq!(role["object"], json!("chat.completion.chunk"));
    assert_eq!(role["choices"][0]["delta"]["role"], json!("assistant"));
    let first: Value = serde_json::from_str(&next!()).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], json!("Hello"));
    // Only now may the runtime finish.
    go_tx.send(()).unwrap();
    let second: Value = serde_json::from_str(&next!()).unwrap();
    assert_eq!(
        second["choices"][0]["delta"]["content"],
        json!(", conv_llm_1")
    );
    let stop: Value = serde_json::from_str(&next!()).unwrap();
    assert_eq!(stop["choices"][0]["finish_reason"], json!("stop"));
    assert_eq!(next!(), "[DONE]");
    assert_eq!(first["id"], stop["id"]);
    assert_eq!(first["model"], json!("bedrock-agent"));

    let records = bridge.records().await;
    assert_eq!(records.len(), 1);
    assert_schema_valid(&records);
    assert_eq!(records[0]["data"]["agentSessionId"], json!("conv_llm_1"));
}

#[tokio::test]
async fn the_custom_llm_route_wants_its_bearer_and_a_user_message() {
    let bridge = clinic().await;
    let url = format!(
        "{}/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
        bridge.url
    );
    let client = reqwest::Client::new();
    let request = json!({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]});
    let none = client.post(&url).json(&request).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let wrong = bearer_post(&url, "nope", &request).await;
    assert_eq!(wrong.status().as_u16(), 401);
    let no_user = json!({"model":"m","messages":[{"role":"system","content":"x"}]});
    let (status, answer) = json_of(bearer_post(&url, LLM_SECRET, &no_user).await).await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], json!("messages"));
    let unknown = format!("{}/api/elevenlabs/llm/B7/L7/chat/completions", bridge.url);
    let response = bearer_post(&unknown, LLM_SECRET, &request).await;
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn post_call_transcription_logs_duration_cost_and_transcript_once() {
    let bridge = clinic().await;
    // The fixture's agent: make it this tenant's.
    bridge
        .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
        .await;
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let body = std::fs::read(crate::support::fixture(
        "elevenlabs/post_call_transcription.json",
    ))
    .unwrap();
    let (status, answer) = json_of(signed_post(&url, &body).await).await;
    assert_eq!((status, &answer["status"]), (200, &json!("ok")));
    let (status, answer) = json_of(signed_post(&url, &body).await).await;
    assert_eq!((status, &answer["status"]), (200, &json!("duplicate")));

    let records = bridge.records().await;
    assert_eq!(records.len(), 1, "delivered twice, logged once");
    assert_schema_valid(&records);
    let data = &records[0]["data"];
    assert_eq!(data["actionType"], json!("voice_call"));
    assert_eq!(data["subAction"], json!("receive"));
    assert_eq!(data["recipient"]["phone"], json!("+40721000111"));
    let meta = &data["metadata"];
    assert_eq!(meta["callDuration"], json!(94));
    assert_eq!(meta["conversationId"], json!("conv_0101k9xyz123"));
    // 752 credits and no price per credit configured: no cost
    // (tests/it/http/cost.rs prices them).
    assert!(meta.get("cost").is_none(), "{meta}");
    assert_eq!(meta["transcript"].as_array().unwrap().len(), 3);
    assert_eq!(
        meta["transcript"][1]["message"],
        json!("Vreau o programare mâine la 10.")
    );
}

#[tokio::test]
async fn post_call_analysis_results_land_in_the_calls_record() {
    let bridge = clinic().await;
    bridge
        .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
        .await;
    // The shared fixture, with the results of an agent that declares
    // spec.analysis (ConversationHistoryAnalysisCommonModel's shape).
    let mut event = post_call_fixture();
    event["data"]["analysis"]["evaluation_criteria_results"] = json!({
        "appointment_handled": {"criteria_id": "appointment_handled", "result": "success",
            "rationale": "The caller asked for tomorrow at 10:00 and it was booked."},
    });
    event["data"]["analysis"]["data_collection_results"] = json!({
        "appointment_date": {"data_collection_id": "appointment_date", "value": "2026-12-02",
            "json_schema": {"type": "string", "description": "The date booked"},
            "rationale": "The caller said tomorrow."},
        "new_patient": {"data_collection_id": "new_patient", "value": false,
            "rationale": "The caller has been before."},
    });
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let (status, answer) = signed_json(&url, &event).await;
    assert_eq!((status, &answer["status"]), (200, &json!("ok")));

    let records = bridge.records().await;
    assert_eq!(records.len(), 1);
    assert_schema_valid(&records);
    let meta = &records[0]["data"]["metadata"];
    assert_eq!(
        meta["analysis"],
        json!({
            "callSuccessful": "success",
            "evaluationCriteria": {"appointment_handled": {"result": "success",
                "rationale": "The caller asked for tomorrow at 10:00 and it was booked."}},
            "dataCollection": {
                "appointment_date": {"value": "2026-12-02", "rationale": "The caller said tomorrow."},
                "new_patient": {"value": false, "rationale": "The caller has been before."},
            },
        })
    );
    assert_eq!(
        meta["summary"],
        json!("Caller booked an appointment for tomorrow at 10:00.")
    );
}

#[tokio::test]
async fn a_post_call_event_delivered_to_two_replicas_gives_one_request_id() {
    // Two replicas, each with its own memory and its own action log.
    let (a, b) = (clinic().await, clinic().await);
    for replica in [&a, &b] {
        replica
            .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
            .await;
    }
    let body = std::fs::read(crate::support::fixture(
        "elevenlabs/post_call_transcription.json",
    ))
    .unwrap();
    for replica in [&a, &b] {
        let url = format!("{}/api/elevenlabs/post-call", replica.url);
        let (status, answer) = json_of(signed_post(&url, &body).await).await;
        assert_eq!((status, &answer["status"]), (200, &json!("ok")));
    }
    // Another event of the same conversation is another record.
    let mut failure: Value = serde_json::from_slice(&body).unwrap();
    failure["type"] = json!("call_initiation_failure");
    let url = format!("{}/api/elevenlabs/post-call", a.url);
    let (status, _) = signed_json(&url, &failure).await;
    assert_eq!(status, 200);

    let (from_a, from_b) = (a.records().await, b.records().await);
    assert_eq!((from_a.len(), from_b.len()), (2, 1));
    assert_schema_valid(&from_a);
    assert_schema_valid(&from_b);
    let id = |r: &Value| r["requestId"].as_str().unwrap().to_owned();
    assert_eq!(
        id(&from_a[0]),
        id(&from_b[0]),
        "one event, one requestId, whichever replica logged it"
    );
    assert_ne!(id(&from_a[0]), id(&from_a[1]));
    assert_eq!(from_a[1]["data"]["subAction"], json!("failed"));
    // Turns keep their random ids: two turns are two records.
    let webhook = format!("{}/api/elevenlabs/webhook", a.url);
    for _ in 0..2 {
        assert_eq!(signed_post(&webhook, &seed_message()).await.status(), 200);
    }
    let turns = a.records().await;
    assert_eq!(turns.len(), 4);
    assert_ne!(id(&turns[2]), id(&turns[3]));
}

#[tokio::test]
async fn call_initiation_failures_are_logged_failed_and_audio_is_kept() {
    let bridge = clinic().await;
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let vars = json!({"dynamic_variables": {"business_id": "B0100001", "location_id": "L0100001"}});
    let failure = json!({"type": "call_initiation_failure", "event_timestamp": 1763978400,
        "data": {"agent_id": "agent_b1", "conversation_id": "conv_fail_1",
                 "failure_reason": "busy", "conversation_initiation_client_data": vars,
                 "metadata": {"type": "twilio", "body": {}}}});
    let (status, _) = signed_json(&url, &failure).await;
    assert_eq!(status, 200);
    let audio = json!({"type": "post_call_audio", "event_timestamp": 1763978400,
        "data": {"agent_id": "agent_b1", "conversation_id": "conv_audio_1",
                 "full_audio": "SUQzBAAAAAAA", "conversation_initiation_client_data": vars}});
    let (status, _) = signed_json(&url, &audio).await;
    assert_eq!(status, 200);

    let records = bridge.records().await;
    assert_eq!(records.len(), 1, "audio adds no record: {records:?}");
    assert_schema_valid(&records);
    assert_eq!(records[0]["data"]["subAction"], json!("failed"));
    assert_eq!(
        records[0]["data"]["metadata"]["errorMessage"],
        json!("call initiation failed: busy")
    );
    let file = bridge
        .dir
        .path()
        .join("recordings/B0100001/L0100001/conv_audio_1.mp3");
    crate::support::wait_for(Duration::from_secs(5), "the audio file", || file.exists()).await;
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"ID3\x04\x00\x00\x00\x00\x00"
    );

    let unresolvable = json!({"type": "post_call_transcription",
        "data": {"conversation_id": "conv_nobody"}});
    let (status, answer) = signed_json(&url, &unresolvable).await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], json!("data.agent_id"));
}

#[tokio::test]
async fn conversation_init_gives_the_tenant_of_the_calling_agent() {
    let elevenlabs = FakeElevenLabs::start(Faults::default()).await;
    elevenlabs.insert(
        "agent_b1",
        json!({"name": "Agent Clinica", "tags": ["voice-operator", "tenant:B0100001:L0100001"],
               "conversation_config": {}, "platform_settings": {}}),
    );
    elevenlabs.insert(
        "agent_b2",
        json!({"name": "Agent Salon", "tags": ["voice-operator", "tenant:B0200002:L0200002"],
               "conversation_config": {}, "platform_settings": {}}),
    );
    elevenlabs.insert(
        "agent_stranger",
        json!({"name": "Not ours", "tags": [], "conversation_config": {}, "platform_settings": {}}),
    );
    let platform = ElevenLabsClient::new(ClientConfig::new(
        elevenlabs.uri(),
        secrecy::SecretString::from(API_KEY),
    ))
    .unwrap();
    let bridge = TestBridge::start(Options {
        configure: Box::new(move |b| b.agents = Some(Arc::new(platform))),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    let url = format!("{}/api/elevenlabs/conversation-init", bridge.url);
    let request = json!({"caller_id": "+40721000111", "agent_id": "agent_b1",
        "called_number": "+40312345678", "call_sid": "CA1234567890abcdef"});
    let (status, answer) = signed_json(&url, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], json!("conversation_initiation_client_data"));
    for (variable, value) in [
        ("business_id", "B0100001"),
        ("location_id", "L0100001"),
        ("caller_id", "+40721000111"),
    ] {
        assert_eq!(answer["dynamic_variables"][variable], json!(value));
    }
    assert_eq!(
        answer["custom_llm_extra_body"]["correlation_id"],
        json!("CA1234567890abcdef")
    );

    // The bearer form of authentication works too.
    let by_bearer = bearer_post(&url, WEBHOOK_SECRET, &request).await;
    assert_eq!(by_bearer.status().as_u16(), 200);
    let stranger = json!({"agent_id": "agent_stranger"});
    let (status, _) = signed_json(&url, &stranger).await;
    assert_eq!(status, 404);
    let unsigned = reqwest::Client::new()
        .post(&url)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    // Turns of that call arrive with the correlation id as their session
    // and are filed under the same tenant.
    let llm = format!(
        "{}/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
        bridge.url
    );
    let turn = json!({"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}],
        "elevenlabs_extra_body": answer["custom_llm_extra_body"]});
    let (status, completion) = json_of(bearer_post(&llm, LLM_SECRET, &turn).await).await;
    assert_eq!(status, 200);
    assert_eq!(completion["object"], json!("chat.completion"));
    let records = bridge.records().await;
    assert_eq!(
        records.last().unwrap()["data"]["agentSessionId"],
        json!("CA1234567890abcdef")
    );

    // A disabled tenant's call is answered too (an error would make
    // ElevenLabs fail the call without a word): its agent speaks the
    // closing sentence.
    bridge
        .tenant("B0200002", "L0200002", "agent_b2", false)
        .await;
    let request = json!({"agent_id": "agent_b2", "call_sid": "CA1234567890abcdee"});
    let (status, answer) = signed_json(&url, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["dynamic_variables"]["business_id"],
        json!("B0200002")
    );
}

#[tokio::test]
async fn admin_routes_want_the_admin_token() {
    let bridge = clinic().await;
    let client = reqwest::Client::new();
    let status_url = format!(
        "{}/api/elevenlabs/status/B0100001?locationId=L0100001",
        bridge.url
    );
    let response = client.get(&status_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = client
        .get(&status_url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // Right token, but this bridge has no VoiceAgent backend.
    let response = client
        .get(&status_url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

/// Remembers the session of every turn; each turn waits until `together`
/// turns are running at once, so the calls are truly concurrent.
struct Sessions {
    seen: std::sync::Mutex<Vec<String>>,
    together: tokio::sync::Barrier,
}

impl AgentRuntime for Sessions {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        _tools: &'a dyn ToolRunner,
        _stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(turn.session_id.clone());
            self.together.wait().await;
            Answer {
                text: "ok".into(),
                tools: vec![],
                ..Answer::default()
            }
        })
    }
}

#[tokio::test]
async fn two_concurrent_calls_with_the_same_first_words_get_two_sessions() {
    let runtime = Arc::new(Sessions {
        seen: std::sync::Mutex::new(Vec::new()),
        together: tokio::sync::Barrier::new(2),
    });
    let bridge = TestBridge::start(Options {
        runtime: runtime.clone(),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    let url = format!(
        "{}/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
        bridge.url
    );
    // The same words, the same user id: nothing in the bodies tells the
    // two callers apart.
    let body = json!({"model": "m", "stream": false, "user_id": "anonymous",
        "messages": [{"role": "user", "content": "Bună ziua, vreau o programare"}]});
    let turn = |conversation: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(&url)
            .bearer_auth(LLM_SECRET)
            .json(&body);
        if let Some(id) = conversation {
            request = request.header("X-Conversation-Id", id);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Agents the operator manages send the conversation id as a header.
    let statuses = futures::future::join(turn(Some("conv_a1")), turn(Some("conv_b2"))).await;
    assert_eq!(statuses, (200, 200));
    // A hand-made agent sends no id: each request is a session of its own.
    let statuses = futures::future::join(turn(None), turn(None)).await;
    assert_eq!(statuses, (200, 200));

    let mut seen = runtime.seen.lock().unwrap().clone();
    let named: Vec<String> = seen.drain(..2).collect();
    let mut named_sorted = named.clone();
    named_sorted.sort();
    assert_eq!(named_sorted, ["conv_a1", "conv_b2"]);
    assert_ne!(seen[0], seen[1], "two callers shared a session: {seen:?}");
    assert!(!named.contains(&seen[0]) && !named.contains(&seen[1]));
    let records = bridge.records().await;
    let mut logged: Vec<&str> = records
        .iter()
        .map(|r| r["data"]["agentSessionId"].as_str().unwrap())
        .collect();
    logged.sort_unstable();
    logged.dedup();
    assert_eq!(logged.len(), 4, "{records:?}");

    // An id that is not an id is refused like any other.
    let (status, answer) = json_of(
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(LLM_SECRET)
            .header("X-Conversation-Id", "conv/../x")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], json!("X-Conversation-Id"));
}

#[tokio::test]
async fn post_call_events_of_agents_we_do_not_manage_get_2xx_and_are_counted() {
    let elevenlabs = FakeElevenLabs::start(Faults::default()).await;
    elevenlabs.insert(
        "agent_stranger",
        json!({"name": "Another team's", "tags": [], "conversation_config": {}, "platform_settings": {}}),
    );
    elevenlabs.insert(
        "agent_gone_tenant",
        json!({"name": "Agent Old", "tags": ["voice-operator", "tenant:B0900009:L0900009"],
               "conversation_config": {}, "platform_settings": {}}),
    );
    let platform = ElevenLabsClient::new(ClientConfig::new(
        elevenlabs.uri(),
        secrecy::SecretString::from(API_KEY),
    ))
    .unwrap();
    let bridge = TestBridge::start(Options {
        configure: Box::new(move |b| b.agents = Some(Arc::new(platform))),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let event = |agent: &str, conversation: &str| {
        let mut event = post_call_fixture();
        let data = &mut event["data"];
        data["agent_id"] = json!(agent);
        data["conversation_id"] = json!(conversation);
        data.as_object_mut()
            .unwrap()
            .remove("conversation_initiation_client_data");
        event.to_string()
    };
    // An untagged agent, an agent ElevenLabs does not know, and a tagged
    // agent whose tenant is not here.
    for (agent, conversation) in [
        ("agent_stranger", "conv_x1"),
        ("agent_nowhere", "conv_x2"),
        ("agent_gone_tenant", "conv_x3"),
    ] {
        let (status, answer) =
            json_of(signed_post(&url, event(agent, conversation).as_bytes()).await).await;
        assert_eq!(
            (status, &answer["status"]),
            (200, &json!("ignored")),
            "{agent}"
        );
    }
    let text = bridge.metrics_text();
    for (reason, count) in [("unknown_agent", 2), ("unknown_tenant", 1)] {
        let line = format!(
            "voice_operator_post_call_ignored_total{{type=\"post_call_transcription\",reason=\"{reason}\"}} {count}"
        );
        assert!(text.contains(&line), "{line} not in {text}");
    }

    // A bad signature is still refused, and so is a malformed body.
    let body = event("agent_stranger", "conv_x4");
    let forged = reqwest::Client::new()
        .post(&url)
        .header("ElevenLabs-Signature", "t=1,v0=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let (status, answer) =
        json_of(signed_post(&url, b"{\"type\":\"post_call_audio\"}").await).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], json!("data"));
    assert!(bridge.records().await.is_empty());
}
