//! The custom-LLM route as ElevenLabs drives it: what the request carries
//! reaches the runtime, a retried request follows the turn already under
//! way, a slow turn gets buffer words, a hand-off comes back as
//! `tool_calls`, and a turn outlives the request that started it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::bridge::{LLM_SECRET, Options, TestBridge, bearer_post, json_of, llm_events};
use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use crate::support::providers::{TWILIO_PATH, twilio_config};
use crate::support::runtime::Slow;
use futures::StreamExt;
use serde_json::{Value, json};
use voice_operator::agent::tools::ToolsConfig;
use voice_operator::agent::{END_CALL, Role, TRANSFER_TO_NUMBER};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient};
use voice_operator::messaging::Messaging;
use voice_operator::messaging::twilio::TwilioProvider;
use voice_operator::testkit::sse::{Events, chunks, read_data, said};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The clinic, B0100001/L0100001 on agent_b1, behind a bridge of `options`.
async fn clinic(options: Options) -> TestBridge {
    let bridge = TestBridge::start(options).await;
    bridge
        .tenant("B0100001", "L0100001", "agent_b1", true)
        .await;
    bridge
}

fn url(bridge: &TestBridge) -> String {
    format!(
        "{}/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
        bridge.url
    )
}

/// The next event's data, or `None` if none comes within `wait`.
async fn next_within(events: &mut Events, wait: Duration) -> Option<String> {
    match tokio::time::timeout(wait, events.next()).await {
        Err(_) => None,
        Ok(event) => Some(
            event
                .expect("the stream goes on")
                .expect("well-formed SSE")
                .data,
        ),
    }
}

/// Every event's data until the stream ends (bounded at 10 s).
async fn rest(events: &mut Events) -> Vec<String> {
    read_data(events, Duration::from_secs(10)).await
}

fn assert_schema_valid(records: &[Value]) {
    let validator = crate::support::agent_log_validator();
    for r in records {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{r}: {errors:?}");
    }
}

/// The records of the custom-LLM turns received.
fn turn_records(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["data"]["metadata"]["event"] == json!("custom_llm_turn"))
        .collect()
}

/// The hand-off records.
fn handoff_records(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["data"]["metadata"]["event"] == json!("handoff"))
        .collect()
}

/// ElevenLabs' `transfer_to_number` tool offering `numbers`, and its
/// `end_call`, as its request lists them.
fn system_tools(numbers: &[&str]) -> Value {
    json!([
        {"type": "function", "function": {"name": "end_call",
            "description": "Call this function to end the current conversation.",
            "parameters": {"type": "object", "properties": {
                "reason": {"type": "string"}, "message": {"type": "string"}},
                "required": ["reason"]}}},
        {"type": "function", "function": {"name": "transfer_to_number",
            "description": "Transfer the caller to a person when they ask for one.",
            "parameters": {"type": "object", "properties": {
                "reason": {"type": "string"},
                "transfer_number": {"type": "string", "enum": numbers},
                "client_message": {"type": "string"}, "agent_message": {"type": "string"}},
                "required": ["transfer_number", "client_message", "agent_message"]}}},
    ])
}

