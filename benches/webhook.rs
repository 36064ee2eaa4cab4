//! The `message` webhook under load, against a bare axum handler in the
//! same run. Printed one per line as `name: value`.
//!
//! The bridge runs as in production, with the scripted agent answering at
//! once: signature check, JSON parsing, the cached tenant lookup (SQLite
//! behind it), the conversation check, one agent-log record per turn to a
//! JSON-lines file, and the seed-shaped answer. The baseline handler
//! parses the same JSON and answers the same shape, nothing else. Both are
//! driven from this process by `WEBHOOK_BENCH_CLIENTS` concurrent
//! keep-alive clients (default 32) over loopback, for
//! `WEBHOOK_BENCH_REQUESTS` requests each run (default 100000).
//!
//! Run with `cargo bench --bench webhook`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use voice_operator::actionlog::{ActionLog, ActionLogConfig, ShipperConfig, SinkConfig};
use voice_operator::agent::scripted::ScriptedRuntime;
use voice_operator::agent::tools::{Tools, ToolsConfig};
use voice_operator::elevenlabs::signature;
use voice_operator::http::state::{AppState, HttpConfig};
use voice_operator::ids::Id;
use voice_operator::messaging::Messaging;
use voice_operator::tenant::cache::{CachedStore, DEFAULT_CAPACITY, DEFAULT_TTL};
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{Seen, SpecGeneration, TenantKey, TenantStore};
use voice_operator::testkit::fixtures::tenant_settings;

/// The allocator the voice-operator binary runs with (see src/main.rs),
/// so the figures are those of what ships; both sides share it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SECRET: &str = "wsec_bench";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed's body, as the baseline reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SeedEvent {
    event: String,
    conversation_id: String,
    message: Option<Content>,
    metadata: Meta,
    duration: Option<f64>,
}

#[derive(Deserialize)]
struct Content {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Meta {
    business_id: String,
    location_id: String,
}

async fn bare(Json(event): Json<SeedEvent>) -> Json<Value> {
    let said = event.message.map(|m| m.content).unwrap_or_default();
    Json(json!({
        "response": format!("[scripted agent] You said: {said}"),
        "continueConversation": true,
        "actions": [],
    }))
}

struct Figures {
    p50_us: f64,
    p99_us: f64,
    rps: f64,
}

/// Drives `url` with `clients` keep-alive clients, `total` requests in all;
/// each client sends its own body with its own signature.
async fn drive(url: &str, clients: usize, total: usize) -> Figures {
    let now = chrono::Utc::now().timestamp();
    let per_client = total / clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let body = json!({
                "event": "message",
                "conversationId": format!("conv_bench_{c}"),
                "message": {"content": "What time do you open tomorrow?"},
                "metadata": {"businessId": "B0100001", "locationId": "L0100001"},
                "duration": 5,
            })
            .to_string();
            let header = signature::sign(&SecretString::from(SECRET), now, body.as_bytes());
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(signature::HEADER, &header)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the server answers");
                assert!(response.status().is_success(), "{}", response.status());
                let bytes = response.bytes().await.expect("a body");
                assert!(bytes.starts_with(b"{"));
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures {
        p50_us: at(0.50).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
        rps: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let clients = env_or("WEBHOOK_BENCH_CLIENTS", 32);
    let requests = env_or("WEBHOOK_BENCH_REQUESTS", 100_000);
    let dir = tempfile::tempdir().unwrap();

    let sqlite = SqliteStore::open(&dir.path().join("tenants.db"))
        .await
        .unwrap();
    let key = TenantKey::parse("B0100001", "L0100001").unwrap();
    let settings = tenant_settings("agent_bench", true);
    sqlite
        .put(
            &key,
            &Id::parse("uid", "bench-owner").unwrap(),
            Seen::Nothing,
            SpecGeneration::default(),
            &settings,
        )
        .await
        .unwrap();
    let store: Arc<dyn TenantStore> = Arc::new(CachedStore::new(
        Arc::new(sqlite),
        DEFAULT_TTL,
        DEFAULT_CAPACITY,
    ));
    let log_path = dir.path().join("agent-log.jsonl");
    let (log, shipper) = ActionLog::open(&ActionLogConfig {
        sink: SinkConfig::JsonLines {
            path: log_path.clone(),
        },
        shipper: ShipperConfig {
            queue_capacity: 1 << 20,
            ..ShipperConfig::default()
        },
        echo: false,
    })
    .await
    .unwrap();
    let tools = Arc::new(Tools::new(
        ToolsConfig::default(),
        Messaging::default(),
        log.clone(),
    ));
    let bridge = AppState::new(
        HttpConfig::new(SecretString::from(SECRET)),
        store,
        Arc::new(ScriptedRuntime),
        tools,
        log.clone(),
    );
    let webhook_url = format!(
        "{}/api/elevenlabs/webhook",
        serve(voice_operator::http::bridge_routes(Arc::new(bridge))).await
    );
    let bare_url = format!(
        "{}/api/elevenlabs/webhook",
        serve(axum::Router::new().route("/api/elevenlabs/webhook", post(bare))).await
    );

    // Warm both up (connections, caches, allocator), then measure the
    // baseline first and the bridge second, alternately twice so that
    // neither gets the machine only when it is warmer.
    drive(&bare_url, clients, clients * 50).await;
    drive(&webhook_url, clients, clients * 50).await;
    let mut bare_runs = Vec::new();
    let mut hook_runs = Vec::new();
    for _ in 0..2 {
        bare_runs.push(drive(&bare_url, clients, requests / 2).await);
        hook_runs.push(drive(&webhook_url, clients, requests / 2).await);
    }
    let mean = |runs: &[Figures], f: fn(&Figures) -> f64| {
        runs.iter().map(f).sum::<f64>() / runs.len() as f64
    };
    let b50 = mean(&bare_runs, |f| f.p50_us);
    let b99 = mean(&bare_runs, |f| f.p99_us);
    let w50 = mean(&hook_runs, |f| f.p50_us);
    let w99 = mean(&hook_runs, |f| f.p99_us);
    let wrps = mean(&hook_runs, |f| f.rps);
    let brps = mean(&bare_runs, |f| f.rps);

    let logged = log.metrics();
    drop(log);
    let report = shipper.shutdown(Duration::from_secs(30)).await;
    let lines = std::fs::read_to_string(&log_path).unwrap().lines().count();

    println!("clients: {clients}");
    println!("requests_per_side: {}", requests / 2 * 2);
    println!("webhook_p50_us: {w50:.0}");
    println!("webhook_p99_us: {w99:.0}");
    println!("baseline_p50_us: {b50:.0}");
    println!("baseline_p99_us: {b99:.0}");
    println!("p99_ratio: {:.2}", w99 / b99);
    println!("webhook_rps: {wrps:.0}");
    println!("baseline_rps: {brps:.0}");
    println!("agent_log_records_written: {lines}");
    println!("agent_log_enqueued: {}", logged.enqueued);
    println!("agent_log_dropped: {}", logged.dropped);
    println!("agent_log_shutdown: {report}");
}
