//! The OpenAI-compatible agent runtime against a local chat-completions
//! server (axum) that records each request and answers from a script of
//! server-sent-event bodies, sent in pieces as a streaming server would.

use crate::support::runtime::{
    SharedScript, Tools, ask, ask_streamed, ask_with_tools, drain, serve_script, turn,
};

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use voice_operator::agent::openai::{OpenAiConfig, OpenAiRuntime};
use voice_operator::agent::{FALLBACK, Handoff, Message, PlatformTool, Role, ToolCall, Turn};

/// What the server answers to one request.
#[derive(Clone)]
enum Reply {
    /// 200 `text/event-stream`, the body sent in these pieces.
    Sse(Vec<Bytes>),
    /// As `Sse`, and then the body never ends.
    SseThenStall(Vec<Bytes>),
    /// This status with an OpenAI-style error body.
    Status(u16),
    /// Never sends a response head.
    Stall,
}

/// One request as the server saw it.
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
}

type Shared = SharedScript<Reply, Seen>;

async fn chat(State(server): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let seen = Seen {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    // Past the script: a 500, which a test notices as an extra request.
    let reply = server.lock().unwrap().reply(seen, Reply::Status(500));
    let sse = |body: Body| {
        (
            StatusCode::OK,
            [("content-type", "text/event-stream")],
            body,
        )
            .into_response()
    };
    let pieces =
        |pieces: Vec<Bytes>| futures::stream::iter(pieces.into_iter().map(Ok::<_, Infallible>));
    match reply {
        Reply::Sse(body) => sse(Body::from_stream(pieces(body))),
        Reply::SseThenStall(body) => sse(Body::from_stream(
            pieces(body).chain(futures::stream::pending()),
        )),
        Reply::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            json!({"error": {"message": "the model is busy", "type": "server_error"}}).to_string(),
        )
            .into_response(),
        Reply::Stall => std::future::pending().await,
    }
}

/// A server on 127.0.0.1:0; returns its `/v1` base URL.
async fn start(replies: Vec<Reply>) -> (String, Shared) {
    let (url, server) = serve_script(replies, chat).await;
    (format!("{url}/v1"), server)
}

fn config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig::new(base_url, "qwen2.5-7b-instruct")
}

fn runtime(config: OpenAiConfig) -> OpenAiRuntime {
    OpenAiRuntime::new(reqwest::Client::new(), config)
}

fn event(chunk: Value) -> String {
    format!("data: {chunk}\n\n")
}

fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    event(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_764_000_000,
        "model": "qwen2.5-7b-instruct",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }))
}

fn text(piece: &str) -> String {
    chunk(json!({"content": piece}), None)
}

/// A tool-call delta: the first one of a call carries `id` and `name`.
fn call(index: usize, first: Option<(&str, &str)>, arguments: &str) -> String {
    let mut delta = json!({"index": index, "function": {"arguments": arguments}});
    if let Some((id, name)) = first {
        delta["id"] = json!(id);
        delta["type"] = json!("function");
        delta["function"]["name"] = json!(name);
    }
    chunk(json!({"tool_calls": [delta]}), None)
}

fn finish(reason: &str) -> String {
    chunk(json!({}), Some(reason))
}

const DONE: &str = "data: [DONE]\n\n";

/// A reply in which the model says `pieces`, an event each, and stops.
fn says(pieces: &[&str]) -> Reply {
    let mut body: Vec<String> = pieces.iter().map(|piece| text(piece)).collect();
    body.extend([finish("stop"), DONE.into()]);
    Reply::Sse(events(&body))
}

/// A reply in which the model asks for tools with these `call` deltas.
fn asks_for(mut calls: Vec<String>) -> Reply {
    calls.extend([finish("tool_calls"), DONE.into()]);
    Reply::Sse(events(&calls))
}

