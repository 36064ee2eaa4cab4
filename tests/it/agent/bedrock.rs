//! The Bedrock agent runtime with the real SDK client against the local
//! Bedrock stand-in (`testkit::fake_bedrock`), which keeps AWS's documented
//! contract: FAILURE results fail the request, results must answer the
//! pending `returnControl`, the final answer streams only when asked.

use crate::support::bridge::{Options, TestBridge, capture_log, llm_events, signed_post};
use crate::support::fake_bedrock::{
    FakeBedrock, Frame, Reply, api_call, chunks_of, function_calls,
};
use crate::support::runtime::{Tools, ask, ask_streamed, ask_with_tools, drain, turn};

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_bedrockagentruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockagentruntime::types::{
    ContentBody, FunctionResult, InvocationResultMember, ResponseState, ResponseStream,
    SessionState,
};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use voice_operator::agent::bedrock::{BedrockConfig, BedrockRuntime};
use voice_operator::agent::metrics::AgentMetrics;
use voice_operator::agent::tools::{Tools as AppTools, ToolsConfig};
use voice_operator::agent::{AgentRuntime, FALLBACK};
use voice_operator::messaging::Messaging;
use voice_operator::testkit::sse::{Received, read_all};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The runtime against `fake` with `max_rounds`, streaming as by default.
fn runtime(fake: &FakeBedrock, max_rounds: u32) -> BedrockRuntime {
    configured(fake, |c| c.max_rounds = max_rounds)
}

fn configured(fake: &FakeBedrock, change: impl FnOnce(&mut BedrockConfig)) -> BedrockRuntime {
    let mut config = BedrockConfig::new("AGENT12345", "TSTALIASID");
    config.max_rounds = 3;
    config.deadline = Duration::from_secs(5);
    change(&mut config);
    BedrockRuntime::new(fake.client(), config)
}

fn return_control(id: &str, calls: &[(&str, &[(&str, &str)])]) -> Reply {
    Reply::ReturnControl(function_calls(id, calls))
}

/// The `/metrics` text of `metrics`.
fn metrics_text(metrics: &AgentMetrics) -> String {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    voice_operator::controller::metrics::encode(&registry)
}

