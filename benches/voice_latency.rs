//! How long a caller waits for words: ElevenLabs' custom-LLM calls through
//! the bridge to a Bedrock agent that writes like a model. Printed one per
//! line as `name: value unit`.
//!
//! The bridge is built as `voice-operator run` builds it (`app::build_bridge`
//! from the `run` flags, served by `app::Serving`): the bearer check,
//! the cached tenant lookup (SQLite behind it), the turn book, buffer words
//! after `--buffer-words-ms` (600), one agent-log record per turn to a
//! JSON-lines file, and the Bedrock runtime with the official
//! `aws-sdk-bedrockagentruntime` client, pointed through `AWS_ENDPOINT_URL`
//! at the Bedrock stand-in (`testkit::fake_bedrock`, real event-stream
//! frames). The stand-in answers like an agent: the final answer in ten
//! chunks of `applyGuardrailInterval` characters, the first 400 ms after
//! the request and then one every 40 ms (`streamFinalResponse`); unstreamed,
//! the whole answer when the last chunk would have been written (760 ms).
//! One turn in three first hands control back (`returnControl`) for
//! `query_app_server`, which takes 150 ms at an app-server stand-in in this
//! process; the answer comes after the results.
//!
//! `VOICE_LATENCY_CALLS` concurrent calls (default 50) say
//! `VOICE_LATENCY_TURNS` turns in all (default 1000), each turn sent as
//! ElevenLabs sends it (`POST .../chat/completions`, `stream: true`, bearer
//! token, `X-Conversation-Id`, the agent's prompt and the conversation so
//! far) and read as server-sent events. Per turn: the time from sending
//! to the first chunk with words (`first_words`, buffer words included),
//! to the first of the model's words (`first_model_words`), and to
//! `[DONE]`. The floor is the stand-in's own wait for that turn (400 ms, or
//! 150 + 400 ms with the tool; `[DONE]` 360 ms later), so `added_over_floor`
//! is what the bridge, the SDK and loopback add. A client that calls the
//! stand-in directly with the SDK measures its first chunk in the same run
//! (`direct_first_chunk`). The same turns run again with
//! `--bedrock-stream false` (what the bridge did before streaming), and
//! `ratio_to_non_streaming_p50` compares the first words.
//!
//! Run with `cargo bench --bench voice_latency`.
//!
//! The calls of the first two runs start together (in step: the worst
//! case, fifty first chunks at once on two cores); a third streaming run
//! spreads their starts over one turn (`staggered_*`), as independent
//! callers overlap. The callers' HTTP clients are built before any call
//! starts. Measured on the 2-core development machine, otherwise idle
//! (load average 0.4 and 0.3), two runs: added over the floor p50 2.4 and
//! 2.5 ms, p99 10.8 and 10.2 ms in step; p50 1.8 and 1.7 ms, p99 4.3 and
//! 4.4 ms spread; the direct SDK client's first chunk, fifty in step, p99
//! 404.1 and 404.0 ms; first words p50 402.4 ms against 601.6 ms with
//! streaming off (`ratio_to_non_streaming_p50` 0.67). The README has the
//! table and where the CPU of a turn goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use clap::Parser;
use secrecy::SecretString;
use serde_json::json;
use tokio::net::TcpListener;
use voice_operator::agent::bedrock::DEFAULT_GUARDRAIL_INTERVAL;
use voice_operator::app::{BridgeBackends, Flush, RouteSecrets, Serving, build_bridge};
use voice_operator::config::bridge::{AgentRuntimeKind, BridgeArgs};
use voice_operator::config::{ActionLogArgs, Secrets};
use voice_operator::elevenlabs::model::CONVERSATION_ID_HEADER;
use voice_operator::elevenlabs::spoken::{BUFFER_WORDS, in_language};
use voice_operator::elevenlabs::{ClientConfig, ElevenLabsClient};
use voice_operator::ids::Id;
use voice_operator::tenant::sqlite::SqliteStore;
use voice_operator::tenant::{TenantKey, TenantStore};
use voice_operator::testkit::fake_bedrock::{FakeBedrock, Reply, Seen, function_calls};
use voice_operator::testkit::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use voice_operator::testkit::fixtures::tenant_settings;
use voice_operator::testkit::sse;

