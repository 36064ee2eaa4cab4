//! The ElevenLabs client against a local server speaking the Agents API:
//! method, path, `xi-api-key` and body shape of every call, and the error
//! classes with their retry behaviour.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::elevenlabs::{
    AgentPlatform, ClientConfig, Deleted, DesiredAgent, ElevenLabsClient, ElevenLabsError,
    ListQuery, Llm,
};
use voice_operator::ids::Id;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_0123456789";

fn client(server: &MockServer) -> ElevenLabsClient {
    let mut config = ClientConfig::new(server.uri(), SecretString::from(KEY));
    config.request_timeout = Duration::from_millis(800);
    config.backoff_base = Duration::from_millis(20);
    config.max_retries = 2;
    config.max_retry_after = Duration::from_secs(3);
    ElevenLabsClient::new(config).unwrap()
}

fn desired() -> DesiredAgent {
    DesiredAgent {
        name: "Agent Clinica Dentara XYZ".into(),
        tags: vec!["voiceagents.io/uid=8d2c".into()],
        first_message: "Bună ziua! Sunt asistentul clinicii.".into(),
        language: "ro".into(),
        prompt: "You are a helpful dental assistant...".into(),
        llm: Llm::Custom {
            url: "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001".into(),
            api_key_secret_id: None,
        },
        voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
        turn_timeout_secs: 10,
        max_duration_secs: 300,
        platform_settings: None,
    }
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
                    "custom_llm": {"url": "https://voice.example.com/api/elevenlabs/llm/B0100001/L0100001"}
                }
            },
            "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM"},
            "turn": {"turn_timeout": 10},
            "conversation": {"max_duration_seconds": 300}
        }
    })
}

fn id(s: &str) -> Id {
    Id::parse("agent_id", s).unwrap()
}

#[tokio::test]
async fn create_posts_the_typed_body_with_the_key_and_returns_the_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/convai/agents/create"))
        .and(header("xi-api-key", KEY))
        .and(header("content-type", "application/json"))
        .and(body_json(expected_body()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"agent_id": "agent_7801k2abcd0efgh"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server).create_agent(&desired()).await.unwrap();
    assert_eq!(created.as_str(), "agent_7801k2abcd0efgh");
}

#[tokio::test]
async fn get_reads_the_agent_and_drift_compares_it() {
    let server = MockServer::start().await;
    let mut config = expected_body()["conversation_config"].clone();
    config["tts"]["model_id"] = json!("eleven_flash_v2_5");
    config["agent"]["first_message"] = json!("Changed in the dashboard");
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .and(header("xi-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "agent_id": "agent_1",
            "name": "Agent Clinica Dentara XYZ",
            "tags": ["voiceagents.io/uid=8d2c"],
            "conversation_config": config,
            "platform_settings": {"widget": {"variant": "full"}},
            "metadata": {"created_at_unix_secs": 1763978000}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let agent = client(&server).get_agent(&id("agent_1")).await.unwrap();
    assert_eq!(agent.agent_id.as_str(), "agent_1");
    assert_eq!(agent.tags, ["voiceagents.io/uid=8d2c"]);
    assert_eq!(
        desired().drift(&agent),
        ["conversation_config.agent.first_message"]
    );
}

#[tokio::test]
async fn update_patches_the_agent_with_the_same_body() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/v1/convai/agents/agent_1"))
        .and(header("xi-api-key", KEY))
        .and(body_json(expected_body()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"agent_id": "agent_1"})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .update_agent(&id("agent_1"), &desired())
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_removes_and_a_missing_agent_counts_as_gone() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/convai/agents/agent_1"))
        .and(header("xi-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/convai/agents/agent_gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"detail": {"status": "agent_not_found", "message": "Agent not found"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
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
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents"))
        .and(header("xi-api-key", KEY))
        .and(query_param("search", "Agent Clinica"))
        .and(query_param("page_size", "100"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "agents": [{"agent_id": "agent_1", "name": "Agent Clinica A", "tags": ["t1"], "created_at_unix_secs": 1}],
            "next_cursor": "cur_2",
            "has_more": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents"))
        .and(query_param("cursor", "cur_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "agents": [{"agent_id": "agent_2", "name": "Agent Clinica B", "tags": null}],
            "next_cursor": null,
            "has_more": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
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
    let server = MockServer::start().await;
    let fixture = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/elevenlabs/post_call_transcription.json"),
    )
    .unwrap();
    let data = serde_json::from_slice::<Value>(&fixture).unwrap()["data"].clone();
    Mock::given(method("GET"))
        .and(path("/v1/convai/conversations/conv_0101k9xyz123"))
        .and(header("xi-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(data))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/conversations/conv_0101k9xyz123/audio"))
        .and(header("xi-api-key", KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"ID3\x04fake-mp3".to_vec(), "audio/mpeg"),
        )
        .mount(&server)
        .await;
    let c = client(&server);
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
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"detail": {"message": "Too many requests"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"agent_id": "agent_1", "name": "A"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let agent = client(&server).get_agent(&id("agent_1")).await.unwrap();
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
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/convai/agents/create"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).create_agent(&desired()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry after 120 s"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_success() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"agent_id": "agent_1"})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .update_agent(&id("agent_1"), &desired())
        .await
        .unwrap();
}

#[tokio::test]
async fn server_errors_exhaust_the_retry_budget_and_keep_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"detail": "overloaded"})))
        .expect(3) // the first attempt and max_retries = 2
        .mount(&server)
        .await;
    let err = client(&server).get_agent(&id("agent_1")).await.unwrap_err();
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
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/convai/agents/create"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).create_agent(&desired()).await.unwrap_err();
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
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/convai/agents/create"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "detail": [{"loc": ["body", "conversation_config", "tts", "voice_id"], "msg": "Voice 'nope' does not exist", "type": "value_error"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).create_agent(&desired()).await.unwrap_err();
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
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_agent(&id("agent_1")).await.unwrap_err();
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
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/convai/agents/agent_1"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(3)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server).get_agent(&id("agent_1")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ElevenLabsError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    // Three attempts of 800 ms plus short backoffs, far below one 5 s answer.
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn a_create_answer_without_agent_id_is_a_typed_error() {
    let server = MockServer::start().await;
    let answers = [
        json!({}),
        json!({"agent_id": null}),
        json!({"agent_id": 7}),
        json!({"agent_id": "a/../b"}),
    ];
    for (i, answer) in answers.iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/v1/convai/agents/create"))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer.clone()))
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&server)
            .await;
    }
    for answer in answers {
        match client(&server).create_agent(&desired()).await.unwrap_err() {
            ElevenLabsError::BadResponse { field, .. } => assert_eq!(field, "agent_id", "{answer}"),
            other => panic!("{answer}: {other:?}"),
        }
    }
    Mock::given(method("POST"))
        .and(path("/v1/convai/agents/create"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"))
        .mount(&server)
        .await;
    let err = client(&server).create_agent(&desired()).await.unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::BadResponse { ref field, .. } if field == "body"),
        "{err:?}"
    );
}