/// The results the second request carried back.
fn results_of(fake: &FakeBedrock, request: usize) -> Vec<Value> {
    fake.seen()[request].body["sessionState"]["returnControlInvocationResults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

const ANSWER: &str =
    "Bună ziua! Avem loc mâine la 10, la 11 și după-amiază la 15. Vă rezerv una dintre ele?";

#[tokio::test]
async fn a_plain_answer_asks_for_streaming_and_streams_its_chunks_as_they_come() {
    let fake = FakeBedrock::start(vec![Reply::Answer(ANSWER.into())]).await;
    let (answer, streamed) = ask_streamed(&runtime(&fake, 3), "Aveți loc mâine?").await;
    assert_eq!(answer.text, ANSWER);
    assert!(!answer.fallback);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path,
        "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/conv_1/text"
    );
    let request = &seen[0].body;
    assert_eq!(request["inputText"], "Aveți loc mâine?");
    assert_eq!(
        request["streamingConfigurations"],
        json!({"streamFinalResponse": true, "applyGuardrailInterval": 50})
    );
    assert_eq!(request["enableTrace"], json!(false));
    assert_eq!(
        request["sessionState"]["sessionAttributes"],
        json!({"businessId": "B0100001", "locationId": "L0100001", "source": "voice"})
    );
    let chunks = chunks_of(ANSWER, request);
    assert_eq!(
        chunks.len(),
        2,
        "the stand-in streamed in 50-character chunks"
    );
    assert_eq!(streamed, chunks, "each chunk went on as it came");
}

#[tokio::test]
async fn without_streaming_the_stand_in_answers_in_one_piece() {
    let fake = FakeBedrock::start(vec![Reply::Answer(ANSWER.into())]).await;
    let (answer, streamed) =
        ask_streamed(&configured(&fake, |c| c.stream = false), "Aveți loc mâine?").await;
    assert_eq!(answer.text, ANSWER);
    assert_eq!(streamed, [ANSWER]);
    assert!(fake.seen()[0].body.get("streamingConfigurations").is_none());
}

#[tokio::test]
async fn a_return_control_round_trip_runs_the_tool_and_sends_its_result() {
    let fake = FakeBedrock::start(vec![
        return_control(
            "inv-1",
            &[(
                "query_app_server",
                &[("resource", "availability"), ("date", "2026-11-25")],
            )],
        ),
        Reply::Answer("Mâine la 10 este liber.".into()),
    ])
    .await;
    let (answer, tools) = ask_with_tools(&runtime(&fake, 3), "Ce ore libere aveți?").await;
    assert_eq!(answer.text, "Mâine la 10 este liber.");
    let calls = tools.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "query_app_server");
    assert_eq!(
        calls[0].parameters,
        BTreeMap::from([
            ("date".into(), "2026-11-25".into()),
            ("resource".into(), "availability".into())
        ])
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let second = &seen[1].body;
    assert!(second.get("inputText").is_none(), "{second}");
    assert_eq!(second["sessionState"]["invocationId"], "inv-1");
    let result = &results_of(&fake, 1)[0]["functionResult"];
    assert_eq!(result["actionGroup"], "voice-tools");
    assert_eq!(result["function"], "query_app_server");
    assert!(result.get("responseState").is_none(), "{result}");
    assert_eq!(
        result["responseBody"]["TEXT"]["body"],
        "{\"result\":\"query_app_server ok\"}"
    );
    assert_eq!(
        second["sessionState"]["sessionAttributes"]["businessId"],
        "B0100001"
    );
}

/// The app server: every booking is refused with 409 "slot taken".
async fn app_server_refusing_bookings() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/appointments"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"message": "slot taken"})))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_booking_the_app_server_refuses_goes_back_as_reprompt_and_the_caller_hears_the_model() {
    let server = app_server_refusing_bookings().await;
    let (log, _shipper, _sink) = capture_log();
    let config = ToolsConfig {
        app_server_url: Some(server.uri()),
        ..ToolsConfig::default()
    };
    let tools = AppTools::new(config, Messaging::default(), log);
    let fake = FakeBedrock::start(vec![
        return_control(
            "inv-409",
            &[(
                "create_appointment",
                &[
                    ("date", "2026-11-25"),
                    ("time", "10:00"),
                    ("customerName", "Ana Pop"),
                ],
            )],
        ),
        Reply::Reads("Îmi pare rău, ora 10 nu mai e liberă: "),
    ])
    .await;
    let (tx, rx) = mpsc::channel(64);
    let runtime = runtime(&fake, 3);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        runtime.answer(&turn("conv_1", "Vreau mâine la 10"), &tools, Some(tx)),
    )
    .await
    .unwrap();
    let heard = drain(rx).await.concat();

    assert!(!answer.fallback, "{answer:?}");
    assert!(
        answer
            .text
            .starts_with("Îmi pare rău, ora 10 nu mai e liberă: ")
    );
    assert!(answer.text.contains("slot taken"), "{}", answer.text);
    assert_eq!(heard, answer.text, "the caller hears the model's answer");
    let result = &results_of(&fake, 1)[0]["functionResult"];
    assert_eq!(result["responseState"], "REPROMPT");
    let body = result["responseBody"]["TEXT"]["body"].as_str().unwrap();
    assert!(
        body.contains("409") && body.contains("slot taken"),
        "{body}"
    );
    assert_eq!(answer.tools.len(), 1, "the booking was tried once");
}

