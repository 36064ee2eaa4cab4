//! The workspace secret that holds the custom-LLM bearer secret, against a
//! local server speaking `/v1/convai/secrets` with the shapes of
//! ElevenLabs' OpenAPI document (`GetWorkspaceSecretsResponseModel`,
//! `PostWorkspaceSecretRequest`, `PatchWorkspaceSecretRequest`,
//! `PostWorkspaceSecretResponseModel`).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient, ElevenLabsError, EnsuredSecret};
use voice_operator::ids::Id;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_0123456789";
const NAME: &str = "voice-operator-llm-secret";
const SECRETS: &str = "/v1/convai/secrets";

fn client(server: &MockServer) -> ElevenLabsClient {
    let mut config = ClientConfig::new(server.uri(), SecretString::from(KEY));
    config.request_timeout = Duration::from_millis(800);
    config.backoff_base = Duration::from_millis(20);
    config.max_retries = 2;
    ElevenLabsClient::new(config).unwrap()
}

/// A stored secret as the list shows it (`ConvAIWorkspaceStoredSecretConfig`).
fn stored(id: &str, name: &str) -> Value {
    json!({"type": "stored", "secret_id": id, "name": name,
           "used_by": {"tools": [], "agents": [], "others": []}})
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn a_missing_secret_is_created_and_a_prefix_match_is_not_taken() {
    let server = MockServer::start().await;
    // `search` matches name prefixes: the API also returns this one.
    Mock::given(method("GET"))
        .and(path(SECRETS))
        .and(header("xi-api-key", KEY))
        .and(query_param("search", NAME))
        .and(query_param_is_missing("cursor"))
        .respond_with(answer(json!({
            "secrets": [stored("sec_old", "voice-operator-llm-secret-old")],
            "next_cursor": null,
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SECRETS))
        .and(header("xi-api-key", KEY))
        .and(body_json(
            json!({"type": "new", "name": NAME, "value": "llm-bearer"}),
        ))
        .respond_with(answer(
            json!({"type": "stored", "secret_id": "sec_new", "name": NAME}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(answer(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let ensured = client(&server)
        .ensure_secret(NAME, &SecretString::from("llm-bearer"))
        .await
        .unwrap();
    assert_eq!(
        ensured,
        EnsuredSecret {
            id: Id::parse("secret_id", "sec_new").unwrap(),
            created: true
        }
    );
}

#[tokio::test]
async fn an_existing_secret_is_found_on_any_page_and_its_value_set() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SECRETS))
        .and(query_param("search", NAME))
        .and(query_param_is_missing("cursor"))
        .respond_with(answer(json!({
            "secrets": [stored("sec_b", NAME), stored("sec_x", "voice-operator-llm-secret-2")],
            "next_cursor": "page2",
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SECRETS))
        .and(query_param("cursor", "page2"))
        .respond_with(answer(json!({"secrets": [stored("sec_a", NAME)]})))
        .expect(1)
        .mount(&server)
        .await;
    // Values cannot be read back, so the value is always written; of two
    // secrets with the name, every replica takes the smallest id.
    Mock::given(method("PATCH"))
        .and(path(format!("{SECRETS}/sec_a")))
        .and(header("xi-api-key", KEY))
        .and(body_json(
            json!({"type": "update", "name": NAME, "value": "rotated"}),
        ))
        .respond_with(answer(
            json!({"type": "stored", "secret_id": "sec_a", "name": NAME}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(answer(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let ensured = client(&server)
        .ensure_secret(NAME, &SecretString::from("rotated"))
        .await
        .unwrap();
    assert_eq!(ensured.id.as_str(), "sec_a");
    assert!(!ensured.created);
}

#[tokio::test]
async fn creating_is_not_retried_after_a_server_error_and_bad_ids_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SECRETS))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .create_secret(NAME, &SecretString::from("v"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::Server { status: 500, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("\"v\""), "{err}");

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SECRETS))
        .respond_with(answer(json!({"secrets": [stored("../sec", NAME)]})))
        .mount(&server)
        .await;
    let err = client(&server).find_secrets(NAME).await.unwrap_err();
    assert!(
        matches!(&err, ElevenLabsError::BadResponse { field, .. } if field == "secrets[].secret_id"),
        "{err}"
    );
}
