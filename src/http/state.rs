//! What the ElevenLabs-facing routes share: their configuration, the
//! tenant lookup, the signature and bearer checks, and the per-replica
//! memory of which tenant each conversation belongs to.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::error::ApiError;
use super::metrics::HttpMetrics;
use super::turns::TurnBook;
use crate::actionlog::{Action, ActionLog, Money, Outcome, Recipient, VoiceCall};
use crate::admin::AgentAdmin;
use crate::agent::{AgentRuntime, ToolRunner};
use crate::elevenlabs::AgentPlatform;
use crate::elevenlabs::signature;
use crate::ids::Id;
use crate::tenant::{Read, TenantConfig, TenantKey, TenantStore};

/// Largest request body of a turn, init or admin call, unless configured.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
/// Largest post-call body (post_call_audio carries the call), unless
/// configured.
pub const DEFAULT_POST_CALL_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Longest a request may take before it gets 408, unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a custom-LLM turn may say nothing before the caller hears
/// buffer words, unless configured: well inside ElevenLabs' cascade
/// timeout (4 s by default, 2 s at the least).
pub const DEFAULT_BUFFER_WORDS_AFTER: Duration = Duration::from_millis(600);

/// Limits and secrets of the bridge routes.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// HMAC secret of the `ElevenLabs-Signature` header.
    pub webhook_secret: SecretString,
    /// Bearer secret ElevenLabs sends to the custom-LLM route; without one
    /// the route takes unauthenticated requests.
    pub llm_secret: Option<SecretString>,
    /// Bearer token of the admin routes; without one they answer 401.
    pub admin_token: Option<SecretString>,
    /// Largest body of a turn, init or admin request.
    pub body_limit: usize,
    /// Largest post-call body (`post_call_audio` carries the whole call).
    pub post_call_body_limit: usize,
    /// Longest a request may take before the server answers 408.
    pub request_timeout: Duration,
    /// Where call audio is kept for tenants with `recordCalls`; not kept
    /// when unset.
    pub recordings_dir: Option<PathBuf>,
    /// How long a custom-LLM turn may say nothing before the caller hears
    /// buffer words; never when unset.
    pub buffer_words_after: Option<Duration>,
    /// What one ElevenLabs credit costs, to price calls from their
    /// credits; calls ElevenLabs gives no fiat cost for have none without.
    pub price_per_credit: Option<Money>,
}

impl HttpConfig {
    /// Defaults around `webhook_secret`.
    pub fn new(webhook_secret: SecretString) -> HttpConfig {
        HttpConfig {
            webhook_secret,
            llm_secret: None,
            admin_token: None,
            body_limit: DEFAULT_BODY_LIMIT,
            post_call_body_limit: DEFAULT_POST_CALL_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            recordings_dir: None,
            buffer_words_after: Some(DEFAULT_BUFFER_WORDS_AFTER),
            price_per_credit: None,
        }
    }
}

/// Everything the bridge routes use.
pub struct AppState {
    pub config: HttpConfig,
    /// The tenant store, behind the read cache.
    pub store: Arc<dyn TenantStore>,
    pub runtime: Arc<dyn AgentRuntime>,
    pub tools: Arc<dyn ToolRunner>,
    pub log: ActionLog,
    /// Resolves ElevenLabs agent ids to tenants (through the agents'
    /// `tenant:` tag) for requests that carry only an agent id.
    pub agents: Option<Arc<dyn AgentPlatform>>,
    /// The admin API's backend.
    pub admin: Option<Arc<dyn AgentAdmin>>,
    /// The routes' counters; registered on `/metrics` by whoever serves it.
    pub metrics: HttpMetrics,
    /// This replica's running and recent custom-LLM turns, which retried
    /// requests follow.
    pub turns: TurnBook,
    conversations: Recent<String, Conversation>,
    agent_tenants: Recent<String, TenantKey>,
    agent_languages: Recent<String, String>,
    delivered: Recent<(String, String), ()>,
}

/// What this replica knows of a conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub tenant: TenantKey,
    pub started: Instant,
}

/// Longest a turn waits for ElevenLabs to name its agent's language; the
/// turn must answer well within ElevenLabs' LLM cascade timeout (4 s by
/// default).
pub const LANGUAGE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long this replica remembers a conversation, an agent's tenant or
/// language, or a delivered post-call event.
const MEMORY: Duration = Duration::from_secs(6 * 3600);
/// How many of each it remembers at most.
const MEMORY_CAPACITY: usize = 200_000;