#[tokio::test]
async fn the_stand_in_fails_a_failure_result_with_dependency_failed_and_lets_reprompt_through() {
    let fake = FakeBedrock::start(vec![
        return_control("inv-a", &[("create_appointment", &[])]),
        return_control("inv-b", &[("create_appointment", &[])]),
        Reply::Reads("Modelul a citit: "),
    ])
    .await;
    let client = fake.client();
    let result = |state: ResponseState| {
        InvocationResultMember::FunctionResult(
            FunctionResult::builder()
                .action_group("voice-tools")
                .function("create_appointment")
                .response_body("TEXT", ContentBody::builder().body("slot taken").build())
                .response_state(state)
                .build()
                .unwrap(),
        )
    };
    let invoke = |session: &'static str| {
        client
            .invoke_agent()
            .agent_id("AGENT12345")
            .agent_alias_id("TSTALIASID")
            .session_id(session)
    };
    let send_results = |session: &'static str, id: &str, state: ResponseState| {
        invoke(session).session_state(
            SessionState::builder()
                .invocation_id(id)
                .return_control_invocation_results(result(state))
                .build(),
        )
    };
    for session in ["sess-a", "sess-b"] {
        let mut events = invoke(session)
            .input_text("Vreau o programare")
            .send()
            .await
            .unwrap()
            .completion;
        assert!(matches!(
            events.recv().await.unwrap(),
            Some(ResponseStream::ReturnControl(_))
        ));
    }

    // A result for another invocation is refused.
    let wrong = send_results("sess-a", "inv-other", ResponseState::Failure)
        .send()
        .await;
    let err = wrong.expect_err("a result must answer the pending invocation");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_validation_exception()),
        "{err:?}"
    );

    // FAILURE: the request fails with a dependency failure.
    let mut failed = send_results("sess-a", "inv-a", ResponseState::Failure)
        .send()
        .await
        .unwrap()
        .completion;
    let err = failed.recv().await.expect_err("FAILURE fails the request");
    assert!(
        matches!(
            err.as_service_error(),
            Some(ResponseStreamError::DependencyFailedException(_))
        ),
        "{err:?}"
    );

    // REPROMPT: the model reads the result and answers.
    let mut answered = send_results("sess-b", "inv-b", ResponseState::Reprompt)
        .send()
        .await
        .unwrap()
        .completion;
    let mut text = String::new();
    while let Some(event) = answered.recv().await.unwrap() {
        if let ResponseStream::Chunk(part) = event {
            text.push_str(std::str::from_utf8(part.bytes().unwrap().as_ref()).unwrap());
        }
    }
    assert_eq!(text, "Modelul a citit: slot taken");
}

#[tokio::test]
async fn a_streamed_answer_reaches_the_sse_client_chunk_by_chunk_before_the_last_is_produced() {
    let fake = FakeBedrock::start(vec![Reply::Answer(ANSWER.into())]).await;
    let release = fake.hold_last_chunk();
    let runtime = configured(&fake, |c| c.guardrail_interval = 20);
    let bridge = TestBridge::start(Options {
        runtime: Arc::new(runtime),
        tools: Some(Arc::new(Tools::default())),
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
        "messages": [{"role": "user", "content": "Aveți loc mâine?"}],
        "elevenlabs_extra_body": {"conversation_id": "conv_stream_1"}
    });
    let mut events = llm_events(&url, &request).await;
    let expected = chunks_of(
        ANSWER,
        &json!({"streamingConfigurations": {"streamFinalResponse": true, "applyGuardrailInterval": 20}}),
    );
    assert!(expected.len() >= 4, "{expected:?}");
    let mut first_seen = None;
    let mut release = Some(release);
    let events = read_all(&mut events, Duration::from_secs(10), |event| {
        if first_seen.is_none() && event.content().as_deref() == Some(expected[0].as_str()) {
            first_seen = Some(event.at);
            // The stand-in produces its last chunk only now.
            let _ = release.take().map(|r| r.send(()));
        }
    })
    .await;
    let deltas: Vec<String> = events.iter().filter_map(Received::content).collect();
    // Words the route adds of its own (if any) come before the answer.
    assert!(deltas.len() >= expected.len(), "{deltas:?}");
    assert_eq!(deltas[deltas.len() - expected.len()..], expected[..]);
    let produced = fake.chunk_times();
    assert_eq!(produced.len(), expected.len());
    let first_seen = first_seen.expect("the first chunk reached the client");
    assert!(
        first_seen < *produced.last().unwrap(),
        "the first chunk reached the SSE client before the stand-in produced the last one"
    );
}