/// One piece per event, as most servers flush them.
fn events(events: &[String]) -> Vec<Bytes> {
    events.iter().map(|e| Bytes::from(e.clone())).collect()
}

/// The body cut every `size` bytes, through lines and UTF-8 characters.
fn shredded(events: &[String], size: usize) -> Vec<Bytes> {
    let body = events.concat();
    body.as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_plain_answer_streams_its_chunks_in_order() {
    let (url, server) = start(vec![Reply::Sse(events(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        text("Bună ziua! "),
        text("Avem loc "),
        text("mâine la 10."),
        finish("stop"),
        DONE.into(),
    ]))])
    .await;
    let mut config = config(&url);
    config.api_key = Some(SecretString::from("sk-local-test"));
    config.system_prompt = Some("You answer phone calls for a salon.".into());
    let (answer, streamed) = ask_streamed(&runtime(config), "Aveți loc mâine?").await;
    assert_eq!(answer.text, "Bună ziua! Avem loc mâine la 10.");
    assert!(!answer.fallback);
    assert!(answer.tools.is_empty());
    assert_eq!(streamed, ["Bună ziua! ", "Avem loc ", "mâine la 10."]);

    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk-local-test")
    );
    let body = &seen[0].body;
    assert_eq!(body["model"], "qwen2.5-7b-instruct");
    assert_eq!(body["stream"], true);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You answer phone calls for a salon."},
            {"role": "user", "content": "Aveți loc mâine?"},
        ])
    );
    let tools = body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "query_app_server",
            "create_appointment",
            "send_external_message",
            "send_elixir_notification"
        ]
    );
    assert!(tools.iter().all(|t| t["type"] == "function"));
    assert_eq!(
        tools[1]["function"]["parameters"]["required"],
        json!(["date", "time", "customerName"])
    );
}

#[tokio::test]
async fn a_tool_call_split_over_chunks_runs_and_its_result_goes_back() {
    // CRLF line ends, a keep-alive comment, and the body cut every 7 bytes:
    // lines, the arguments' JSON and UTF-8 characters all arrive in pieces.
    let first: Vec<String> = [
        ": keep-alive\n\n".to_owned(),
        call(0, Some(("call_q1", "query_app_server")), ""),
        call(0, None, "{\"resource\": \"avail"),
        call(0, None, "ability\", \"date\": \"2026-"),
        call(0, None, "11-25\", \"query\": \"mâine dimineață\"}"),
        finish("tool_calls"),
        DONE.into(),
    ]
    .iter()
    .map(|e| e.replace('\n', "\r\n"))
    .collect();
    let (url, server) = start(vec![
        Reply::Sse(shredded(&first, 7)),
        says(&["Mâine la 10 ", "este liber."]),
    ])
    .await;
    let tools = Tools::default();
    let (tx, rx) = mpsc::channel(16);
    let answer = ask(
        &runtime(config(&url)),
        &turn("conv_1", "Ce ore libere aveți mâine?"),
        &tools,
        Some(tx),
    )
    .await;
    assert!(!answer.fallback);
    assert_eq!(answer.text, "Mâine la 10 este liber.");
    assert_eq!(drain(rx).await, ["Mâine la 10 ", "este liber."]);
    let expected = ToolCall {
        action_group: "voice-tools".into(),
        function: "query_app_server".into(),
        parameters: BTreeMap::from([
            ("date".into(), "2026-11-25".into()),
            ("query".into(), "mâine dimineață".into()),
            ("resource".into(), "availability".into()),
        ]),
    };
    assert_eq!(tools.calls(), answer.tools);
    assert_eq!(answer.tools, [expected]);

    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen.len(), 2);
    let second = &seen[1].body;
    assert_eq!(roles(second), ["user", "assistant", "tool"]);
    let messages = second["messages"].as_array().unwrap();
    let asked = &messages[1]["tool_calls"];
    assert_eq!(asked.as_array().unwrap().len(), 1);
    assert_eq!(asked[0]["id"], "call_q1");
    assert_eq!(asked[0]["type"], "function");
    assert_eq!(asked[0]["function"]["name"], "query_app_server");
    let arguments: Value =
        serde_json::from_str(asked[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        arguments,
        json!({"resource": "availability", "date": "2026-11-25", "query": "mâine dimineață"})
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_q1",
               "content": "{\"result\":\"query_app_server ok\"}"})
    );
}