impl AppState {
    pub fn new(
        config: HttpConfig,
        store: Arc<dyn TenantStore>,
        runtime: Arc<dyn AgentRuntime>,
        tools: Arc<dyn ToolRunner>,
        log: ActionLog,
    ) -> AppState {
        AppState {
            config,
            store,
            runtime,
            tools,
            log,
            agents: None,
            admin: None,
            metrics: HttpMetrics::default(),
            turns: TurnBook::default(),
            conversations: Recent::new(MEMORY, MEMORY_CAPACITY),
            agent_tenants: Recent::new(MEMORY, MEMORY_CAPACITY),
            agent_languages: Recent::new(MEMORY, MEMORY_CAPACITY),
            delivered: Recent::new(MEMORY, MEMORY_CAPACITY),
        }
    }

    /// Checks the `ElevenLabs-Signature` header against the raw body.
    pub fn verify_signature(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
        let header = headers
            .get(signature::HEADER)
            .ok_or_else(|| {
                ApiError::Unauthorized(format!("the {} header is missing", signature::HEADER))
            })?
            .to_str()
            .map_err(|_| ApiError::Unauthorized(format!("{} is not text", signature::HEADER)))?;
        signature::verify(&self.config.webhook_secret, header, body, unix_now())?;
        Ok(())
    }

    /// The tenant `key`, enabled or not.
    pub async fn tenant(&self, key: &TenantKey) -> Result<TenantConfig, ApiError> {
        match self.store.get(key, Read::Eventual).await {
            Ok(Some(tenant)) => Ok(tenant),
            Ok(None) => Err(ApiError::UnknownTenant(key.clone())),
            Err(e) => Err(ApiError::Unavailable(format!(
                "the tenant store cannot be read: {e}"
            ))),
        }
    }

    /// Refuses a request of `tenant` about another tenant's agent.
    pub fn check_agent(
        &self,
        tenant: &TenantConfig,
        agent_id: Option<&str>,
    ) -> Result<(), ApiError> {
        match agent_id {
            Some(agent) if agent != tenant.settings.agent_id.as_str() => Err(ApiError::Forbidden(
                format!("agent {agent} does not belong to {}", tenant.key),
            )),
            _ => Ok(()),
        }
    }

    /// Files `conversation` under `tenant`, or refuses it if this replica
    /// has already seen it under another tenant.
    pub fn claim_conversation(
        &self,
        conversation: &str,
        tenant: &TenantKey,
    ) -> Result<Conversation, ApiError> {
        let entry = self
            .conversations
            .get_or_insert(conversation.to_owned(), || Conversation {
                tenant: tenant.clone(),
                started: Instant::now(),
            });
        if &entry.tenant != tenant {
            return Err(ApiError::Forbidden(format!(
                "conversation {conversation} does not belong to {tenant}"
            )));
        }
        Ok(entry)
    }

    /// The tenant this replica saw `conversation` under, if any.
    pub fn conversation(&self, conversation: &str) -> Option<Conversation> {
        self.conversations.get(&conversation.to_owned())
    }

