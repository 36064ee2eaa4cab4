//! `voice-operator run` as the Deployment runs it: the controller on the
//! real kube-apiserver (ElevenLabs faked), the bridge on the same port,
//! then SIGTERM. The turn's agent-log record must be in the JSON-lines
//! file after the exit even though the flush timer never fired: shutdown
//! drains the requests, then flushes the log.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::bridge::{LLM_SECRET, WEBHOOK_SECRET, sign};
use crate::support::cluster::{self, until};
use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use voice_operator::crd::{Phase, VoiceAgent};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn run_serves_the_bridge_and_flushes_the_log_on_sigterm() {
    let client = cluster::client().await;
    cluster::install_crd(&client).await;
    let ns = cluster::namespace(&client, "run").await;
    let fake = FakeElevenLabs::start(Faults::default()).await;
    // The workspace has no secret of that name yet: `run` creates it.
    for (verb, body) in [
        ("GET", json!({"secrets": []})),
        (
            "POST",
            json!({"type": "stored", "secret_id": "sec_run_1", "name": "voice-operator-llm-secret"}),
        ),
    ] {
        wiremock::Mock::given(wiremock::matchers::method(verb))
            .and(wiremock::matchers::path("/v1/convai/secrets"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
            .with_priority(1)
            .expect(1)
            .mount(&fake.server)
            .await;
    }
    let data = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_voice-operator"))
            .arg("run")
            .env("KUBECONFIG", cluster::kubeconfig_path())
            .env("ELEVENLABS_API_KEY", API_KEY)
            .env("ELEVENLABS_BASE_URL", fake.uri())
            .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("VOICE_OPERATOR_LLM_SECRET", LLM_SECRET)
            .env("VOICE_OPERATOR_PUBLIC_URL", "https://voice.example.com")
            .env("VOICE_OPERATOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("VOICE_OPERATOR_WATCH_NAMESPACE", &ns)
            .env("VOICE_OPERATOR_LEADER_ELECTION", "false")
            .env("VOICE_OPERATOR_TENANT_STORE", "sqlite")
            .env("VOICE_OPERATOR_DATA_DIR", data.path())
            .env("VOICE_OPERATOR_AGENT_RUNTIME", "scripted")
            .env("VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", "60000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    until(
        Duration::from_secs(30),
        "readiness",
        || reqwest::get(format!("{base}/readyz")),
        |r| r.as_ref().is_ok_and(|r| r.status().is_success()),
    )
    .await
    .unwrap();

    let api: Api<VoiceAgent> = Api::namespaced(client, &ns);
    let va = cluster::example("voiceagent-clinic.yaml", &ns);
    let name = va.metadata.name.clone().unwrap();
    api.create(&PostParams::default(), &va).await.unwrap();
    until(
        Duration::from_secs(30),
        "the VoiceAgent Active",
        || api.get(&name),
        |r| {
            r.as_ref()
                .is_ok_and(|v| v.status.as_ref().and_then(|s| s.phase) == Some(Phase::Active))
        },
    )
    .await
    .unwrap();

    // The agent sends the workspace secret `run` made as its bearer token.
    let agents = fake.agents();
    let agent = agents.values().next().expect("one agent");
    assert_eq!(
        agent["conversation_config"]["agent"]["prompt"]["custom_llm"]["api_key"],
        json!({"secret_id": "sec_run_1"}),
        "{agent}"
    );

    let body = json!({"event": "message", "conversationId": "conv_run_1",
        "message": {"content": "Ce program aveți?"},
        "metadata": {"businessId": va.spec.business_id, "locationId": va.spec.location_id}})
    .to_string();
    let response = reqwest::Client::new()
        .post(format!("{base}/api/elevenlabs/webhook"))
        .header("ElevenLabs-Signature", sign(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["response"]
            .as_str()
            .unwrap()
            .starts_with("[scripted agent]")
    );

    let log = data.path().join("agent-log.jsonl");
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(before.is_empty(), "flushed before shutdown: {before}");
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let mut exit = None;
    for _ in 0..300 {
        if let Some(status) = child.0.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exit.expect("stopped within 30 s of SIGTERM").success());
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let validator = crate::support::agent_log_validator();
    assert!(validator.is_valid(&lines[0]), "{}", lines[0]);
    assert_eq!(lines[0]["data"]["agentSessionId"], json!("conv_run_1"));
}

#[test]
fn run_refuses_to_start_without_the_llm_secret_unless_told_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_voice-operator"))
        .arg("run")
        .env_remove("VOICE_OPERATOR_LLM_SECRET")
        .env_remove("VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM")
        .env("ELEVENLABS_API_KEY", API_KEY)
        .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("VOICE_OPERATOR_PUBLIC_URL", "https://voice.example.com")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "VOICE_OPERATOR_LLM_SECRET is not set",
        "--allow-unauthenticated-llm",
        "VOICE_OPERATOR_ALLOW_UNAUTHENTICATED_LLM",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}