#[tokio::test]
async fn two_tool_calls_in_one_reply_are_run_in_index_order() {
    let (url, server) = start(vec![
        asks_for(vec![
            call(0, Some(("call_book", "create_appointment")), ""),
            call(1, Some(("call_sms", "send_external_message")), ""),
            call(0, None, "{\"date\": \"2026-11-25\", \"time\": \"10:00\", "),
            call(1, None, "{\"channel\": \"sms\", \"to\": \"+40712345678\", "),
            call(0, None, "\"customerName\": \"Ana\"}"),
            call(1, None, "\"message\": \"Confirmat\"}"),
        ]),
        says(&["Gata, v-am trimis confirmarea."]),
    ])
    .await;
    let (answer, tools) = ask_with_tools(
        &runtime(config(&url)),
        "Vreau o programare mâine la 10, sunt Ana",
    )
    .await;
    assert!(!answer.fallback);
    assert_eq!(answer.text, "Gata, v-am trimis confirmarea.");
    let calls = tools.calls();
    let names: Vec<&str> = calls.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(names, ["create_appointment", "send_external_message"]);
    assert_eq!(calls[0].parameters["customerName"], "Ana");
    assert_eq!(calls[1].parameters["to"], "+40712345678");

    let seen = &server.lock().unwrap().seen;
    let messages = seen[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(roles(&seen[1].body), ["user", "assistant", "tool", "tool"]);
    let ids: Vec<&str> = messages[1]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["call_book", "call_sms"]);
    assert_eq!(messages[2]["tool_call_id"], "call_book");
    assert_eq!(messages[3]["tool_call_id"], "call_sms");
    assert_eq!(
        messages[3]["content"],
        "{\"result\":\"send_external_message ok\"}"
    );
}

#[tokio::test]
async fn arguments_that_are_not_an_object_do_not_run_the_tool_and_the_model_is_told() {
    let (url, server) = start(vec![
        asks_for(vec![call(
            0,
            Some(("call_bad", "create_appointment")),
            "[\"tomorrow\"]",
        )]),
        says(&["Pentru ce zi?"]),
    ])
    .await;
    let (answer, tools) = ask_with_tools(&runtime(config(&url)), "Vreau o programare").await;
    assert_eq!(answer.text, "Pentru ce zi?");
    assert!(tools.calls().is_empty());
    assert!(answer.tools.is_empty());
    let seen = &server.lock().unwrap().seen;
    let result = &seen[1].body["messages"][2];
    assert_eq!(result["tool_call_id"], "call_bad");
    let content = result["content"].as_str().unwrap();
    assert!(content.contains("must be a JSON object"), "{content}");
    assert!(content.contains("not run"), "{content}");
}

#[tokio::test]
async fn server_errors_become_the_spoken_fallback() {
    for status in [500, 429] {
        let (url, server) = start(vec![Reply::Status(status)]).await;
        let (answer, streamed) = ask_streamed(&runtime(config(&url)), "Alo?").await;
        assert!(answer.fallback, "HTTP {status}");
        assert_eq!(answer.text, FALLBACK);
        assert_eq!(streamed, [FALLBACK]);
        assert_eq!(server.lock().unwrap().seen.len(), 1, "no retry");
    }
}