/// The allocator the voice-operator binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const LLM_SECRET: &str = "llm-bench-secret";
const BUSINESS: &str = "B0100001";
const LOCATION: &str = "L0100001";
const AGENT: &str = "agent_bench";

/// When the stand-in writes the first chunk of a final answer.
const FIRST_CHUNK: Duration = Duration::from_millis(400);
/// Between two chunks.
const CHUNK_EVERY: Duration = Duration::from_millis(40);
/// Chunks of a final answer.
const CHUNKS: usize = 10;
/// How long `query_app_server` takes at the app-server stand-in.
const TOOL_TAKES: Duration = Duration::from_millis(150);
/// What a caller says when the turn needs the tool; the stand-in's agent
/// hands control back for every input that contains it.
const ASKS_THE_CALENDAR: &str = "Is anything free on 2026-12-01?";
/// Longest one turn may take before the bench gives up on it.
const TURN_LIMIT: Duration = Duration::from_secs(20);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The final answer: `CHUNKS` pieces of the default guardrail interval.
fn answer_text() -> String {
    let size = DEFAULT_GUARDRAIL_INTERVAL as usize;
    "Yes, we have a free slot tomorrow at ten and another at half past eleven. "
        .chars()
        .cycle()
        .take(size * CHUNKS)
        .collect()
}

/// The stand-in's own wait for a turn's first words and for its end.
fn floor(tool: bool) -> (Duration, Duration) {
    let first = FIRST_CHUNK + if tool { TOOL_TAKES } else { Duration::ZERO };
    (first, first + CHUNK_EVERY * (CHUNKS as u32 - 1))
}

/// The `run` flags the bench gives, parsed as `run` parses them.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    bridge: BridgeArgs,
    #[command(flatten)]
    action_log: ActionLogArgs,
}

/// One turn as the caller saw it.
struct Measured {
    tool: bool,
    first_words: Duration,
    first_model_words: Duration,
    done: Duration,
}

/// What one run of the workload gave.
#[derive(Default)]
struct Run {
    turns: Vec<Measured>,
    /// Turns whose answer was not the stand-in's (an error, the fallback).
    wrong: usize,
    /// Turns that began with buffer words.
    buffered: usize,
    /// Turns sent that ask for the tool, answered right or not.
    tool_turns_sent: usize,
    elapsed: Duration,
}

/// Milliseconds at quantile `q` of `values`.
fn quantile(values: &mut [Duration], q: f64) -> f64 {
    values.sort_unstable();
    let at = ((values.len() as f64 * q) as usize).min(values.len() - 1);
    values[at].as_secs_f64() * 1e3
}

/// The bridge of `run` with streaming on or off, serving on 127.0.0.1:0.
async fn bridge(
    stream: bool,
    app_server: &str,
    dir: &std::path::Path,
    store: Arc<dyn TenantStore>,
    platform: Arc<ElevenLabsClient>,
) -> (String, Serving, Flush) {
    let log_file = dir.join(format!("agent-log-stream-{stream}.jsonl"));
    let flags = Flags::parse_from([
        "voice-operator",
        "--agent-runtime",
        "bedrock",
        "--bedrock-agent-id",
        "AGENTBENCH",
        "--bedrock-agent-alias-id",
        "TSTALIASID",
        "--bedrock-stream",
        if stream { "true" } else { "false" },
        "--app-server-url",
        app_server,
        "--action-sink",
        "jsonl",
        "--action-log-file",
        log_file.to_str().unwrap(),
    ]);
    // The admin routes are not called; their client points nowhere.
    let kube =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let backends = BridgeBackends {
        platform,
        store,
        admin: Arc::new(voice_operator::admin::KubeAdmin::new(kube, "default")),
        embedded: Default::default(),
    };
    let routes = RouteSecrets {
        webhook: SecretString::from("wsec_bench"),
        llm: Some(SecretString::from(LLM_SECRET)),
        admin: None,
    };
    let parts = build_bridge(
        &flags.bridge,
        &flags.action_log,
        AgentRuntimeKind::Bedrock,
        &Secrets::default(),
        routes,
        backends,
        dir,
    )
    .await
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/elevenlabs/llm/{BUSINESS}/{LOCATION}/chat/completions",
        listener.local_addr().unwrap()
    );
    let serving = Serving::start(listener, parts.router);
    let flush = Flush {
        sends: parts.sends,
        shipper: parts.shipper,
        grace: parts.grace,
    };
    (url, serving, flush)
}

