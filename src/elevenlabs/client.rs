//! The HTTP client for the ElevenLabs Agents API.

use futures::future::BoxFuture;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AgentPlatform;
use super::error::ElevenLabsError;
use super::model::{
    AgentPage, Audio, Conversation, Deleted, DesiredAgent, ListQuery, PhoneImport, PhoneNumber,
    PhoneProvider, RemoteAgent,
};
use crate::ids::Id;

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://api.elevenlabs.io";
/// Pages of workspace secrets read at most; a cursor that never ends is
/// the API's bug, not a reason to loop forever.
const MAX_SECRET_PAGES: usize = 100;
/// Provider messages longer than this are cut in errors.
const MAX_MESSAGE_CHARS: usize = 500;

/// How to reach ElevenLabs and how hard to try.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ELEVENLABS_BASE_URL`; [`DEFAULT_BASE_URL`] in production.
    pub base_url: String,
    /// `ELEVENLABS_API_KEY`: one key for every tenant.
    pub api_key: SecretString,
    /// Longest one attempt may take, body included.
    pub request_timeout: Duration,
    /// Retries after the first attempt, for errors worth retrying.
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A 429 asking us to wait longer than this is returned to the caller
    /// (with its `Retry-After`) instead of being waited out here.
    pub max_retry_after: Duration,
}

impl ClientConfig {
    /// Production defaults for `api_key` at `base_url`.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            request_timeout: Duration::from_secs(15),
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// An ElevenLabs workspace secret (`/v1/convai/secrets`); its value is
/// never returned by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSecret {
    pub id: Id,
    pub name: String,
}

/// What [`ElevenLabsClient::ensure_secret`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredSecret {
    pub id: Id,
    /// True when the secret did not exist and was created.
    pub created: bool,
}

/// The client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    #[error("ELEVENLABS_BASE_URL {url:?} is not an http(s) URL: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("ELEVENLABS_API_KEY is empty")]
    EmptyKey,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Calls the ElevenLabs API with one API key, retrying what is safe to retry.
#[derive(Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
}

impl std::fmt::Debug for ElevenLabsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent twice. Creating an agent is not: if the
/// first request reached ElevenLabs and only the answer was lost, a retry
/// makes a second agent. Those calls are retried only when the request
/// provably was not processed (429, connection refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    OnlyIfUnprocessed,
}

struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    repeat: Repeat,
}

