//! The bridge routes served on 127.0.0.1:0 with a real SQLite tenant
//! store and an action log whose sink keeps every record for the test.

use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use tokio::net::TcpListener;
use voice_operator::actionlog::record::EncodedRecord;
use voice_operator::actionlog::sink::{ActionSink, PutOutcome};
use voice_operator::actionlog::{ActionLog, ShipperConfig, ShipperHandle};
use voice_operator::agent::scripted::ScriptedRuntime;
use voice_operator::agent::tools::{Tools, ToolsConfig};
use voice_operator::agent::{AgentRuntime, ToolRunner};
use voice_operator::elevenlabs::signature;
use voice_operator::http::metrics::HttpMetrics;
use voice_operator::http::state::{AppState, HttpConfig};
use voice_operator::ids::Id;
use voice_operator::messaging::Messaging;
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{Read, Seen, SpecGeneration, TenantKey, TenantSettings, TenantStore};
use voice_operator::testkit::sse::{self, Events};

/// The webhook secret of the shared signature vectors.
pub const WEBHOOK_SECRET: &str = "wsec_test_7f3c2a9e51d84b06";
pub const LLM_SECRET: &str = "llm-bearer-test";
pub const ADMIN_TOKEN: &str = "admin-token-test";

/// A sink that keeps what it is sent, decoded.
#[derive(Clone, Default)]
pub struct CaptureSink {
    pub records: Arc<Mutex<Vec<Value>>>,
}

impl CaptureSink {
    pub fn records(&self) -> Vec<Value> {
        self.records.lock().unwrap().clone()
    }
}

impl ActionSink for CaptureSink {
    fn put<'a>(&'a self, batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome> {
        Box::pin(async move {
            let mut records = self.records.lock().unwrap();
            for r in batch {
                records.push(serde_json::from_slice(&r.data).expect("records are JSON"));
            }
            PutOutcome::Delivered
        })
    }

    fn describe(&self) -> String {
        "test capture".into()
    }
}

/// An action log that ships to a [`CaptureSink`] within a few ms.
pub fn capture_log() -> (ActionLog, ShipperHandle, CaptureSink) {
    let sink = CaptureSink::default();
    let config = ShipperConfig {
        flush_interval: Duration::from_millis(5),
        ..ShipperConfig::default()
    };
    let (log, shipper) = ActionLog::start(Arc::new(sink.clone()), config).unwrap();
    (log, shipper, sink)
}

pub use voice_operator::testkit::fixtures::tenant_settings as settings;

/// A running bridge.
pub struct TestBridge {
    pub url: String,
    pub sink: CaptureSink,
    pub store: Arc<dyn TenantStore>,
    pub dir: tempfile::TempDir,
    /// The routes' counters.
    pub metrics: HttpMetrics,
    /// Held so the shipper keeps running for as long as the bridge.
    _shipper: ShipperHandle,
}

/// What to build the bridge from; `Default` is the scripted runtime and
/// no tools configured.
pub struct Options {
    pub runtime: Arc<dyn AgentRuntime>,
    pub tools: Option<Arc<dyn ToolRunner>>,
    pub tools_config: ToolsConfig,
    pub messaging: Messaging,
    pub configure: Box<dyn FnOnce(&mut AppState) + Send>,
    pub body_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime: Arc::new(ScriptedRuntime),
            tools: None,
            tools_config: ToolsConfig::default(),
            messaging: Messaging::default(),
            configure: Box::new(|_| {}),
            body_limit: 64 * 1024,
        }
    }
}

impl TestBridge {
    pub async fn start(options: Options) -> TestBridge {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn TenantStore> = Arc::new(
            SqliteStore::open(&dir.path().join("tenants.db"))
                .await
                .unwrap(),
        );
        let (log, shipper, sink) = capture_log();
        let tools = options.tools.unwrap_or_else(|| {
            Arc::new(Tools::new(
                options.tools_config,
                options.messaging,
                log.clone(),
            ))
        });
        let mut config = HttpConfig::new(SecretString::from(WEBHOOK_SECRET));
        config.llm_secret = Some(SecretString::from(LLM_SECRET));
        config.admin_token = Some(SecretString::from(ADMIN_TOKEN));
        config.body_limit = options.body_limit;
        config.recordings_dir = Some(dir.path().join("recordings"));
        let mut bridge = AppState::new(config, store.clone(), options.runtime, tools, log);
        (options.configure)(&mut bridge);
        let metrics = bridge.metrics.clone();
        let router = voice_operator::http::bridge_routes(Arc::new(bridge));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        TestBridge {
            url,
            sink,
            store,
            dir,
            metrics,
            _shipper: shipper,
        }
    }

    /// Stores a tenant owned by a test uid.
    pub async fn tenant(&self, business: &str, location: &str, agent: &str, enabled: bool) {
        self.tenant_with(business, location, settings(agent, enabled))
            .await;
    }

    /// Stores a tenant with `settings`, owned by a test uid.
    pub async fn tenant_with(&self, business: &str, location: &str, settings: TenantSettings) {
        let key = TenantKey::parse(business, location).unwrap();
        let owner = Id::parse("uid", &format!("uid-{business}-{location}")).unwrap();
        let seen = Seen::of(self.store.get(&key, Read::Strong).await.unwrap().as_ref());
        let planned = SpecGeneration::default();
        let put = self.store.put(&key, &owner, seen, planned, &settings);
        put.await.unwrap();
    }

    /// The routes' metrics as `/metrics` shows them.
    pub fn metrics_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.metrics.register(&mut registry);
        voice_operator::controller::metrics::encode(&registry)
    }

    /// Every record shipped so far, after letting the shipper catch up.
    pub async fn records(&self) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(60)).await;
        self.sink.records()
    }
}

/// POSTs `body` as JSON, signed as ElevenLabs signs its webhooks.
pub async fn signed_post(url: &str, body: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("ElevenLabs-Signature", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// POSTs `body` signed, as [`signed_post`]; the status and the JSON answer.
pub async fn signed_json(url: &str, body: &Value) -> (u16, Value) {
    json_of(signed_post(url, body.to_string().as_bytes()).await).await
}

/// POSTs `body` as JSON with the bearer token `token`.
pub async fn bearer_post(url: &str, token: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// POSTs `request` to the custom-LLM route at `url` with the LLM bearer,
/// checks that the answer is a 200 event stream, and gives its events.
pub async fn llm_events(url: &str, request: &Value) -> Events {
    let response = bearer_post(url, LLM_SECRET, request).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    sse::events(response)
}

/// The status and the JSON body (null when there is none).
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The `ElevenLabs-Signature` header for `body`, made now.
pub fn sign(body: &[u8]) -> String {
    signature::sign(
        &SecretString::from(WEBHOOK_SECRET),
        chrono::Utc::now().timestamp(),
        body,
    )
}
