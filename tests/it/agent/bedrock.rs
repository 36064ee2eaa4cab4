//! The Bedrock agent runtime with the real SDK client against a local
//! Bedrock Agent Runtime server that answers `InvokeAgent` with AWS
//! event-stream frames (written by aws-smithy-eventstream).

use crate::support::runtime::{
    SharedScript, Tools, ask_streamed, ask_with_tools, serve_script, turn,
};

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_bedrockagentruntime::config::retry::RetryConfig;
use aws_sdk_bedrockagentruntime::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use voice_operator::agent::bedrock::{BedrockConfig, BedrockRuntime};
use voice_operator::agent::{AgentRuntime, FALLBACK};

/// One frame of an event stream.
#[derive(Clone)]
enum Frame {
    Chunk(&'static str),
    ReturnControl(Value),
    Exception(&'static str, &'static str),
}

/// What the server answers to one request.
#[derive(Clone)]
enum Reply {
    Stream(Vec<Frame>),
    Error(u16, &'static str),
}

/// The script, each request seen as (path, JSON body).
type Shared = SharedScript<Reply, (String, Value)>;

fn header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

fn encode(frame: &Frame) -> Vec<u8> {
    let message = match frame {
        Frame::Chunk(text) => {
            let payload = json!({"bytes": base64::engine::general_purpose::STANDARD.encode(text)});
            Message::new(serde_json::to_vec(&payload).unwrap())
                .add_header(header(":message-type", "event"))
                .add_header(header(":event-type", "chunk"))
                .add_header(header(":content-type", "application/json"))
        }
        Frame::ReturnControl(payload) => Message::new(serde_json::to_vec(payload).unwrap())
            .add_header(header(":message-type", "event"))
            .add_header(header(":event-type", "returnControl"))
            .add_header(header(":content-type", "application/json")),
        Frame::Exception(kind, text) => {
            Message::new(serde_json::to_vec(&json!({"message": text})).unwrap())
                .add_header(header(":message-type", "exception"))
                .add_header(header(":exception-type", kind))
                .add_header(header(":content-type", "application/json"))
        }
    };
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    out
}

async fn invoke(State(server): State<Shared>, uri: Uri, body: Bytes) -> Response {
    let seen = (
        uri.path().to_owned(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    );
    let reply = server
        .lock()
        .unwrap()
        .reply(seen, Reply::Error(500, "InternalServerException"));
    match reply {
        Reply::Error(status, kind) => (
            StatusCode::from_u16(status).unwrap(),
            [
                ("x-amzn-errortype", kind),
                ("content-type", "application/json"),
            ],
            json!({"message": "slow down"}).to_string(),
        )
            .into_response(),
        Reply::Stream(frames) => {
            let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
            (
                StatusCode::OK,
                [
                    ("content-type", "application/vnd.amazon.eventstream"),
                    ("x-amzn-bedrock-agent-content-type", "application/json"),
                    ("x-amz-bedrock-agent-session-id", "conv_1"),
                ],
                bytes,
            )
                .into_response()
        }
    }
}

async fn start(replies: Vec<Reply>) -> (String, Shared) {
    serve_script(replies, invoke).await
}

fn runtime(url: &str, max_rounds: u32) -> BedrockRuntime {
    let config = aws_sdk_bedrockagentruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .retry_config(RetryConfig::disabled())
        .build();
    BedrockRuntime::new(
        aws_sdk_bedrockagentruntime::Client::from_conf(config),
        BedrockConfig {
            agent_id: "AGENT12345".into(),
            alias_id: "TSTALIASID".into(),
            max_rounds,
            deadline: Duration::from_secs(5),
        },
    )
}

/// A reply that hands control back to ask for `calls` (function and
/// parameters) under invocation `id`.
fn return_control(id: &str, calls: &[(&str, &[(&str, &str)])]) -> Reply {
    Reply::Stream(vec![Frame::ReturnControl(function_call(id, calls))])
}

fn function_call(id: &str, calls: &[(&str, &[(&str, &str)])]) -> Value {
    let inputs: Vec<Value> = calls
        .iter()
        .map(|(function, params)| {
            let params: Vec<Value> = params
                .iter()
                .map(|(n, v)| json!({"name": n, "type": "string", "value": v}))
                .collect();
            json!({"functionInvocationInput": {
                "actionGroup": "voice-tools", "function": function, "parameters": params,
                "actionInvocationType": "RESULT"
            }})
        })
        .collect();
    json!({"invocationId": id, "invocationInputs": inputs})
}

#[tokio::test]
async fn a_plain_answer_streams_its_chunks_and_sends_the_session() {
    let (url, server) = start(vec![Reply::Stream(vec![
        Frame::Chunk("Bună ziua! "),
        Frame::Chunk("Avem loc mâine la 10."),
    ])])
    .await;
    let (answer, streamed) = ask_streamed(&runtime(&url, 3), "Aveți loc mâine?").await;
    assert_eq!(answer.text, "Bună ziua! Avem loc mâine la 10.");
    assert!(!answer.fallback);
    assert_eq!(streamed, ["Bună ziua! ", "Avem loc mâine la 10."]);
    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0,
        "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/conv_1/text"
    );
    assert_eq!(seen[0].1["inputText"], "Aveți loc mâine?");
    assert_eq!(
        seen[0].1["sessionState"]["sessionAttributes"],
        json!({"businessId": "B0100001", "locationId": "L0100001", "source": "voice"})
    );
}

#[tokio::test]
async fn a_return_control_round_trip_runs_the_tool_and_sends_its_result() {
    let (url, server) = start(vec![
        return_control(
            "inv-1",
            &[(
                "query_app_server",
                &[("path", "/availability"), ("date", "2026-11-25")],
            )],
        ),
        Reply::Stream(vec![Frame::Chunk("Mâine la 10 este liber.")]),
    ])
    .await;
    let (answer, tools) = ask_with_tools(&runtime(&url, 3), "Ce ore libere aveți?").await;
    assert_eq!(answer.text, "Mâine la 10 este liber.");
    let calls = tools.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "query_app_server");
    assert_eq!(
        calls[0].parameters,
        BTreeMap::from([
            ("date".into(), "2026-11-25".into()),
            ("path".into(), "/availability".into())
        ])
    );
    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen.len(), 2);
    let second = &seen[1].1;
    assert!(second.get("inputText").is_none(), "{second}");
    assert_eq!(second["sessionState"]["invocationId"], "inv-1");
    let result = &second["sessionState"]["returnControlInvocationResults"][0]["functionResult"];
    assert_eq!(result["actionGroup"], "voice-tools");
    assert_eq!(result["function"], "query_app_server");
    assert_eq!(
        result["responseBody"]["TEXT"]["body"],
        "{\"result\":\"query_app_server ok\"}"
    );
    assert_eq!(
        second["sessionState"]["sessionAttributes"]["businessId"],
        "B0100001"
    );
}