#[tokio::test]
async fn the_system_message_history_date_and_system_tools_reach_the_runtime() {
    let slow = Arc::new(Slow::new(Duration::ZERO, "Mâine la 10 este liber."));
    let bridge = clinic(Options {
        runtime: slow.clone(),
        ..Options::default()
    })
    .await;
    let request = json!({
        "model": "custom", "stream": true,
        "messages": [
            {"role": "system", "content": "You answer for Clinica Dentară. Speak Romanian."},
            {"role": "assistant", "content": "Bună ziua, cu ce vă ajut?"},
            {"role": "user", "content": "Vreau o programare"},
            {"role": "assistant", "content": "Pentru ce zi?"},
            {"role": "user", "content": "Mâine la 10"},
        ],
        "tools": [
            system_tools(&["+40312000111"])[0],
            {"type": "function", "function": {"name": "language_detection"}},
        ],
        "elevenlabs_extra_body": {"conversation_id": "conv_sys_1", "time_zone": "Europe/Bucharest"},
    });
    let zone = jiff::tz::TimeZone::get("Europe/Bucharest").unwrap();
    let day = || {
        jiff::Timestamp::now()
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d (%A)")
            .to_string()
    };
    let before = day();
    let mut events = llm_events(&url(&bridge), &request).await;
    let answer = said(&chunks(&rest(&mut events).await));
    let after = day();
    assert_eq!(answer, ["Mâine la 10 este liber."]);

    let turns = slow.turns();
    assert_eq!(turns.len(), 1);
    let turn = &turns[0];
    assert_eq!(turn.session_id, "conv_sys_1");
    assert_eq!(turn.text, "Mâine la 10");
    let system = turn.system.as_deref().unwrap();
    assert!(
        system.starts_with("You answer for Clinica Dentară. Speak Romanian.\n\nToday is "),
        "{system}"
    );
    assert!(
        system.contains(&format!("Today is {before}"))
            || system.contains(&format!("Today is {after}")),
        "{system}"
    );
    assert!(system.contains("time zone Europe/Bucharest"), "{system}");
    assert!(system.contains("YYYY-MM-DD"), "{system}");
    let history: Vec<(Role, &str)> = turn
        .history
        .iter()
        .map(|m| (m.role, m.text.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            (Role::Assistant, "Bună ziua, cu ce vă ajut?"),
            (Role::User, "Vreau o programare"),
            (Role::Assistant, "Pentru ce zi?"),
        ]
    );
    let offered: Vec<&str> = turn
        .platform_tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(offered, [END_CALL]);
    assert_eq!(
        turn.platform_tools[0].parameters["required"],
        json!(["reason"])
    );
}

/// ElevenLabs' cascade timeout, shortened for the test: an attempt that
/// has heard no words by then is abandoned and the request sent again.
const CASCADE: Duration = Duration::from_millis(400);

/// One ElevenLabs attempt that gives up: it reads for [`CASCADE`], checks
/// that no words came, and hangs up.
async fn abandoned_attempt(url: &str, request: &Value) {
    let mut events = llm_events(url, request).await;
    let started = Instant::now();
    while let Some(left) = CASCADE.checked_sub(started.elapsed()) {
        let Some(data) = next_within(&mut events, left).await else {
            break;
        };
        let chunk: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
            "",
            "the turn spoke before the cascade timeout: {chunk}"
        );
    }
}

#[tokio::test]
async fn a_request_retried_after_the_cascade_timeout_books_once_and_the_last_attempt_hears_it() {
    let app = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/appointments"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "apt_4411", "status": "confirmed"}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&app)
        .await;
    let bridge = clinic(Options {
        tools_config: ToolsConfig {
            app_server_url: Some(format!("{}/", app.uri())),
            timeout: Duration::from_secs(5),
            ..ToolsConfig::default()
        },
        // No buffer words: the attempts must time out as they would
        // against a silent turn.
        configure: Box::new(|b| b.config.buffer_words_after = None),
        ..Options::default()
    })
    .await;
    let request = json!({
        "model": "custom", "stream": true,
        "messages": [
            {"role": "system", "content": "You answer for Clinica Dentară."},
            {"role": "user", "content": "Please book 2026-12-01 at 10:30"},
        ],
        "elevenlabs_extra_body": {"conversation_id": "conv_retry_1"},
    });
    abandoned_attempt(&url(&bridge), &request).await;
    abandoned_attempt(&url(&bridge), &request).await;
    let mut third = llm_events(&url(&bridge), &request).await;
    let third = chunks(&rest(&mut third).await);
    let text = said(&third).concat();
    assert!(text.contains("create_appointment done"), "{text}");
    assert!(text.contains("apt_4411"), "{text}");
    assert_eq!(
        third.last().unwrap()["choices"][0]["finish_reason"],
        json!("stop")
    );

    let bookings = app.received_requests().await.unwrap();
    assert_eq!(bookings.len(), 1, "booked more than once");
    let booking: Value = serde_json::from_slice(&bookings[0].body).unwrap();
    assert_eq!(booking["date"], json!("2026-12-01"));
    assert_eq!(booking["agentSessionId"], json!("conv_retry_1"));
    let records = bridge.records().await;
    assert_eq!(turn_records(&records).len(), 1, "{records:?}");
    assert!(
        bridge
            .metrics_text()
            .contains("voice_operator_custom_llm_retries_followed_total 2"),
        "{}",
        bridge.metrics_text()
    );

    // The same words later in the call are another turn: the conversation
    // before them differs.
    let mut later = request.clone();
    later["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": text}),
        json!({"role": "user", "content": "Please book 2026-12-01 at 10:30"}),
    ]);
    let mut again = llm_events(&url(&bridge), &later).await;
    rest(&mut again).await;
    assert_eq!(app.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_slow_turn_starts_with_buffer_words_in_the_agents_language() {
    let elevenlabs = FakeElevenLabs::start(Faults::default()).await;
    elevenlabs.insert(
        "agent_b1",
        json!({"name": "Agent Clinica", "tags": ["voice-operator", "tenant:B0100001:L0100001"],
               "conversation_config": {"agent": {"language": "ro"}}, "platform_settings": {}}),
    );
    let platform = ElevenLabsClient::new(ClientConfig::new(
        elevenlabs.uri(),
        secrecy::SecretString::from(API_KEY),
    ))
    .unwrap();
    let bridge = clinic(Options {
        runtime: Arc::new(Slow::new(Duration::from_millis(1500), "Avem loc la 10.")),
        configure: Box::new(move |b| {
            b.agents = Some(Arc::new(platform));
            b.config.buffer_words_after = Some(Duration::from_millis(200));
        }),
        ..Options::default()
    })
    .await;
    let request = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "Aveți loc mâine?"}],
        "elevenlabs_extra_body": {"conversation_id": "conv_buffer_1"}});
    let mut events = llm_events(&url(&bridge), &request).await;
    let all = chunks(&rest(&mut events).await);
    // The buffer words come first, with the ellipsis and space ElevenLabs
    // asks for, then the turn's own words.
    assert_eq!(said(&all), ["Un moment... ", "Avem loc la 10."]);
    assert_eq!(
        all.last().unwrap()["choices"][0]["finish_reason"],
        json!("stop")
    );
    assert!(
        bridge
            .metrics_text()
            .contains("voice_operator_custom_llm_buffer_words_total 1")
    );
}