impl Call {
    fn new(method: Method, path: String) -> Call {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            repeat: Repeat::Safe,
        }
    }

    fn operation(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

struct Answer {
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl ElevenLabsClient {
    pub fn new(config: ClientConfig) -> Result<ElevenLabsClient, ClientConfigError> {
        let bad_url = |reason: String| ClientConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason,
        };
        let mut base = Url::parse(config.base_url.trim()).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url(format!("scheme {:?}", base.scheme())));
        }
        if base.query().is_some() || base.cannot_be_a_base() {
            return Err(bad_url("must be a base URL without a query".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.api_key.expose_secret().trim().is_empty() {
            return Err(ClientConfigError::EmptyKey);
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("voice-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientConfigError::Http(e.to_string()))?;
        Ok(ElevenLabsClient { http, base, config })
    }

    /// `GET /v1/convai/conversations/{id}`: transcript, duration, cost.
    pub async fn get_conversation(&self, id: &Id) -> Result<Conversation, ElevenLabsError> {
        let call = Call::new(Method::GET, format!("v1/convai/conversations/{id}"));
        let operation = call.operation();
        let answer = self.execute(call).await?;
        parse_json(&operation, &answer.body)
    }

    /// `GET /v1/convai/conversations/{id}/audio`: the recording.
    pub async fn get_conversation_audio(&self, id: &Id) -> Result<Audio, ElevenLabsError> {
        let call = Call::new(Method::GET, format!("v1/convai/conversations/{id}/audio"));
        let answer = self.execute(call).await?;
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(Audio {
            content_type,
            bytes: answer.body,
        })
    }

    /// `GET /v1/convai/secrets`: the workspace secrets named exactly
    /// `name`. The `search` parameter matches a name prefix only, so the
    /// exact match is made here; every page is read.
    pub async fn find_secrets(&self, name: &str) -> Result<Vec<WorkspaceSecret>, ElevenLabsError> {
        #[derive(serde::Deserialize)]
        struct Page {
            secrets: Vec<Stored>,
            #[serde(default)]
            next_cursor: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Stored {
            secret_id: String,
            name: String,
        }
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_SECRET_PAGES {
            let mut call = Call::new(Method::GET, "v1/convai/secrets".into());
            call.query.push(("search", name.to_owned()));
            if let Some(cursor) = &cursor {
                call.query.push(("cursor", cursor.clone()));
            }
            let operation = call.operation();
            let answer = self.execute(call).await?;
            let page: Page = parse_json(&operation, &answer.body)?;
            for stored in page.secrets.into_iter().filter(|s| s.name == name) {
                let id = Id::parse("secret_id", &stored.secret_id).map_err(|e| {
                    ElevenLabsError::BadResponse {
                        operation: operation.clone(),
                        field: "secrets[].secret_id".into(),
                        reason: e.reason,
                    }
                })?;
                found.push(WorkspaceSecret {
                    id,
                    name: stored.name,
                });
            }
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(found),
            }
        }
        Ok(found)
    }

    /// `POST /v1/convai/secrets` `{"type": "new", name, value}`: stores a
    /// new workspace secret and returns its id. Not retried unless the
    /// request surely was not processed, so a lost answer cannot make two.
    pub async fn create_secret(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<Id, ElevenLabsError> {
        let mut call = Call::new(Method::POST, "v1/convai/secrets".into());
        call.body = Some(serde_json::json!({
            "type": "new", "name": name, "value": value.expose_secret(),
        }));
        call.repeat = Repeat::OnlyIfUnprocessed;
        let operation = call.operation();
        let answer = self.execute(call).await?;
        let body: Value = parse_json(&operation, &answer.body)?;
        match body.get("secret_id").and_then(Value::as_str) {
            Some(id) => Id::parse("secret_id", id).map_err(|e| ElevenLabsError::BadResponse {
                operation,
                field: "secret_id".into(),
                reason: e.reason,
            }),
            None => Err(ElevenLabsError::BadResponse {
                operation,
                field: "secret_id".into(),
                reason: "is missing or not a string".into(),
            }),
        }
    }

    /// `PATCH /v1/convai/secrets/{id}` `{"type": "update", name, value}`:
    /// sets the value of a workspace secret.
    pub async fn update_secret(
        &self,
        id: &Id,
        name: &str,
        value: &SecretString,
    ) -> Result<(), ElevenLabsError> {
        let mut call = Call::new(Method::PATCH, format!("v1/convai/secrets/{id}"));
        call.body = Some(serde_json::json!({
            "type": "update", "name": name, "value": value.expose_secret(),
        }));
        self.execute(call).await.map(drop)
    }

    /// The workspace secret named `name`, holding `value`: the one found
    /// by that exact name, with its value set (the API never returns a
    /// secret's value, so it cannot be compared), or a new one. Of several
    /// with the name, the smallest id, so that every replica picks the same.
    pub async fn ensure_secret(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<EnsuredSecret, ElevenLabsError> {
        let found = self.find_secrets(name).await?;
        if found.len() > 1 {
            tracing::warn!(
                name,
                count = found.len(),
                "several ElevenLabs workspace secrets have this name; using the smallest id"
            );
        }
        match found.into_iter().map(|s| s.id).min() {
            Some(id) => {
                self.update_secret(&id, name, value).await?;
                Ok(EnsuredSecret { id, created: false })
            }
            None => {
                let id = self.create_secret(name, value).await?;
                Ok(EnsuredSecret { id, created: true })
            }
        }
    }

    async fn create(&self, desired: &DesiredAgent) -> Result<Id, ElevenLabsError> {
        let mut call = Call::new(Method::POST, "v1/convai/agents/create".into());
        call.body = Some(desired.body());
        call.repeat = Repeat::OnlyIfUnprocessed;
        let operation = call.operation();
        let answer = self.execute(call).await?;
        agent_id_in(&operation, &parse_json(&operation, &answer.body)?)
    }

    async fn get(&self, id: &Id) -> Result<RemoteAgent, ElevenLabsError> {
        #[derive(serde::Deserialize)]
        struct Wire {
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            tags: Option<Vec<String>>,
            #[serde(default)]
            conversation_config: Value,
            #[serde(default)]
            platform_settings: Value,
        }
        let call = Call::new(Method::GET, format!("v1/convai/agents/{id}"));
        let operation = call.operation();
        let answer = self.execute(call).await?;
        let value: Value = parse_json(&operation, &answer.body)?;
        let agent_id = agent_id_in(&operation, &value)?;
        let wire: Wire = serde_json::from_value(value).map_err(|e| bad_body(&operation, e))?;
        Ok(RemoteAgent {
            agent_id,
            name: wire.name.unwrap_or_default(),
            tags: wire.tags.unwrap_or_default(),
            conversation_config: wire.conversation_config,
            platform_settings: wire.platform_settings,
        })
    }

    async fn update(&self, id: &Id, desired: &DesiredAgent) -> Result<(), ElevenLabsError> {
        let mut call = Call::new(Method::PATCH, format!("v1/convai/agents/{id}"));
        call.body = Some(desired.body());
        self.execute(call).await.map(drop)
    }

    async fn delete(&self, id: &Id) -> Result<Deleted, ElevenLabsError> {
        match self
            .execute(Call::new(Method::DELETE, format!("v1/convai/agents/{id}")))
            .await
        {
            Ok(_) => Ok(Deleted::Removed),
            Err(ElevenLabsError::NotFound { .. }) => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<AgentPage, ElevenLabsError> {
        let mut call = Call::new(Method::GET, "v1/convai/agents".into());
        if let Some(size) = query.page_size {
            call.query
                .push(("page_size", size.clamp(1, 100).to_string()));
        }
        if let Some(search) = &query.search {
            call.query.push(("search", search.clone()));
        }
        if let Some(cursor) = &query.cursor {
            call.query.push(("cursor", cursor.clone()));
        }
        let operation = call.operation();
        let answer = self.execute(call).await?;
        parse_json(&operation, &answer.body)
    }

    async fn phone_numbers(&self) -> Result<Vec<PhoneNumber>, ElevenLabsError> {
        let call = Call::new(Method::GET, "v1/convai/phone-numbers".into());
        let operation = call.operation();
        let answer = self.execute(call).await?;
        let wire: Vec<WirePhone> = parse_json(&operation, &answer.body)?;
        wire.into_iter().map(|w| w.checked(&operation)).collect()
    }

    async fn import_phone(
        &self,
        import: &PhoneImport,
        agent: Option<&Id>,
    ) -> Result<Id, ElevenLabsError> {
        let mut call = Call::new(Method::POST, "v1/convai/phone-numbers".into());
        let mut body = import.body();
        if let Some(agent) = agent {
            body["agent_id"] = Value::String(agent.to_string());
        }
        call.body = Some(body);
        call.repeat = Repeat::OnlyIfUnprocessed;
        let operation = call.operation();
        let answer = self.execute(call).await?;
        let body: Value = parse_json(&operation, &answer.body)?;
        id_in(&operation, &body, "phone_number_id")
    }

    async fn assign_phone(
        &self,
        id: &Id,
        agent: Option<&Id>,
    ) -> Result<PhoneNumber, ElevenLabsError> {
        let mut call = Call::new(Method::PATCH, format!("v1/convai/phone-numbers/{id}"));
        call.body = Some(serde_json::json!({ "agent_id": agent.map(Id::as_str) }));
        let operation = call.operation();
        let answer = self.execute(call).await?;
        let wire: WirePhone = parse_json(&operation, &answer.body)?;
        wire.checked(&operation)
    }

    async fn delete_phone(&self, id: &Id) -> Result<Deleted, ElevenLabsError> {
        let call = Call::new(Method::DELETE, format!("v1/convai/phone-numbers/{id}"));
        match self.execute(call).await {
            Ok(_) => Ok(Deleted::Removed),
            Err(ElevenLabsError::NotFound { .. }) => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// Sends `call`, retrying per its [`Repeat`] and the configured budget.
    async fn execute(&self, call: Call) -> Result<Answer, ElevenLabsError> {
        let operation = call.operation();
        let url = self
            .base
            .join(&call.path)
            .expect("paths are built from checked ids");
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(call.method.clone(), url.clone())
                .header("xi-api-key", self.config.api_key.expose_secret())
                .query(&call.query);
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let (error, unprocessed) = match self.attempt(&operation, request).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let worth_it = match call.repeat {
                Repeat::Safe => error.is_retryable(),
                Repeat::OnlyIfUnprocessed => unprocessed,
            };
            if !worth_it || attempt >= self.config.max_retries {
                return Err(error);
            }
            let wait = match error.retry_after() {
                Some(asked) if asked > self.config.max_retry_after => return Err(error),
                Some(asked) => crate::retry::after_asked(asked),
                None => self.backoff(attempt),
            };
            tracing::warn!(%error, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "retrying ElevenLabs call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request. On failure, also says whether ElevenLabs certainly did
    /// not act on it.
    async fn attempt(
        &self,
        operation: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, (ElevenLabsError, bool)> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                (
                    ElevenLabsError::Timeout {
                        operation: operation.to_owned(),
                        after: self.config.request_timeout,
                    },
                    false,
                )
            } else {
                let unprocessed = e.is_connect();
                (
                    ElevenLabsError::Transport {
                        operation: operation.to_owned(),
                        message: crate::telemetry::error_chain(&e),
                    },
                    unprocessed,
                )
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(Answer { headers, body });
        }
        let error = classify(operation, status, &headers, &body);
        let unprocessed = status == StatusCode::TOO_MANY_REQUESTS;
        Err((error, unprocessed))
    }

    /// Backoff before retry `attempt` (counted from 0).
    fn backoff(&self, attempt: u32) -> Duration {
        crate::retry::backoff(
            attempt + 1,
            self.config.backoff_base,
            self.config.backoff_max,
        )
    }
}

impl AgentPlatform for ElevenLabsClient {
    fn create_agent<'a>(
        &'a self,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        Box::pin(self.create(desired))
    }

    fn get_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<RemoteAgent, ElevenLabsError>> {
        Box::pin(self.get(id))
    }

    fn update_agent<'a>(
        &'a self,
        id: &'a Id,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<(), ElevenLabsError>> {
        Box::pin(self.update(id, desired))
    }

    fn delete_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        Box::pin(self.delete(id))
    }

    fn list_agents<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<AgentPage, ElevenLabsError>> {
        Box::pin(self.list(query))
    }

    fn list_phone_numbers(&self) -> BoxFuture<'_, Result<Vec<PhoneNumber>, ElevenLabsError>> {
        Box::pin(self.phone_numbers())
    }

    fn import_phone_number<'a>(
        &'a self,
        import: &'a PhoneImport,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        Box::pin(self.import_phone(import, agent))
    }

    fn assign_phone_number<'a>(
        &'a self,
        id: &'a Id,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<PhoneNumber, ElevenLabsError>> {
        Box::pin(self.assign_phone(id, agent))
    }

    fn delete_phone_number<'a>(
        &'a self,
        id: &'a Id,
    ) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        Box::pin(self.delete_phone(id))
    }
}

/// A phone-number answer: the fields every provider's response model has.
#[derive(serde::Deserialize)]
struct WirePhone {
    phone_number_id: String,
    phone_number: String,
    #[serde(default)]
    label: String,
    /// A `const` with default `twilio` in the response models.
    #[serde(default = "twilio")]
    provider: PhoneProvider,
    #[serde(default)]
    assigned_agent: Option<WireAgentInfo>,
}

/// `PhoneNumberAgentInfo`.
#[derive(serde::Deserialize)]
struct WireAgentInfo {
    agent_id: String,
}

fn twilio() -> PhoneProvider {
    PhoneProvider::Twilio
}

impl WirePhone {
    fn checked(self, operation: &str) -> Result<PhoneNumber, ElevenLabsError> {
        let phone_number_id = Id::parse("phone_number_id", &self.phone_number_id).map_err(|e| {
            ElevenLabsError::BadResponse {
                operation: operation.to_owned(),
                field: "phone_number_id".into(),
                reason: e.reason,
            }
        })?;
        Ok(PhoneNumber {
            phone_number_id,
            phone_number: self.phone_number,
            label: self.label,
            provider: self.provider,
            assigned_agent: self.assigned_agent.map(|a| a.agent_id),
        })
    }
}

fn parse_json<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, ElevenLabsError> {
    serde_json::from_slice(body).map_err(|e| bad_body(operation, e))
}

fn bad_body(operation: &str, e: serde_json::Error) -> ElevenLabsError {
    ElevenLabsError::BadResponse {
        operation: operation.to_owned(),
        field: "body".into(),
        reason: e.to_string(),
    }
}

/// The `agent_id` of an answer, checked like every id we put in a path.
fn agent_id_in(operation: &str, body: &Value) -> Result<Id, ElevenLabsError> {
    id_in(operation, body, "agent_id")
}

/// The id in `field` of an answer, checked like every id we put in a path.
fn id_in(operation: &str, body: &Value, field: &str) -> Result<Id, ElevenLabsError> {
    let bad = |reason: &str| ElevenLabsError::BadResponse {
        operation: operation.to_owned(),
        field: field.into(),
        reason: reason.into(),
    };
    match body.get(field) {
        None | Some(Value::Null) => Err(bad("is missing")),
        Some(Value::String(id)) => Id::parse(field, id).map_err(|e| bad(&e.reason)),
        Some(_) => Err(bad("is not a string")),
    }
}

/// Turns a non-2xx answer into the error callers act on.
fn classify(
    operation: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ElevenLabsError {
    let operation = operation.to_owned();
    let message = provider_message(body);
    let code = status.as_u16();
    match code {
        404 => ElevenLabsError::NotFound { operation },
        400 | 422 => ElevenLabsError::Validation {
            operation,
            status: code,
            message,
        },
        401 | 403 => ElevenLabsError::Auth {
            operation,
            status: code,
            message,
        },
        429 => ElevenLabsError::RateLimited {
            operation,
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now())),
        },
        408 | 500..=599 => ElevenLabsError::Server {
            operation,
            status: code,
            message,
        },
        _ => ElevenLabsError::Unexpected {
            operation,
            status: code,
            message,
        },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The human part of an ElevenLabs error body: `detail.message`, a
/// `detail` string, FastAPI's `detail: [{loc, msg}]`, or the raw text.
fn provider_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("detail") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(detail)) => detail
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| Value::Object(detail.clone()).to_string()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let loc = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|parts| {
                            parts
                                .iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                    if loc.is_empty() {
                        msg.to_owned()
                    } else {
                        format!("{loc}: {msg}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => value
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| text.trim().to_owned(), str::to_owned),
        },
        Err(_) => text.trim().to_owned(),
    };
    if message.is_empty() {
        return "(empty body)".into();
    }
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 10:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn provider_messages_are_found_in_each_error_shape() {
        assert_eq!(
            provider_message(
                br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
            ),
            "Invalid API key"
        );
        assert_eq!(
            provider_message(br#"{"detail":[{"loc":["body","conversation_config","tts","voice_id"],"msg":"voice not found","type":"value_error"}]}"#),
            "body.conversation_config.tts.voice_id: voice not found"
        );
        assert_eq!(
            provider_message(br#"{"detail":"Not allowed"}"#),
            "Not allowed"
        );
        assert_eq!(provider_message(b"Bad Gateway\n"), "Bad Gateway");
        assert_eq!(provider_message(b""), "(empty body)");
        assert_eq!(
            provider_message("x".repeat(2000).as_bytes())
                .chars()
                .count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn bad_configuration_names_the_variable() {
        let key = || SecretString::from("k");
        for url in ["not a url", "ftp://example.com", "https://example.com/?a=1"] {
            let err = ElevenLabsClient::new(ClientConfig::new(url, key())).unwrap_err();
            assert!(err.to_string().starts_with("ELEVENLABS_BASE_URL"), "{err}");
        }
        let err =
            ElevenLabsClient::new(ClientConfig::new(DEFAULT_BASE_URL, SecretString::from(" ")))
                .unwrap_err();
        assert_eq!(err.to_string(), "ELEVENLABS_API_KEY is empty");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let config = ClientConfig::new(DEFAULT_BASE_URL, SecretString::from("sk_live_secret"));
        let client = ElevenLabsClient::new(config.clone()).unwrap();
        for shown in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!shown.contains("sk_live_secret"), "{shown}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let client =
            ElevenLabsClient::new(ClientConfig::new(DEFAULT_BASE_URL, SecretString::from("k")))
                .unwrap();
        for attempt in 0..8 {
            let ceiling = (Duration::from_millis(250) * (1 << attempt)).min(Duration::from_secs(5));
            let wait = client.backoff(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
    }
}
