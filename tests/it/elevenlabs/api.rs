//! The ElevenLabs client against a local server speaking the Agents API:
//! method, path, `xi-api-key` and body shape of every call, and the error
//! classes with their retry behaviour.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::elevenlabs::{
    AgentPlatform, ClientConfig, Deleted, DesiredAgent, ElevenLabsClient, ElevenLabsError,
    ListQuery,
};
use voice_operator::ids::Id;
use voice_operator::testkit::fixtures::desired_agent;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_0123456789";

fn desired() -> DesiredAgent {
    desired_agent()
}

fn expected_body() -> Value {
    json!({
        "name": "Agent Clinica Dentara XYZ",
        "tags": ["voiceagents.io/uid=8d2c"],
        "conversation_config": {
            "agent": {
                "first_message": "Bună ziua! Sunt asistentul clinicii.",
                "language": "ro",
                "prompt": {
                    "prompt": "You are a helpful dental assistant...",
                    "llm": "custom-llm",
                    "custom_llm": {
                        "url": "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001",
                        "request_headers": {"X-Conversation-Id": {"variable_name": "system__conversation_id"}}
                    },
                    "cascade_timeout_seconds": 4.0,
                    "built_in_tools": {
                        "end_call": {"type": "system", "name": "end_call",
                                     "params": {"system_tool_type": "end_call"}},
                        "transfer_to_number": null
                    }
                }
            },
            "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM", "model_id": "eleven_flash_v2_5"},
            "turn": {"turn_timeout": 10},
            "conversation": {"max_duration_seconds": 300}
        }
    })
}

pub(super) fn id(s: &str) -> Id {
    Id::parse("agent_id", s).unwrap()
}

/// Where one agent, `agent_1`, is read, patched and deleted.
const AGENT_1: &str = "/v1/convai/agents/agent_1";
/// Where agents are created.
const CREATE: &str = "/v1/convai/agents/create";

/// A request of `verb` to `route`.
pub(super) fn call(verb: &str, route: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(route))
}

/// A request of `verb` to `route` that carries the API key.
pub(super) fn keyed(verb: &str, route: &str) -> MockBuilder {
    call(verb, route).and(header("xi-api-key", KEY))
}

/// An answer with `status` and a JSON `body`.
pub(super) fn answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// A local server speaking the Agents API, answering what a test mounts.
pub(super) struct Api {
    server: MockServer,
}

impl Api {
    pub(super) async fn start() -> Api {
        Api {
            server: MockServer::start().await,
        }
    }

    /// A client of this server with short timeouts and two retries.
    pub(super) fn client(&self) -> ElevenLabsClient {
        let mut config = ClientConfig::new(self.server.uri(), SecretString::from(KEY));
        config.request_timeout = Duration::from_millis(800);
        config.backoff_base = Duration::from_millis(20);
        config.max_retries = 2;
        config.max_retry_after = Duration::from_secs(3);
        ElevenLabsClient::new(config).unwrap()
    }

    /// Sends [`desired`] as the new form of `agent_1`; it must succeed.
    async fn update_agent_1(&self) {
        self.client()
            .update_agent(&id("agent_1"), &desired())
            .await
            .unwrap();
    }

    /// Answers `request` with `response`; the test fails unless it comes
    /// exactly `times` times.
    pub(super) async fn expect(
        &self,
        times: u64,
        request: MockBuilder,
        response: ResponseTemplate,
    ) {
        request
            .respond_with(response)
            .expect(times)
            .mount(&self.server)
            .await;
    }

    /// Answers only the first `times` of `request` with `response` (later
    /// ones go to the next mock); the test fails unless all `times` come.
    async fn expect_first(&self, times: u64, request: MockBuilder, response: ResponseTemplate) {
        request
            .respond_with(response)
            .up_to_n_times(times)
            .expect(times)
            .mount(&self.server)
            .await;
    }
}

#[tokio::test]
async fn create_posts_the_typed_body_with_the_key_and_returns_the_id() {
    let api = Api::start().await;
    api.expect(
        1,
        keyed("POST", CREATE)
            .and(header("content-type", "application/json"))
            .and(body_json(expected_body())),
        answer(200, json!({"agent_id": "agent_7801k2abcd0efgh"})),
    )
    .await;
    let created = api.client().create_agent(&desired()).await.unwrap();
    assert_eq!(created.as_str(), "agent_7801k2abcd0efgh");
}