#[tokio::test]
async fn a_transfer_decision_comes_back_as_a_tool_calls_chunk_and_is_logged() {
    let bridge = clinic(Options::default()).await;
    let request = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "Can I talk to a person, please?"}],
        "tools": system_tools(&["+40312000111"]),
        "elevenlabs_extra_body": {"conversation_id": "conv_transfer_1"}});
    let mut events = llm_events(&url(&bridge), &request).await;
    let all = chunks(&rest(&mut events).await);
    // A quick turn gets no buffer words.
    assert_eq!(
        said(&all).concat(),
        "[scripted agent] Transferring you now."
    );
    let calls: Vec<&Value> = all
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("tool_calls").is_some())
        .collect();
    assert_eq!(calls.len(), 1, "{all:?}");
    let call = &calls[0]["choices"][0]["delta"]["tool_calls"];
    assert_eq!(call.as_array().unwrap().len(), 1);
    assert_eq!(call[0]["index"], json!(0));
    assert!(call[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call[0]["type"], json!("function"));
    assert_eq!(call[0]["function"]["name"], json!(TRANSFER_TO_NUMBER));
    let arguments: Value =
        serde_json::from_str(call[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["transfer_number"], json!("+40312000111"));
    assert_eq!(arguments["reason"], json!("the caller asked for a person"));
    assert!(arguments["client_message"].as_str().unwrap().len() > 10);
    assert!(
        arguments["agent_message"]
            .as_str()
            .unwrap()
            .contains("talk to a person")
    );
    let last = all.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], json!("tool_calls"));
    assert_eq!(last["choices"][0]["delta"], json!({}));

    let records = bridge.records().await;
    assert_schema_valid(&records);
    let handoffs = handoff_records(&records);
    assert_eq!(handoffs.len(), 1, "{records:?}");
    let data = &handoffs[0]["data"];
    assert_eq!(data["actionType"], json!("voice_call"));
    assert_eq!(data["subAction"], json!("send"));
    assert_eq!(data["agentSessionId"], json!("conv_transfer_1"));
    assert_eq!(data["recipient"]["phone"], json!("+40312000111"));
    assert_eq!(data["externalId"], call[0]["id"]);
    assert_eq!(data["metadata"]["handoff"], json!(TRANSFER_TO_NUMBER));
    assert_eq!(data["metadata"]["transferNumber"], json!("+40312000111"));
}