    /// The tenant whose item names ElevenLabs agent `agent_id`, found
    /// through the agent's `tenant:<business>:<location>` tag.
    pub async fn tenant_of_agent(&self, agent_id: &Id) -> Result<TenantConfig, ApiError> {
        let key = match self.agent_tenants.get(&agent_id.to_string()) {
            Some(key) => key,
            None => {
                let platform = self.agents.as_ref().ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "agent {agent_id} cannot be looked up (no ElevenLabs access configured)"
                    ))
                })?;
                let agent = platform.get_agent(agent_id).await.map_err(|e| {
                    if matches!(e, crate::elevenlabs::ElevenLabsError::NotFound { .. }) {
                        ApiError::NotFound(format!("agent {agent_id} does not exist"))
                    } else {
                        ApiError::Unavailable(format!(
                            "ElevenLabs cannot be asked about {agent_id}: {e}"
                        ))
                    }
                })?;
                let key = agent
                    .tags
                    .iter()
                    .find_map(|tag| {
                        let rest = tag.strip_prefix("tenant:")?;
                        let (business, location) = rest.split_once(':')?;
                        TenantKey::parse(business, location).ok()
                    })
                    .ok_or_else(|| {
                        ApiError::NotFound(format!(
                            "agent {agent_id} is not managed by voice-operator"
                        ))
                    })?;
                self.agent_tenants.insert(agent_id.to_string(), key.clone());
                key
            }
        };
        let tenant = self.tenant(&key).await?;
        self.check_agent(&tenant, Some(agent_id.as_str()))?;
        Ok(tenant)
    }

    /// The language ElevenLabs agent `agent_id` speaks
    /// (`conversation_config.agent.language`), or `None` when it cannot be
    /// asked quickly: without ElevenLabs access, on an error, or past
    /// [`LANGUAGE_LOOKUP_TIMEOUT`].
    pub async fn agent_language(&self, agent_id: &Id) -> Option<String> {
        if let Some(language) = self.agent_languages.get(&agent_id.to_string()) {
            return Some(language);
        }
        let platform = self.agents.as_ref()?;
        let agent =
            match tokio::time::timeout(LANGUAGE_LOOKUP_TIMEOUT, platform.get_agent(agent_id)).await
            {
                Ok(Ok(agent)) => agent,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the agent's language cannot be read");
                    return None;
                }
                Err(_) => {
                    tracing::debug!("the agent's language was not read in time");
                    return None;
                }
            };
        let language = agent.conversation_config["agent"]["language"]
            .as_str()?
            .to_owned();
        self.agent_languages
            .insert(agent_id.to_string(), language.clone());
        Some(language)
    }

    /// Marks a post-call event as handled; false when it was already.
    pub fn first_delivery(&self, kind: &str, conversation: &str) -> bool {
        self.delivered
            .insert_new((kind.to_owned(), conversation.to_owned()), ())
    }

    /// Logs one `voice_call` record; a full queue is counted by the log
    /// and reported here, the request goes on. With `event`, the record's
    /// request id is derived from it, so redeliveries of that event give
    /// the same id.
    pub fn log_call(
        &self,
        tenant: &TenantKey,
        outcome: Outcome,
        call: VoiceCall,
        caller: Option<&str>,
        event: Option<&str>,
    ) {
        let action = Action {
            business_id: tenant.business_id.to_string(),
            location_id: tenant.location_id.to_string(),
            agent_session_id: Some(call.conversation_id.clone()),
            recipient: Recipient {
                phone: caller.map(str::to_owned),
                ..Recipient::default()
            },
            outcome,
        };
        let logged = match event {
            Some(event) => self.log.log_agent_voice_call_event(action, call, event),
            None => self.log.log_agent_voice_call(action, call),
        };
        if let Err(e) = logged {
            tracing::error!(error = %e, "voice call not logged");
        }
    }

    /// Checks a bearer token against `expected`, in constant time.
    pub fn check_bearer(
        headers: &HeaderMap,
        expected: &SecretString,
        what: &str,
    ) -> Result<(), ApiError> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized(format!("{what} needs a bearer token")))?;
        if constant_time_eq(given.trim().as_bytes(), expected.expose_secret().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized(format!(
                "the bearer token for {what} is wrong"
            )))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A bounded, expiring map: what one replica remembers between requests.
struct Recent<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Recent<K, V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Recent {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        self.make_room(&mut entries);
        entries.insert(key, (Instant::now(), value));
    }

    /// Inserts unless a live entry is there; true when inserted.
    fn insert_new(&self, key: K, value: V) -> bool {
        let mut entries = self.lock();
        if entries
            .get(&key)
            .is_some_and(|(at, _)| at.elapsed() < self.ttl)
        {
            return false;
        }
        self.make_room(&mut entries);
        entries.insert(key, (Instant::now(), value));
        true
    }

    fn get_or_insert(&self, key: K, make: impl FnOnce() -> V) -> V {
        let mut entries = self.lock();
        if let Some((at, value)) = entries.get(&key)
            && at.elapsed() < self.ttl
        {
            return value.clone();
        }
        self.make_room(&mut entries);
        let value = make();
        entries.insert(key, (Instant::now(), value.clone()));
        value
    }

    /// At capacity: drop expired entries, then the oldest tenth.
    fn make_room(&self, entries: &mut HashMap<K, (Instant, V)>) {
        if entries.len() < self.capacity {
            return;
        }
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        if entries.len() >= self.capacity {
            let mut ages: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
            ages.sort_unstable();
            let cut = ages[(self.capacity / 10).min(ages.len() - 1)];
            entries.retain(|_, (at, _)| *at > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_is_bounded_and_keeps_the_newest() {
        let recent: Recent<u32, u32> = Recent::new(Duration::from_secs(60), 100);
        for i in 0..1000 {
            recent.insert(i, i);
        }
        assert!(recent.lock().len() <= 100);
        assert_eq!(recent.get(&999), Some(999));
        assert!(recent.insert_new(5000, 1));
        assert!(!recent.insert_new(5000, 2));
        assert_eq!(recent.get_or_insert(5000, || 3), 1);
    }

    #[test]
    fn bearer_tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
