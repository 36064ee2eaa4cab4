//! How fast the operator brings N VoiceAgents to Active when ElevenLabs
//! admits only R requests per second, and how much memory it takes.
//!
//! The real `voice-operator controller` binary runs against a real
//! kube-apiserver and etcd on loopback, ElevenLabs is the wiremock fake
//! with a token-bucket limit (429 with `Retry-After: 1` beyond it), and the
//! tenant store is SQLite. Printed, one per line as `name: value`:
//!
//! - `converge_seconds`: from the first VoiceAgent applied to all N Active;
//! - `ideal_seconds`: N / R, one create per agent at the allowed rate;
//! - `baseline_seconds`: N creates sent straight to an identical fake by a
//!   plain client loop with the same concurrency, honouring Retry-After:
//!   what the rate limit allows in practice, measured in this run;
//! - `ratio_to_ideal`, `ratio_to_baseline`;
//! - `peak_rss_mib`: the operator process's VmHWM at the end.
//!
//! Target: `ratio_to_ideal` at most 1.2 and peak RSS under 100 MiB at
//! N = 1000.
//!
//! Run with `cargo bench --bench converge`. Uses the cluster that
//! `VOICE_OPERATOR_TEST_KUBECONFIG` names, or starts one with
//! `scripts/kube-tools.sh --start`. `BENCH_N` (default 1000), `BENCH_RATE`
//! (requests/s, default 25) and `BENCH_CONCURRENCY` (operator
//! --concurrency, default 64) change the run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams};
use secrecy::SecretString;
use voice_operator::controller::desired;
use voice_operator::crd::{Phase, VoiceAgent};
use voice_operator::elevenlabs::{AgentPlatform, ClientConfig, ElevenLabsClient, ElevenLabsError};
use voice_operator::testkit::cluster;
use voice_operator::testkit::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use voice_operator::testkit::fixtures::operator_settings;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a whole number"))
        })
        .unwrap_or(default)
}