#[tokio::test]
async fn two_tools_in_one_turn_are_both_answered_in_order() {
    let (url, server) = start(vec![
        return_control(
            "inv-2",
            &[
                ("create_appointment", &[("slot", "2026-11-25T10:00")]),
                (
                    "send_external_message",
                    &[("channel", "sms"), ("to", "+40712345678")],
                ),
            ],
        ),
        Reply::Stream(vec![Frame::Chunk("Gata, v-am trimis confirmarea.")]),
    ])
    .await;
    let (answer, _tools) = ask_with_tools(&runtime(&url, 3), "Vreau o programare").await;
    assert_eq!(answer.text, "Gata, v-am trimis confirmarea.");
    let names: Vec<String> = answer.tools.iter().map(|c| c.function.clone()).collect();
    assert_eq!(names, ["create_appointment", "send_external_message"]);
    let seen = &server.lock().unwrap().seen;
    let results = seen[1].1["sessionState"]["returnControlInvocationResults"]
        .as_array()
        .unwrap()
        .clone();
    let functions: Vec<&str> = results
        .iter()
        .map(|r| r["functionResult"]["function"].as_str().unwrap())
        .collect();
    assert_eq!(functions, ["create_appointment", "send_external_message"]);
}

#[tokio::test]
async fn throttling_becomes_the_spoken_fallback() {
    let (url, _server) = start(vec![Reply::Error(429, "ThrottlingException")]).await;
    let (answer, streamed) = ask_streamed(&runtime(&url, 3), "Alo?").await;
    assert!(answer.fallback);
    assert_eq!(answer.text, FALLBACK);
    assert_eq!(streamed, [FALLBACK]);
}