#[tokio::test]
async fn get_reads_the_agent_and_drift_compares_it() {
    let api = Api::start().await;
    let mut config = expected_body()["conversation_config"].clone();
    config["tts"]["model_id"] = json!("eleven_flash_v2_5");
    config["agent"]["first_message"] = json!("Changed in the dashboard");
    api.expect(
        1,
        keyed("GET", AGENT_1),
        answer(
            200,
            json!({
                "agent_id": "agent_1",
                "name": "Agent Clinica Dentara XYZ",
                "tags": ["voiceagents.io/uid=8d2c"],
                "conversation_config": config,
                "platform_settings": {"widget": {"variant": "full"}},
                "metadata": {"created_at_unix_secs": 1763978000}
            }),
        ),
    )
    .await;
    let agent = api.client().get_agent(&id("agent_1")).await.unwrap();
    assert_eq!(agent.agent_id.as_str(), "agent_1");
    assert_eq!(agent.tags, ["voiceagents.io/uid=8d2c"]);
    assert_eq!(
        desired().drift(&agent),
        ["conversation_config.agent.first_message"]
    );
}

#[tokio::test]
async fn update_patches_the_agent_with_the_same_body() {
    let api = Api::start().await;
    api.expect(
        1,
        keyed("PATCH", AGENT_1).and(body_json(expected_body())),
        answer(200, json!({"agent_id": "agent_1"})),
    )
    .await;
    api.update_agent_1().await;
}

#[tokio::test]
async fn delete_removes_and_a_missing_agent_counts_as_gone() {
    let api = Api::start().await;
    api.expect(1, keyed("DELETE", AGENT_1), answer(200, json!({})))
        .await;
    api.expect(
        1,
        call("DELETE", "/v1/convai/agents/agent_gone"),
        answer(
            404,
            json!({"detail": {"status": "agent_not_found", "message": "Agent not found"}}),
        ),
    )
    .await;
    let c = api.client();
    assert_eq!(
        c.delete_agent(&id("agent_1")).await.unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        c.delete_agent(&id("agent_gone")).await.unwrap(),
        Deleted::AlreadyGone
    );
    let err = c.get_agent(&id("agent_gone")).await.unwrap_err();
    assert!(matches!(err, ElevenLabsError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn list_sends_search_and_follows_the_cursor() {
    let api = Api::start().await;
    let first_page = keyed("GET", "/v1/convai/agents")
        .and(query_param("search", "Agent Clinica"))
        .and(query_param("page_size", "100"))
        .and(query_param_is_missing("cursor"));
    let first_answer = answer(
        200,
        json!({
            "agents": [{"agent_id": "agent_1", "name": "Agent Clinica A", "tags": ["t1"], "created_at_unix_secs": 1}],
            "next_cursor": "cur_2",
            "has_more": true
        }),
    );
    api.expect(1, first_page, first_answer).await;
    api.expect(
        1,
        call("GET", "/v1/convai/agents").and(query_param("cursor", "cur_2")),
        answer(
            200,
            json!({
                "agents": [{"agent_id": "agent_2", "name": "Agent Clinica B", "tags": null}],
                "next_cursor": null,
                "has_more": false
            }),
        ),
    )
    .await;
    let c = api.client();
    let mut query = ListQuery {
        search: Some("Agent Clinica".into()),
        cursor: None,
        page_size: Some(100),
    };
    let first = c.list_agents(&query).await.unwrap();
    assert_eq!(first.agents[0].agent_id, "agent_1");
    assert!(first.has_more);
    query.cursor = first.next_cursor;
    let second = c.list_agents(&query).await.unwrap();
    assert_eq!(second.agents[0].agent_id, "agent_2");
    assert!(second.agents[0].tags.is_empty());
    assert!(!second.has_more && second.next_cursor.is_none());
}

#[tokio::test]
async fn conversations_and_their_audio_are_read() {
    let api = Api::start().await;
    let fixture = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/elevenlabs/post_call_transcription.json"),
    )
    .unwrap();
    let data = serde_json::from_slice::<Value>(&fixture).unwrap()["data"].clone();
    keyed("GET", "/v1/convai/conversations/conv_0101k9xyz123")
        .respond_with(ResponseTemplate::new(200).set_body_json(data))
        .mount(&api.server)
        .await;
    keyed("GET", "/v1/convai/conversations/conv_0101k9xyz123/audio")
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"ID3\x04fake-mp3".to_vec(), "audio/mpeg"),
        )
        .mount(&api.server)
        .await;
    let c = api.client();
    let conv_id = Id::parse("conversationId", "conv_0101k9xyz123").unwrap();
    let conversation = c.get_conversation(&conv_id).await.unwrap();
    assert_eq!(
        conversation.agent_id.as_deref(),
        Some("agent_7801k2abcd0efgh")
    );
    assert_eq!(conversation.transcript.len(), 3);
    assert_eq!(conversation.transcript[1].role, "user");
    assert_eq!(conversation.metadata.call_duration_secs, Some(94.0));
    assert_eq!(conversation.metadata.cost, Some(752.0));
    let audio = c.get_conversation_audio(&conv_id).await.unwrap();
    assert_eq!(audio.content_type, "audio/mpeg");
    assert_eq!(&audio.bytes[..], b"ID3\x04fake-mp3");
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let api = Api::start().await;
    api.expect_first(
        1,
        call("GET", AGENT_1),
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(json!({"detail": {"message": "Too many requests"}})),
    )
    .await;
    api.expect(
        1,
        call("GET", AGENT_1),
        answer(200, json!({"agent_id": "agent_1", "name": "A"})),
    )
    .await;
    let started = Instant::now();
    let agent = api.client().get_agent(&id("agent_1")).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(agent.name, "A");
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, before Retry-After"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_caller_at_once() {
    let api = Api::start().await;
    api.expect(
        1,
        call("POST", CREATE),
        ResponseTemplate::new(429).insert_header("retry-after", "120"),
    )
    .await;
    let err = api.client().create_agent(&desired()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry after 120 s"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_success() {
    let api = Api::start().await;
    api.expect_first(
        2,
        call("PATCH", AGENT_1),
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    )
    .await;
    api.expect(
        1,
        call("PATCH", AGENT_1),
        answer(200, json!({"agent_id": "agent_1"})),
    )
    .await;
    api.update_agent_1().await;
}

#[tokio::test]
async fn server_errors_exhaust_the_retry_budget_and_keep_the_status() {
    let api = Api::start().await;
    api.expect(
        3, // the first attempt and max_retries = 2
        call("GET", AGENT_1),
        answer(503, json!({"detail": "overloaded"})),
    )
    .await;
    let err = api.client().get_agent(&id("agent_1")).await.unwrap_err();
    match &err {
        ElevenLabsError::Server {
            status: 503,
            message,
            ..
        } => assert_eq!(message, "overloaded"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_create_is_not_repeated_so_no_second_agent_appears() {
    let api = Api::start().await;
    api.expect(1, call("POST", CREATE), ResponseTemplate::new(502))
        .await;
    let err = api.client().create_agent(&desired()).await.unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::Server { status: 502, .. }),
        "{err:?}"
    );
    assert!(
        err.is_retryable(),
        "the reconciler may try again after checking for an agent"
    );
}

#[tokio::test]
async fn validation_errors_carry_the_provider_message_and_are_not_retried() {
    let api = Api::start().await;
    let refusal = answer(
        422,
        json!({
            "detail": [{"loc": ["body", "conversation_config", "tts", "voice_id"], "msg": "Voice 'nope' does not exist", "type": "value_error"}]
        }),
    );
    api.expect(1, call("POST", CREATE), refusal).await;
    let err = api.client().create_agent(&desired()).await.unwrap_err();
    match &err {
        ElevenLabsError::Validation {
            status: 422,
            message,
            ..
        } => assert_eq!(
            message,
            "body.conversation_config.tts.voice_id: Voice 'nope' does not exist"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error_that_never_shows_the_key() {
    let api = Api::start().await;
    api.expect(
        1,
        call("GET", AGENT_1),
        answer(
            401,
            json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}),
        ),
    )
    .await;
    let err = api.client().get_agent(&id("agent_1")).await.unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::Auth { status: 401, .. }),
        "{err:?}"
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("Invalid API key"), "{shown}");
    }
}