#[tokio::test]
async fn malformed_chunks_and_errors_inside_the_stream_become_the_fallback() {
    let bodies = [
        vec![text("Un moment, "), "data: {\"choices\": [\n\n".to_owned()],
        vec![
            text("Un moment, "),
            event(json!({"error": {"message": "out of memory"}})),
        ],
        // Cut before any finish_reason or [DONE].
        vec![text("Un moment, ")],
    ];
    for body in bodies {
        let (url, _server) = start(vec![Reply::Sse(events(&body))]).await;
        let (answer, streamed) = ask_streamed(&runtime(config(&url)), "Alo?").await;
        assert!(answer.fallback);
        assert_eq!(answer.text, FALLBACK);
        assert_eq!(streamed, ["Un moment, ".to_owned(), format!(" {FALLBACK}")]);
    }
}

#[tokio::test]
async fn a_stalled_server_gets_the_fallback_within_the_deadline() {
    let replies = [
        Reply::Stall,
        Reply::SseThenStall(events(&[text("Un moment, ")])),
    ];
    for reply in replies {
        let (url, _server) = start(vec![reply]).await;
        let mut config = config(&url);
        config.deadline = Duration::from_millis(300);
        let started = Instant::now();
        let (answer, streamed) = ask_streamed(&runtime(config), "Alo?").await;
        // A sanity bound, not a benchmark.
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(answer.fallback);
        assert_eq!(answer.text, FALLBACK);
        assert_eq!(streamed.last().unwrap().trim(), FALLBACK);
    }
}

#[tokio::test]
async fn a_model_that_keeps_calling_tools_is_stopped_after_max_rounds() {
    let again = asks_for(vec![call(0, Some(("call_loop", "query_app_server")), "{}")]);
    let (url, server) = start(vec![again; 6]).await;
    let mut config = config(&url);
    config.max_rounds = 3;
    let tools = Tools::default();
    let answer = ask(&runtime(config), &turn("conv_1", "?"), &tools, None).await;
    assert!(answer.fallback);
    assert_eq!(answer.text, FALLBACK);
    assert_eq!(server.lock().unwrap().seen.len(), 3);
    // The tools of the last reply are not run: their results could never
    // reach the model.
    assert_eq!(tools.calls().len(), 2);
    assert_eq!(answer.tools.len(), 2);
}

#[tokio::test]
async fn a_session_carries_its_earlier_exchanges_and_another_session_does_not() {
    let (url, server) = start(vec![
        says(&["Bună ziua, cu ce vă ajut?"]),
        says(&["Avem loc la 10."]),
        says(&["Bună ziua!"]),
    ])
    .await;
    let mut config = config(&url);
    config.system_prompt = Some("Be brief.".into());
    let runtime = runtime(config);
    let tools = Tools::default();
    ask(&runtime, &turn("conv_1", "Bună ziua"), &tools, None).await;
    ask(&runtime, &turn("conv_1", "Aveți loc mâine?"), &tools, None).await;
    ask(&runtime, &turn("conv_2", "Alo?"), &tools, None).await;

    let seen = &server.lock().unwrap().seen;
    assert_eq!(seen[0].authorization, None);
    assert_eq!(
        seen[1].body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Bună ziua"},
            {"role": "assistant", "content": "Bună ziua, cu ce vă ajut?"},
            {"role": "user", "content": "Aveți loc mâine?"},
        ])
    );
    assert_eq!(
        seen[2].body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Alo?"},
        ])
    );
}

#[tokio::test]
async fn a_failed_turn_is_not_remembered() {
    let (url, server) = start(vec![Reply::Status(503), says(&["Da?"])]).await;
    let runtime = runtime(config(&url));
    let tools = Tools::default();
    assert!(
        ask(&runtime, &turn("conv_1", "Alo?"), &tools, None)
            .await
            .fallback
    );
    assert!(
        !ask(&runtime, &turn("conv_1", "Mă auziți?"), &tools, None)
            .await
            .fallback
    );
    let seen = &server.lock().unwrap().seen;
    assert_eq!(
        seen[1].body["messages"],
        json!([{"role": "user", "content": "Mă auziți?"}])
    );
}