#[tokio::test]
async fn an_error_in_the_middle_of_the_stream_ends_with_the_fallback() {
    let (url, _server) = start(vec![Reply::Stream(vec![
        Frame::Chunk("Un moment, "),
        Frame::Exception("internalServerException", "model failure"),
    ])])
    .await;
    let (answer, streamed) = ask_streamed(&runtime(&url, 3), "Alo?").await;
    assert!(answer.fallback);
    assert_eq!(streamed, ["Un moment, ".to_owned(), format!(" {FALLBACK}")]);
}

#[tokio::test]
async fn an_agent_that_keeps_calling_tools_is_stopped_after_the_round_limit() {
    let again = return_control("inv-loop", &[("query_app_server", &[])]);
    let (url, server) = start(vec![again.clone(), again.clone(), again.clone(), again]).await;
    let answer = runtime(&url, 3)
        .answer(&turn("conv_1", "?"), &Tools::default(), None)
        .await;
    assert!(answer.fallback);
    assert_eq!(server.lock().unwrap().seen.len(), 3);
    assert_eq!(answer.tools.len(), 3);
}

#[tokio::test]
async fn a_tenant_with_its_own_agent_is_answered_by_it() {
    let (url, server) = start(vec![Reply::Stream(vec![Frame::Chunk("Da.")])]).await;
    let mut own = turn("conv_1", "Aveți loc?");
    own.bedrock = Some(voice_operator::tenant::BedrockAgentRef {
        agent_id: "TENANTAGNT".into(),
        alias_id: "LIVEALIAS1".into(),
    });
    let answer = runtime(&url, 3).answer(&own, &Tools::default(), None).await;
    assert_eq!(answer.text, "Da.");
    assert_eq!(
        server.lock().unwrap().seen[0].0,
        "/agents/TENANTAGNT/agentAliases/LIVEALIAS1/sessions/conv_1/text"
    );
}

#[tokio::test]
async fn the_turns_instructions_go_as_a_prompt_session_attribute_of_every_round() {
    let (url, server) = start(vec![
        return_control("inv-3", &[("query_app_server", &[])]),
        Reply::Stream(vec![Frame::Chunk("Da.")]),
    ])
    .await;
    let mut instructed = turn("conv_1", "Aveți loc mâine?");
    instructed.system = Some("You answer for Clinica Dentară.\n\nToday is 2026-11-30.".into());
    instructed.history = vec![voice_operator::agent::Message {
        role: voice_operator::agent::Role::Assistant,
        text: "Bună ziua!".into(),
    }];
    let answer = runtime(&url, 3)
        .answer(&instructed, &Tools::default(), None)
        .await;
    assert_eq!(answer.text, "Da.");
    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen.len(), 2);
    for (_, body) in seen.iter() {
        assert_eq!(
            body["sessionState"]["promptSessionAttributes"],
            json!({voice_operator::agent::bedrock::INSTRUCTIONS_ATTRIBUTE:
                "You answer for Clinica Dentară.\n\nToday is 2026-11-30."})
        );
        // Bedrock keeps the session's history itself: none is resent.
        assert!(body["sessionState"].get("conversationHistory").is_none());
    }
}