#[tokio::test]
async fn end_call_comes_back_in_a_completion_and_a_bad_transfer_number_is_a_sentence() {
    let bridge = clinic(Options::default()).await;
    let goodbye = json!({"model": "m", "stream": false,
        "messages": [{"role": "user", "content": "Thanks, goodbye!"}],
        "tools": system_tools(&["+40312000111"]),
        "elevenlabs_extra_body": {"conversation_id": "conv_end_1"}});
    let (status, completion) =
        json_of(bearer_post(&url(&bridge), LLM_SECRET, &goodbye).await).await;
    assert_eq!(status, 200, "{completion}");
    assert_eq!(completion["object"], json!("chat.completion"));
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], json!("tool_calls"));
    assert_eq!(
        choice["message"]["content"],
        json!("[scripted agent] Goodbye.")
    );
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], json!("function"));
    assert_eq!(call["function"]["name"], json!(END_CALL));
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["reason"], json!("the caller said goodbye"));

    // The rule names a number no phone network takes: the caller is told,
    // and nothing is handed to ElevenLabs.
    let bad = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "I want an operator"}],
        "tools": system_tools(&["0721 000 111"]),
        "elevenlabs_extra_body": {"conversation_id": "conv_bad_transfer_1"}});
    let mut events = llm_events(&url(&bridge), &bad).await;
    let all = chunks(&rest(&mut events).await);
    assert!(
        all.iter()
            .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none())
    );
    let text = said(&all).concat();
    assert!(
        text.ends_with(" I am sorry, I cannot transfer you right now. How else can I help?"),
        "{text}"
    );
    assert_eq!(
        all.last().unwrap()["choices"][0]["finish_reason"],
        json!("stop")
    );

    let records = bridge.records().await;
    assert_schema_valid(&records);
    let handoffs = handoff_records(&records);
    assert_eq!(handoffs.len(), 2, "{records:?}");
    let ended = handoffs
        .iter()
        .find(|r| r["data"]["metadata"]["handoff"] == json!(END_CALL))
        .unwrap();
    assert_eq!(ended["data"]["subAction"], json!("send"));
    let refused = handoffs
        .iter()
        .find(|r| r["data"]["metadata"]["handoff"] == json!(TRANSFER_TO_NUMBER))
        .unwrap();
    assert_eq!(refused["data"]["subAction"], json!("failed"));
    assert_eq!(
        refused["data"]["metadata"]["deliveryStatus"],
        json!("failed")
    );
    let error = refused["data"]["metadata"]["errorMessage"]
        .as_str()
        .unwrap();
    assert!(error.contains("transfer_number"), "{error}");
    assert_eq!(
        refused["data"]["metadata"]["transferNumber"],
        json!("0721 000 111")
    );
}

#[tokio::test]
async fn a_turn_whose_caller_hung_up_still_runs_its_tool_once_and_logs_it() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"sid": "SM0c1e5a", "status": "queued"}))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&twilio)
        .await;
    let messaging = Messaging::default().with(Arc::new(
        TwilioProvider::new(&twilio_config(&twilio.uri())).unwrap(),
    ));
    let slow = Arc::new(
        Slow::new(Duration::from_millis(300), "V-am trimis confirmarea.").calling(
            "send_external_message",
            &[
                ("channel", "sms"),
                ("to", "+40721000111"),
                ("message", "Programare confirmată mâine la 10."),
            ],
        ),
    );
    let bridge = clinic(Options {
        runtime: slow.clone(),
        messaging,
        ..Options::default()
    })
    .await;
    let request = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "Trimiteți-mi confirmarea pe SMS"}],
        "elevenlabs_extra_body": {"conversation_id": "conv_gone_1"}});
    let mut events = llm_events(&url(&bridge), &request).await;
    let role = next_within(&mut events, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(role.contains("\"role\":\"assistant\""), "{role}");
    // The caller hangs up before the agent has done anything.
    drop(events);

    let deadline = Instant::now() + Duration::from_secs(10);
    let sms = loop {
        let records = bridge.records().await;
        if let Some(sms) = records
            .iter()
            .find(|r| r["data"]["actionType"] == json!("sms"))
        {
            break sms.clone();
        }
        assert!(Instant::now() < deadline, "no SMS record: {records:?}");
    };
    assert_eq!(sms["data"]["subAction"], json!("send"));
    assert_eq!(sms["data"]["externalId"], json!("SM0c1e5a"));
    assert_eq!(sms["data"]["agentSessionId"], json!("conv_gone_1"));
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
    assert_eq!(slow.turns().len(), 1);
}