/// ElevenLabs' system tools as its request describes them (elevenlabs-docs
/// `customization/custom-llm/overview.mdx`, "Example Request with System
/// Tools").
fn platform_tools() -> Vec<PlatformTool> {
    vec![
        PlatformTool {
            name: "end_call".into(),
            description: "Call this function to end the current conversation.".into(),
            parameters: json!({"type": "object", "properties": {
                "reason": {"type": "string"}, "message": {"type": "string"}},
                "required": ["reason"]}),
        },
        PlatformTool {
            name: "transfer_to_number".into(),
            description: "Transfer to +40312000111 when the caller asks for a person.".into(),
            parameters: json!({"type": "object", "properties": {
                "reason": {"type": "string"}, "transfer_number": {"type": "string"},
                "client_message": {"type": "string"}, "agent_message": {"type": "string"}},
                "required": ["transfer_number", "client_message", "agent_message"]}),
        },
    ]
}

/// A turn of conv_1 as the custom-LLM route builds it: the agent's prompt,
/// the conversation so far and ElevenLabs' system tools.
fn platform_turn(text: &str) -> Turn {
    Turn {
        system: Some("You answer for Clinica Dentară. Today is 2026-11-30 (Monday).".into()),
        history: vec![
            Message {
                role: Role::Assistant,
                text: "Bună ziua, cu ce vă ajut?".into(),
            },
            Message {
                role: Role::User,
                text: "Vreau o programare".into(),
            },
            Message {
                role: Role::Assistant,
                text: "Pentru ce zi?".into(),
            },
        ],
        platform_tools: platform_tools(),
        ..turn("conv_1", text)
    }
}