/// A test cluster this bench started, stopped when dropped.
struct OwnCluster(PathBuf);

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/kube-tools.sh"))
            .arg("--stop")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cluster_kubeconfig() -> (String, Option<OwnCluster>) {
    if let Ok(path) = std::env::var("VOICE_OPERATOR_TEST_KUBECONFIG") {
        return (path, None);
    }
    let dir = tempfile::Builder::new()
        .prefix("converge-bench")
        .tempdir()
        .unwrap()
        .keep();
    let out = Command::new("bash")
        .arg(root().join("scripts/kube-tools.sh"))
        .arg("--start")
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/kube-tools.sh runs");
    assert!(out.status.success(), "could not start a test cluster");
    let path = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    (path, Some(OwnCluster(dir)))
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn voiceagent(template: &VoiceAgent, i: u64) -> VoiceAgent {
    let mut va = template.clone();
    va.metadata.name = Some(format!("bench-{i:05}"));
    va.spec.location_id = format!("L{i:07}");
    va
}

/// N creates straight against a fresh rate-limited fake.
async fn baseline(n: u64, rate: f64, concurrency: usize, template: &VoiceAgent) -> f64 {
    let fake = FakeElevenLabs::start(Faults {
        rate_limit: Some(rate),
        ..Faults::default()
    })
    .await;
    let mut config = ClientConfig::new(fake.uri(), SecretString::from(API_KEY));
    config.max_retries = 100;
    let client = Arc::new(ElevenLabsClient::new(config).unwrap());
    let settings = operator_settings();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let mut va = voiceagent(template, i);
            va.metadata.uid = Some(format!("baseline-{i}"));
            let desired = desired::agent(&va, &settings).unwrap();
            async move {
                loop {
                    match client.create_agent(&desired).await {
                        Ok(_) => break,
                        Err(ElevenLabsError::RateLimited { retry_after, .. }) => {
                            tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await
                        }
                        Err(e) => panic!("baseline create failed: {e}"),
                    }
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(fake.agents().len() as u64, n);
    took
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let n = env_number("BENCH_N", 1000);
    let rate = env_number("BENCH_RATE", 25) as f64;
    let concurrency = env_number("BENCH_CONCURRENCY", 64);
    let (kubeconfig, _own) = cluster_kubeconfig();
    let client = cluster::client_from(&kubeconfig).await;
    cluster::install_crd(&client).await;
    let ns = cluster::namespace(&client, "bench").await;
    let template = cluster::example("voiceagent-clinic.yaml", &ns);

    let fake = FakeElevenLabs::start(Faults {
        rate_limit: Some(rate),
        ..Faults::default()
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_voice-operator"))
            .arg("controller")
            .env("KUBECONFIG", &kubeconfig)
            .env("ELEVENLABS_API_KEY", API_KEY)
            .env("ELEVENLABS_BASE_URL", fake.uri())
            .env("VOICE_OPERATOR_PUBLIC_URL", "https://voice.example.com")
            .env("VOICE_OPERATOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("VOICE_OPERATOR_WATCH_NAMESPACE", &ns)
            .env("VOICE_OPERATOR_LEASE_NAMESPACE", &ns)
            .env("VOICE_OPERATOR_CONCURRENCY", concurrency.to_string())
            .env("VOICE_OPERATOR_TENANT_STORE", "sqlite")
            .env("VOICE_OPERATOR_DATA_DIR", data.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the operator binary starts"),
    );
    let pid = operator.0.id();
    // Let it take the lease and list the (empty) workspace first.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let leading = match reqwest::get(&metrics).await {
            Ok(r) => r
                .text()
                .await
                .unwrap_or_default()
                .contains("voice_operator_leader 1"),
            Err(_) => false,
        };
        if leading {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the operator did not take the lease in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let api: Api<VoiceAgent> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    let creator = {
        let api = api.clone();
        let template = template.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..n)
                .map(|i| {
                    let api = api.clone();
                    let va = voiceagent(&template, i);
                    async move { api.create(&PostParams::default(), &va).await.unwrap() }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
        })
    };
    let mut last_report = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let active = list
            .items
            .iter()
            .filter(|va| va.status.as_ref().and_then(|s| s.phase) == Some(Phase::Active))
            .count() as u64;
        if active == n {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "converge: {active}/{n} Active after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not converged after 600 s: {active}/{n} Active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converge = started.elapsed().as_secs_f64();
    creator.await.unwrap();
    let rss = peak_rss_mib(pid);
    let (created, _, throttled) = fake.counts();
    let mut by_route = std::collections::BTreeMap::<String, u64>::new();
    for line in fake.take_log() {
        let route = if line.starts_with("POST ") || line == "GET /v1/convai/agents" {
            line
        } else {
            // One agent's path stands for all.
            line.rsplit_once('/')
                .map_or(line.clone(), |(head, _)| format!("{head}/{{id}}"))
        };
        *by_route.entry(route).or_default() += 1;
    }
    drop(operator);

    let baseline = baseline(n, rate, concurrency as usize, &template).await;
    let ideal = n as f64 / rate;
    println!("voiceagents: {n}");
    println!("elevenlabs_rate_limit_rps: {rate}");
    println!("operator_concurrency: {concurrency}");
    println!("agents_created: {created}");
    println!("requests_throttled_429: {throttled}");
    for (route, count) in &by_route {
        println!("requests {route}: {count}");
    }
    println!("converge_seconds: {converge:.2}");
    println!("ideal_seconds: {ideal:.2}");
    println!("baseline_seconds: {baseline:.2}");
    println!("ratio_to_ideal: {:.3}", converge / ideal);
    println!("ratio_to_baseline: {:.3}", converge / baseline);
    println!("peak_rss_mib: {rss:.1}");
    assert_eq!(created, n, "one agent per VoiceAgent");
}