/// The HTTP client of one call, with a connection of its own. Built
/// before any call starts: a client loads the system's root certificates
/// (some 3 ms of CPU), work that belongs to ElevenLabs' machines, not to
/// the bridge's turns.
fn caller() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TURN_LIMIT)
        .build()
        .unwrap()
}

/// One call of `turns` turns, as ElevenLabs sends them: each request
/// carries the prompt and the conversation so far.
async fn call(
    client: reqwest::Client,
    url: String,
    conversation: String,
    first: usize,
    turns: usize,
) -> Run {
    let answer = answer_text();
    let buffer_words = in_language(BUFFER_WORDS, Some("en"));
    let mut messages = vec![json!({"role": "system",
        "content": "You are the front desk of Clinica Test. Answer briefly."})];
    let mut run = Run::default();
    for k in 0..turns {
        let tool = (first + k).is_multiple_of(3);
        run.tool_turns_sent += usize::from(tool);
        let said = if tool {
            ASKS_THE_CALENDAR.to_owned()
        } else {
            format!("Tell me about your services, part {k}.")
        };
        messages.push(json!({"role": "user", "content": said}));
        let request = json!({
            "model": "bedrock-agent", "stream": true, "messages": messages,
            "user_id": conversation,
            "tools": [{"type": "function", "function": {"name": "end_call",
                "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}],
        });
        let sent = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(LLM_SECRET)
            .header(CONVERSATION_ID_HEADER, &conversation)
            .json(&request)
            .send()
            .await;
        let events = match response {
            Ok(response) if response.status().is_success() => {
                sse::read_all(&mut sse::events(response), TURN_LIMIT, |_| {}).await
            }
            _ => Vec::new(),
        };
        let words: Vec<(Instant, String)> = events
            .iter()
            .filter_map(|e| e.content().map(|text| (e.at, text)))
            .collect();
        let model: Vec<&(Instant, String)> =
            words.iter().filter(|(_, w)| w != buffer_words).collect();
        let heard: String = model.iter().map(|(_, w)| w.as_str()).collect();
        let done = events.iter().find(|e| e.done()).map(|e| e.at);
        match (words.first(), model.first(), done) {
            (Some((first_words, _)), Some((first_model, _)), Some(done)) if heard == answer => {
                run.buffered += usize::from(words[0].1 == buffer_words);
                run.turns.push(Measured {
                    tool,
                    first_words: *first_words - sent,
                    first_model_words: *first_model - sent,
                    done: done - sent,
                });
            }
            _ => run.wrong += 1,
        }
        messages.push(json!({"role": "assistant", "content": heard}));
    }
    run
}

/// `calls` concurrent calls, `turns` turns in all, against `url`. Call
/// `c` starts `c / calls` of `spread` after the first: with no spread
/// every call speaks at the same instant, turn after turn (the worst case:
/// fifty first chunks at once on two cores); spread over one turn, the
/// calls overlap as independent callers do.
async fn workload(url: &str, label: &str, calls: usize, turns: usize, spread: Duration) -> Run {
    let per_call = turns.div_ceil(calls);
    let clients: Vec<reqwest::Client> = (0..calls).map(|_| caller()).collect();
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            let url = url.to_owned();
            let conversation = format!("conv_{label}_{c}");
            let delay = spread.mul_f64(c as f64 / calls as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                call(client, url, conversation, c * per_call, per_call).await
            })
        })
        .collect();
    let mut all = Run::default();
    for task in tasks {
        let run = task.await.unwrap();
        all.turns.extend(run.turns);
        all.wrong += run.wrong;
        all.buffered += run.buffered;
        all.tool_turns_sent += run.tool_turns_sent;
    }
    all.elapsed = started.elapsed();
    all
}