#[tokio::test]
async fn the_turns_instructions_history_and_platform_tools_reach_the_model() {
    let (url, server) = start(vec![
        says(&["Bună ziua!"]),
        says(&["Mâine la 10 este liber."]),
    ])
    .await;
    let mut config = config(&url);
    config.system_prompt = Some("Be brief.".into());
    let runtime = runtime(config);
    let tools = Tools::default();
    // This replica remembers a first exchange of conv_1 ...
    ask(&runtime, &turn("conv_1", "Alo?"), &tools, None).await;
    // ... but the turn brings the conversation as ElevenLabs keeps it, and
    // that is what the model reads.
    let answer = ask(&runtime, &platform_turn("Mâine la 10"), &tools, None).await;
    assert_eq!(answer.text, "Mâine la 10 este liber.");
    assert_eq!(answer.handoff, None);

    let seen = &server.lock().unwrap().seen;
    let body = &seen[1].body;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content":
                "Be brief.\n\nYou answer for Clinica Dentară. Today is 2026-11-30 (Monday)."},
            {"role": "assistant", "content": "Bună ziua, cu ce vă ajut?"},
            {"role": "user", "content": "Vreau o programare"},
            {"role": "assistant", "content": "Pentru ce zi?"},
            {"role": "user", "content": "Mâine la 10"},
        ])
    );
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "query_app_server",
            "create_appointment",
            "send_external_message",
            "send_elixir_notification",
            "end_call",
            "transfer_to_number",
        ]
    );
    assert_eq!(
        body["tools"][5]["function"]["parameters"]["required"],
        json!(["transfer_number", "client_message", "agent_message"])
    );
    // A turn without platform tools offers the catalog alone.
    assert_eq!(seen[0].body["tools"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_platform_tool_asked_for_alone_ends_the_turn_with_a_handoff() {
    let (url, server) = start(vec![Reply::Sse(events(&[
        text("Vă transfer acum."),
        call(0, Some(("call_t", "transfer_to_number")), ""),
        call(
            0,
            None,
            r#"{"reason": "wants a person", "transfer_number": "+40312000111", "client_message": "Rămâneți pe linie", "agent_message": "Pacient nou"}"#,
        ),
        finish("tool_calls"),
        DONE.into(),
    ]))])
    .await;
    let tools = Tools::default();
    let (tx, rx) = mpsc::channel(16);
    let answer = ask(
        &runtime(config(&url)),
        &platform_turn("Vreau să vorbesc cu cineva"),
        &tools,
        Some(tx),
    )
    .await;
    assert!(!answer.fallback);
    assert_eq!(answer.text, "Vă transfer acum.");
    assert_eq!(drain(rx).await, ["Vă transfer acum."]);
    assert_eq!(
        answer.handoff,
        Some(Handoff::Transfer {
            number: "+40312000111".into(),
            reason: "wants a person".into(),
            client_message: Some("Rămâneți pe linie".into()),
            agent_message: Some("Pacient nou".into()),
        })
    );
    assert!(tools.calls().is_empty());
    assert_eq!(server.lock().unwrap().seen.len(), 1, "no second model call");
}

#[tokio::test]
async fn a_platform_tool_asked_with_others_waits_and_one_the_turn_does_not_offer_is_a_tool() {
    let (url, server) = start(vec![
        asks_for(vec![
            call(0, Some(("call_book", "create_appointment")), ""),
            call(1, Some(("call_end", "end_call")), ""),
            call(
                0,
                None,
                r#"{"date": "2026-12-01", "time": "10:00", "customerName": "Ana"}"#,
            ),
            call(1, None, r#"{"reason": "done"}"#),
        ]),
        asks_for(vec![call(0, Some(("call_end2", "end_call")), "{}")]),
    ])
    .await;
    let tools = Tools::default();
    let answer = ask(
        &runtime(config(&url)),
        &platform_turn("Mâine la 10, sunt Ana. Atât."),
        &tools,
        None,
    )
    .await;
    assert_eq!(
        answer.handoff,
        Some(Handoff::EndCall {
            reason: String::new(),
            message: None
        })
    );
    let names: Vec<String> = tools.calls().into_iter().map(|c| c.function).collect();
    assert_eq!(names, ["create_appointment"]);
    {
        let seen = &server.lock().unwrap().seen;
        assert_eq!(seen.len(), 2);
        let messages = seen[1].body["messages"].as_array().unwrap();
        let end = messages
            .iter()
            .find(|m| m["tool_call_id"] == "call_end")
            .unwrap();
        let content = end["content"].as_str().unwrap();
        assert!(content.contains("ask for it alone"), "{content}");
    }

    // Without the platform offering end_call, it is an ordinary (unknown)
    // tool for the tool runner, and no hand-off.
    let (url, _server) = start(vec![
        asks_for(vec![call(0, Some(("call_end", "end_call")), "{}")]),
        says(&["La revedere."]),
    ])
    .await;
    let (answer, tools) = ask_with_tools(&runtime(config(&url)), "Atât, mulțumesc").await;
    assert_eq!(answer.handoff, None);
    assert_eq!(answer.text, "La revedere.");
    assert_eq!(tools.calls()[0].function, "end_call");
}

#[tokio::test]
async fn a_transfer_without_a_number_goes_back_to_the_model() {
    let (url, server) = start(vec![
        asks_for(vec![call(
            0,
            Some(("call_t", "transfer_to_number")),
            r#"{"reason": "wants a person"}"#,
        )]),
        says(&["Cu cine doriți să vorbiți?"]),
    ])
    .await;
    let tools = Tools::default();
    let answer = ask(
        &runtime(config(&url)),
        &platform_turn("Vreau un om"),
        &tools,
        None,
    )
    .await;
    assert_eq!(answer.handoff, None);
    assert_eq!(answer.text, "Cu cine doriți să vorbiți?");
    let seen = &server.lock().unwrap().seen;
    let result = &seen[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(result["tool_call_id"], "call_t");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("needs transfer_number"),
        "{result}"
    );
}