#[tokio::test]
async fn an_api_invocation_gets_an_api_result() {
    let fake = FakeBedrock::start(vec![
        Reply::ReturnControl(json!({"invocationId": "inv-api", "invocationInputs": [
            api_call(
                "POST",
                "/create_appointment",
                &[("date", "2026-11-25")],
                &[("time", "10:00"), ("customerName", "Ana Pop")],
            )
        ]})),
        Reply::Reads("Am rezervat: "),
    ])
    .await;
    let (answer, tools) = ask_with_tools(&runtime(&fake, 3), "Vreau mâine la 10").await;
    assert!(!answer.fallback, "{answer:?}");
    assert_eq!(
        answer.text,
        "Am rezervat: {\"result\":\"create_appointment ok\"}"
    );
    let calls = tools.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "create_appointment");
    assert_eq!(calls[0].action_group, "voice-api");
    assert_eq!(
        calls[0].parameters,
        BTreeMap::from([
            ("customerName".into(), "Ana Pop".into()),
            ("date".into(), "2026-11-25".into()),
            ("time".into(), "10:00".into()),
        ])
    );
    assert_eq!(
        fake.seen()[1].body["sessionState"]["invocationId"],
        "inv-api"
    );
    let results = results_of(&fake, 1);
    assert_eq!(
        results,
        [json!({"apiResult": {
            "actionGroup": "voice-api",
            "apiPath": "/create_appointment",
            "httpMethod": "POST",
            "httpStatusCode": 200,
            "responseBody": {"application/json": {"body": "{\"result\":\"create_appointment ok\"}"}}
        }})]
    );
}

#[tokio::test]
async fn two_invocation_inputs_run_concurrently_and_their_results_go_back_together() {
    let fake = FakeBedrock::start(vec![
        Reply::ReturnControl(json!({"invocationId": "inv-2", "invocationInputs": [
            function_calls("_", &[("create_appointment", &[("date", "2026-11-25")])])["invocationInputs"][0],
            api_call("POST", "/send_external_message", &[], &[("channel", "sms"), ("to", "+40712345678")]),
        ]})),
        Reply::Answer("Gata, v-am trimis confirmarea.".into()),
    ])
    .await;
    let tools = Tools::slow(Duration::from_millis(300));
    let answer = ask(
        &runtime(&fake, 3),
        &turn("conv_1", "Vreau o programare"),
        &tools,
        None,
    )
    .await;
    assert_eq!(answer.text, "Gata, v-am trimis confirmarea.");
    let names: Vec<&str> = answer.tools.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(names, ["create_appointment", "send_external_message"]);
    let runs = tools.runs();
    assert_eq!(runs.len(), 2);
    assert!(
        runs[1].started < runs[0].ended && runs[0].started < runs[1].ended,
        "the two tools ran at the same time: {runs:?}"
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "both results went back in one request");
    assert_eq!(seen[1].body["sessionState"]["invocationId"], "inv-2");
    let results = results_of(&fake, 1);
    assert_eq!(
        results[0]["functionResult"]["function"],
        "create_appointment"
    );
    assert_eq!(results[1]["apiResult"]["apiPath"], "/send_external_message");
}