/// `calls` concurrent sessions sending plain turns straight to the
/// stand-in with the SDK, streaming on: the time to the first chunk.
async fn direct(fake: &FakeBedrock, calls: usize, per_call: usize) -> Vec<Duration> {
    use aws_sdk_bedrockagentruntime::types::{ResponseStream, StreamingConfigurations};
    let client = fake.client();
    let tasks: Vec<_> = (0..calls)
        .map(|c| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut firsts = Vec::new();
                for k in 0..per_call {
                    let sent = Instant::now();
                    let output = client
                        .invoke_agent()
                        .agent_id("AGENTBENCH")
                        .agent_alias_id("TSTALIASID")
                        .session_id(format!("direct_{c}"))
                        .input_text(format!("Tell me about your services, part {k}."))
                        .streaming_configurations(
                            StreamingConfigurations::builder()
                                .stream_final_response(true)
                                .apply_guardrail_interval(DEFAULT_GUARDRAIL_INTERVAL as i32)
                                .build(),
                        )
                        .send()
                        .await
                        .unwrap();
                    let mut stream = output.completion;
                    let mut first = None;
                    while let Some(event) = stream.recv().await.unwrap() {
                        if matches!(event, ResponseStream::Chunk(_)) && first.is_none() {
                            first = Some(sent.elapsed());
                        }
                    }
                    firsts.extend(first);
                }
                firsts
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// The app server's `GET /api/v1/availability`, in [`TOOL_TAKES`].
async fn app_server(calls: Arc<AtomicUsize>) -> String {
    let router = axum::Router::new().route(
        "/api/v1/availability",
        get(move || {
            let calls = calls.clone();
            async move {
                tokio::time::sleep(TOOL_TAKES).await;
                calls.fetch_add(1, Ordering::Relaxed);
                Json(json!({"date": "2026-12-01", "free": ["10:00", "11:30"]}))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The stand-in's agent: the calendar question gets a `returnControl` for
/// `query_app_server`, everything else (and the results) the paced answer.
fn agent(invocations: AtomicUsize) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |seen: &Seen| {
        let body = &seen.body;
        let has_results = body["sessionState"]["returnControlInvocationResults"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        let asks = body["inputText"]
            .as_str()
            .is_some_and(|t| t.contains(ASKS_THE_CALENDAR));
        if asks && !has_results {
            let n = invocations.fetch_add(1, Ordering::Relaxed);
            return Reply::ReturnControl(function_calls(
                &format!("inv-{n}"),
                &[(
                    "query_app_server",
                    &[("resource", "availability"), ("date", "2026-12-01")],
                )],
            ));
        }
        Reply::Paced {
            text: answer_text(),
            first: FIRST_CHUNK,
            every: CHUNK_EVERY,
        }
    }
}

fn main() {
    // The bridge's SDK client reads its endpoint, region and credentials
    // from the environment, as in production; it is set here, before any
    // other thread exists, to the stand-in's port.
    let bedrock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bedrock.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", bedrock.local_addr().unwrap());
    // SAFETY: single-threaded here; no runtime or thread has started.
    unsafe {
        for (name, value) in [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(name, value);
        }
        std::env::remove_var("AWS_PROFILE");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(bedrock));
}

async fn run(bedrock: std::net::TcpListener) {
    let calls = env_or("VOICE_LATENCY_CALLS", 50);
    let turns = env_or("VOICE_LATENCY_TURNS", 1000);
    let dir = tempfile::tempdir().unwrap();

    let fake = FakeBedrock::agent(
        TcpListener::from_std(bedrock).unwrap(),
        agent(AtomicUsize::new(0)),
    );
    let tool_calls = Arc::new(AtomicUsize::new(0));
    let app = app_server(tool_calls.clone()).await;
    let elevenlabs = FakeElevenLabs::start(Faults::default()).await;
    elevenlabs.insert(
        AGENT,
        json!({"name": "Bench", "tags": ["voice-operator", "tenant:B0100001:L0100001"],
               "conversation_config": {"agent": {"language": "en"}}, "platform_settings": {}}),
    );
    let platform = Arc::new(
        ElevenLabsClient::new(ClientConfig::new(
            elevenlabs.uri(),
            SecretString::from(API_KEY),
        ))
        .unwrap(),
    );
    let sqlite = SqliteStore::open(&dir.path().join("tenants.db"))
        .await
        .unwrap();
    sqlite
        .put(
            &TenantKey::parse(BUSINESS, LOCATION).unwrap(),
            &Id::parse("uid", "bench-owner").unwrap(),
            voice_operator::tenant::Seen::Nothing,
            voice_operator::tenant::SpecGeneration::default(),
            &tenant_settings(AGENT, true),
        )
        .await
        .unwrap();
    let store: Arc<dyn TenantStore> = Arc::new(sqlite);

    let mut runs = Vec::new();
    let mut tool_turns_sent = 0;
    for stream in [true, false] {
        let (url, serving, flush) =
            bridge(stream, &app, dir.path(), store.clone(), platform.clone()).await;
        let label = if stream { "streaming" } else { "whole" };
        // One turn per call first (connections, caches), not counted.
        let warm = workload(&url, &format!("warm_{label}"), calls, calls, Duration::ZERO).await;
        let measured = workload(&url, label, calls, turns, Duration::ZERO).await;
        tool_turns_sent += warm.tool_turns_sent + measured.tool_turns_sent;
        runs.push(measured);
        if stream {
            let spread = floor(false).1;
            let staggered = workload(&url, "staggered", calls, turns, spread).await;
            tool_turns_sent += staggered.tool_turns_sent;
            runs.push(staggered);
        }
        serving.finish(Some(flush)).await;
    }
    let direct_firsts = direct(&fake, calls, turns.div_ceil(calls).min(10)).await;
    let [streaming, staggered, whole] = <[Run; 3]>::try_from(runs).ok().unwrap();

    let figures = |run: &Run| {
        let mut first: Vec<Duration> = run.turns.iter().map(|t| t.first_words).collect();
        let mut model: Vec<Duration> = run.turns.iter().map(|t| t.first_model_words).collect();
        let mut done: Vec<Duration> = run.turns.iter().map(|t| t.done).collect();
        [
            quantile(&mut first, 0.5),
            quantile(&mut first, 0.99),
            quantile(&mut model, 0.5),
            quantile(&mut model, 0.99),
            quantile(&mut done, 0.5),
            quantile(&mut done, 0.99),
        ]
    };
    let added = |run: &Run, of: fn(&Measured) -> Duration, end: bool, which: Option<bool>| {
        let mut over: Vec<Duration> = run
            .turns
            .iter()
            .filter(|t| which.is_none_or(|tool| t.tool == tool))
            .map(|t| {
                let (first, done) = floor(t.tool);
                of(t).saturating_sub(if end { done } else { first })
            })
            .collect();
        (quantile(&mut over, 0.5), quantile(&mut over, 0.99))
    };
    let s = figures(&streaming);
    let w = figures(&whole);
    let (over50, over99) = added(&streaming, |t| t.first_model_words, false, None);
    let (plain50, plain99) = added(&streaming, |t| t.first_model_words, false, Some(false));
    let (tool50, tool99) = added(&streaming, |t| t.first_model_words, false, Some(true));
    let (done_over50, done_over99) = added(&streaming, |t| t.done, true, None);
    let (spread50, spread99) = added(&staggered, |t| t.first_model_words, false, None);
    let mut direct_firsts = direct_firsts;
    let tool_turns = streaming.turns.iter().filter(|t| t.tool).count();

    println!("calls: {calls}");
    println!("turns: {} turns", streaming.turns.len());
    println!("tool_turns: {tool_turns} turns");
    println!("turns_wrong: {} turns", streaming.wrong);
    println!("buffer_words_turns: {} turns", streaming.buffered);
    println!("first_words_p50_ms: {:.1} ms", s[0]);
    println!("first_words_p99_ms: {:.1} ms", s[1]);
    println!("first_model_words_p50_ms: {:.1} ms", s[2]);
    println!("first_model_words_p99_ms: {:.1} ms", s[3]);
    println!("done_p50_ms: {:.1} ms", s[4]);
    println!("done_p99_ms: {:.1} ms", s[5]);
    println!("floor_ms: {} ms", floor(false).0.as_millis());
    println!("floor_with_tool_ms: {} ms", floor(true).0.as_millis());
    println!("added_over_floor_p50_ms: {over50:.1} ms");
    println!("added_over_floor_p99_ms: {over99:.1} ms");
    println!("added_over_floor_without_tool_p50_ms: {plain50:.1} ms");
    println!("added_over_floor_without_tool_p99_ms: {plain99:.1} ms");
    println!("added_over_floor_with_tool_p50_ms: {tool50:.1} ms");
    println!("added_over_floor_with_tool_p99_ms: {tool99:.1} ms");
    println!("done_added_over_floor_p50_ms: {done_over50:.1} ms");
    println!("done_added_over_floor_p99_ms: {done_over99:.1} ms");
    println!("staggered_turns: {} turns", staggered.turns.len());
    println!("staggered_turns_wrong: {} turns", staggered.wrong);
    println!("staggered_added_over_floor_p50_ms: {spread50:.1} ms");
    println!("staggered_added_over_floor_p99_ms: {spread99:.1} ms");
    println!(
        "direct_first_chunk_p50_ms: {:.1} ms",
        quantile(&mut direct_firsts, 0.5)
    );
    println!(
        "direct_first_chunk_p99_ms: {:.1} ms",
        quantile(&mut direct_firsts, 0.99)
    );
    println!("non_streaming_turns: {} turns", whole.turns.len());
    println!("non_streaming_turns_wrong: {} turns", whole.wrong);
    println!("non_streaming_buffer_words_turns: {} turns", whole.buffered);
    println!("non_streaming_first_words_p50_ms: {:.1} ms", w[0]);
    println!("non_streaming_first_words_p99_ms: {:.1} ms", w[1]);
    println!("non_streaming_first_model_words_p50_ms: {:.1} ms", w[2]);
    println!("non_streaming_first_model_words_p99_ms: {:.1} ms", w[3]);
    println!("non_streaming_done_p50_ms: {:.1} ms", w[4]);
    println!("non_streaming_done_p99_ms: {:.1} ms", w[5]);
    println!("ratio_to_non_streaming_p50: {:.2}", s[0] / w[0]);
    println!("model_words_ratio_to_non_streaming_p50: {:.2}", s[2] / w[2]);
    // Each tool turn, warm-up and both runs, reaches the app server once.
    println!("tool_turns_sent: {tool_turns_sent} turns");
    println!(
        "app_server_calls: {} calls",
        tool_calls.load(Ordering::Relaxed)
    );
    println!(
        "elapsed_s: {:.1} s",
        (streaming.elapsed + whole.elapsed).as_secs_f64()
    );
}