#[tokio::test]
async fn slow_answers_time_out_per_attempt_and_are_retried() {
    let api = Api::start().await;
    api.expect(
        3,
        call("GET", AGENT_1),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    )
    .await;
    let started = Instant::now();
    let err = api.client().get_agent(&id("agent_1")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ElevenLabsError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    // Three attempts of 800 ms plus short backoffs, far below one 5 s answer.
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn a_create_answer_without_agent_id_is_a_typed_error() {
    let api = Api::start().await;
    let answers = [
        json!({}),
        json!({"agent_id": null}),
        json!({"agent_id": 7}),
        json!({"agent_id": "a/../b"}),
    ];
    for (i, answer) in answers.iter().enumerate() {
        call("POST", CREATE)
            .respond_with(ResponseTemplate::new(200).set_body_json(answer.clone()))
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&api.server)
            .await;
    }
    for answer in answers {
        match api.client().create_agent(&desired()).await.unwrap_err() {
            ElevenLabsError::BadResponse { field, .. } => assert_eq!(field, "agent_id", "{answer}"),
            other => panic!("{answer}: {other:?}"),
        }
    }
    call("POST", CREATE)
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"))
        .mount(&api.server)
        .await;
    let err = api.client().create_agent(&desired()).await.unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::BadResponse { ref field, .. } if field == "body"),
        "{err:?}"
    );
}