#[tokio::test]
async fn bad_calls_from_the_model_get_sentences_it_can_answer_and_nothing_runs_twice() {
    let fake = FakeBedrock::start(vec![
        Reply::ReturnControl(json!({"invocationId": "inv-bad", "invocationInputs": [
            function_calls("_", &[("delete_everything", &[])])["invocationInputs"][0],
            api_call("GET", "/refunds/{id}", &[("id", "7")], &[]),
            api_call("GET", "/query_app_server", &[("date", "2026-11-25")], &[("date", "2026-11-26")]),
            function_calls("_", &[("query_app_server", &[("date", "2026-11-25")])])["invocationInputs"][0],
        ]})),
        Reply::Reads("Am înțeles: "),
    ])
    .await;
    let (tx, rx) = mpsc::channel(64);
    let tools = Tools::default();
    let answer = ask(&runtime(&fake, 3), &turn("conv_1", "?"), &tools, Some(tx)).await;
    let heard = drain(rx).await.concat();
    assert!(!answer.fallback, "{answer:?}");
    assert_eq!(heard, answer.text);
    assert_eq!(
        tools.calls().len(),
        1,
        "only the well-formed call ran, once"
    );
    let results = results_of(&fake, 1);
    assert_eq!(results.len(), 4, "every input got its result: {results:?}");
    let unknown = &results[0]["functionResult"];
    assert_eq!(unknown["responseState"], "REPROMPT");
    assert!(
        unknown["responseBody"]["TEXT"]["body"]
            .as_str()
            .unwrap()
            .contains("there is no function named \"delete_everything\"")
    );
    let not_served = &results[1]["apiResult"];
    assert_eq!(not_served["httpStatusCode"], 404);
    assert_eq!(not_served["responseState"], "REPROMPT");
    let body = not_served["responseBody"]["application/json"]["body"]
        .as_str()
        .unwrap();
    let error: Value = serde_json::from_str(body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("/refunds/{id}"),
        "{body}"
    );
    let twice = &results[2]["apiResult"];
    assert_eq!(twice["httpStatusCode"], 400);
    assert!(
        twice["responseBody"]["application/json"]["body"]
            .as_str()
            .unwrap()
            .contains("parameter date is given twice")
    );
    assert!(results[3]["functionResult"].get("responseState").is_none());
    assert!(answer.text.contains("delete_everything") && answer.text.contains("/refunds/{id}"));
}

#[tokio::test]
async fn bedrock_exceptions_are_counted_by_class_and_end_in_the_fallback() {
    let fake = FakeBedrock::start(vec![
        Reply::Error(429, "ThrottlingException"),
        Reply::Frames(vec![
            Frame::Chunk("Un moment, ".into()),
            Frame::Exception("modelNotReadyException", "model is warming up"),
        ]),
    ])
    .await;
    let metrics = AgentMetrics::default();
    let runtime = runtime(&fake, 3).with_metrics(metrics.clone());
    let (answer, streamed) = ask_streamed(&runtime, "Alo?").await;
    assert!(answer.fallback);
    assert_eq!(answer.text, FALLBACK);
    assert_eq!(streamed, [FALLBACK]);
    let (answer, streamed) = ask_streamed(&runtime, "Alo?").await;
    assert!(answer.fallback);
    assert_eq!(streamed, ["Un moment, ".to_owned(), format!(" {FALLBACK}")]);
    let text = metrics_text(&metrics);
    for class in ["throttlingException", "modelNotReadyException"] {
        assert!(
            text.contains(&format!(
                "voice_operator_bedrock_exceptions_total{{exception=\"{class}\"}} 1"
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_breaks_in_the_middle_ends_with_the_fallback_once() {
    let fake = FakeBedrock::start(vec![Reply::Frames(vec![
        Frame::Chunk("Un moment, ".into()),
        Frame::Cut,
    ])])
    .await;
    let (answer, streamed) = ask_streamed(&runtime(&fake, 3), "Alo?").await;
    assert!(answer.fallback);
    assert_eq!(streamed, ["Un moment, ".to_owned(), format!(" {FALLBACK}")]);
    assert_eq!(fake.seen().len(), 1, "nothing was sent twice");
}

#[tokio::test]
async fn an_agent_that_keeps_calling_tools_is_stopped_after_the_round_limit() {
    let again = |id: &str| return_control(id, &[("query_app_server", &[])]);
    let fake = FakeBedrock::start(vec![again("i1"), again("i2"), again("i3"), again("i4")]).await;
    let answer = runtime(&fake, 3)
        .answer(&turn("conv_1", "?"), &Tools::default(), None)
        .await;
    assert!(answer.fallback);
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(answer.tools.len(), 3);
}

#[tokio::test]
async fn a_tenant_with_its_own_agent_is_answered_by_it() {
    let fake = FakeBedrock::start(vec![Reply::Answer("Da.".into())]).await;
    let mut own = turn("conv_1", "Aveți loc?");
    own.bedrock = Some(voice_operator::tenant::BedrockAgentRef {
        agent_id: "TENANTAGNT".into(),
        alias_id: "LIVEALIAS1".into(),
    });
    let answer = runtime(&fake, 3)
        .answer(&own, &Tools::default(), None)
        .await;
    assert_eq!(answer.text, "Da.");
    assert_eq!(
        fake.seen()[0].path,
        "/agents/TENANTAGNT/agentAliases/LIVEALIAS1/sessions/conv_1/text"
    );
}

#[tokio::test]
async fn the_post_call_transcription_ends_the_bedrock_session() {
    let fake = FakeBedrock::start(vec![]).await;
    let bridge = TestBridge::start(Options {
        runtime: Arc::new(runtime(&fake, 3)),
        tools: Some(Arc::new(Tools::default())),
        ..Options::default()
    })
    .await;
    // The fixture's agent and tenant.
    bridge
        .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
        .await;
    let body = std::fs::read(crate::support::fixture(
        "elevenlabs/post_call_transcription.json",
    ))
    .unwrap();
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    assert_eq!(signed_post(&url, &body).await.status().as_u16(), 200);
    crate::support::wait_for(Duration::from_secs(5), "the endSession request", || {
        !fake.seen().is_empty()
    })
    .await;
    // A second delivery is acknowledged and not acted on again.
    assert_eq!(signed_post(&url, &body).await.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].path,
        "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/conv_0101k9xyz123/text"
    );
    assert_eq!(seen[0].body["endSession"], json!(true));
}

/// Log lines written while the guard is held, on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn with_the_trace_flag_failure_reasons_are_logged_at_warn() {
    let failure = json!({"failureTrace": {
        "traceId": "trace-1",
        "failureReason": "Knowledge base unavailable",
        "failureCode": 424
    }});
    let script = || {
        vec![Reply::Frames(vec![
            Frame::Trace(failure.clone()),
            Frame::Chunk("Nu știu.".into()),
        ])]
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let plain = FakeBedrock::start(script()).await;
    let (answer, _) = ask_streamed(&runtime(&plain, 3), "?").await;
    assert_eq!(answer.text, "Nu știu.");
    assert_eq!(plain.seen()[0].body["enableTrace"], json!(false));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.contains("Knowledge base unavailable"), "{logs}");

    let traced = FakeBedrock::start(script()).await;
    let (answer, _) = ask_streamed(&configured(&traced, |c| c.trace = true), "?").await;
    assert_eq!(answer.text, "Nu știu.");
    assert_eq!(traced.seen()[0].body["enableTrace"], json!(true));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("Knowledge base unavailable"))
        .unwrap_or_else(|| panic!("no trace line in {logs}"));
    assert!(line.contains("WARN"), "{line}");
}

#[tokio::test]
async fn the_turns_instructions_go_as_a_prompt_session_attribute_of_every_round() {
    let fake = FakeBedrock::start(vec![
        return_control("inv-3", &[("query_app_server", &[])]),
        Reply::Answer("Da.".into()),
    ])
    .await;
    let mut instructed = turn("conv_1", "Aveți loc mâine?");
    instructed.system = Some("You answer for Clinica Dentară.\n\nToday is 2026-11-30.".into());
    instructed.history = vec![voice_operator::agent::Message {
        role: voice_operator::agent::Role::Assistant,
        text: "Bună ziua!".into(),
    }];
    let answer = runtime(&fake, 3)
        .answer(&instructed, &Tools::default(), None)
        .await;
    assert_eq!(answer.text, "Da.");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    for body in seen.iter().map(|s| &s.body) {
        assert_eq!(
            body["sessionState"]["promptSessionAttributes"],
            json!({voice_operator::agent::bedrock::INSTRUCTIONS_ATTRIBUTE:
                "You answer for Clinica Dentară.\n\nToday is 2026-11-30."})
        );
        // Bedrock keeps the session's history itself: none is resent.
        assert!(body["sessionState"].get("conversationHistory").is_none());
    }
}
