//! End to end: the built binary in `local` mode with the repository's
//! examples, driven over HTTP exactly as ElevenLabs calls it (signed),
//! its JSON-lines action log checked against the agent-log schema; the
//! manifests directory watched (bad documents named, the others kept);
//! and the same binary on DynamoDB and Kinesis in the AWS emulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;

use crate::support::bridge::{ADMIN_TOKEN, LLM_SECRET, WEBHOOK_SECRET, llm_events, signed_json};
use crate::support::sse;
use serde_json::{Value, json};

const CLINIC: (&str, &str) = ("B0100001", "L0100001");

/// A running `voice-operator local`; killed when dropped.
struct Local {
    child: Child,
    base: String,
    /// What it printed on standard output before serving.
    report: String,
    /// Everything it printed on standard output.
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: PathBuf,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

impl Local {
    /// Starts the binary on a free port and waits for its report.
    fn start(data: &Path, manifests: &Path, extra: &[&str], env: &[(&str, String)]) -> Local {
        let stderr = data.join("stderr.log");
        std::fs::create_dir_all(data).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_voice-operator"));
        command
            .arg("--data-dir")
            .arg(data)
            .arg("local")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--manifests")
            .arg(manifests)
            .arg("--manifest-poll-ms")
            .arg("200")
            .args(extra)
            .env_remove("ELEVENLABS_API_KEY")
            .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("VOICE_OPERATOR_LLM_SECRET", LLM_SECRET)
            .env("VOICE_OPERATOR_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("VOICE_OPERATOR_ACTION_LOG_FLUSH_MS", "20")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let all = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = all.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        collected
                            .lock()
                            .unwrap()
                            .push_str(&format!("<read error {e}>"));
                        break;
                    }
                }
                let line = String::from_utf8_lossy(&raw);
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                if line.starts_with("or a whole call") {
                    let _ = tx.send(all.clone());
                }
            }
            let _ = tx.send(collected.lock().unwrap().clone());
        });
        let report = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "no start-up report within 60 s; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        let base = report
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| {
                panic!(
                    "no address in the report:\n{report}\nstderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .trim()
            .to_owned();
        Local {
            child,
            base,
            report,
            stdout: all,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The admin API's status of a location (status code, body).
    async fn status(&self, business: &str, location: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/api/elevenlabs/status/{business}?locationId={location}",
                self.base
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the location's VoiceAgent is Active; its agent id.
    async fn active(&self, business: &str, location: &str) -> String {
        let body = self
            .status_until(business, location, "Active", |body| {
                body["phase"] == json!("Active")
            })
            .await;
        body["config"]["agentId"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 30 s) until the location's status satisfies `wanted`;
    /// that status.
    async fn status_until(
        &self,
        business: &str,
        location: &str,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..300 {
            let (code, body) = self.status(business, location).await;
            if code == 200 && wanted(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{business}/{location}: not {what} within 30 s: {:?}\nstderr: {}",
            self.status(business, location).await,
            self.stderr()
        );
    }

    /// A dashboard API route read with `token` (status code, body).
    async fn dashboard(&self, path: &str, token: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.json().await.unwrap_or(Value::Null))
    }

    async fn signed(&self, path: &str, body: &Value) -> (u16, Value) {
        signed_json(&format!("{}{path}", self.base), body).await
    }

    /// SIGTERM, then whether it exited 0 within 30 s (its log on failure).
    async fn stop(mut self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    eprintln!("exit {status:?}; stderr:\n{}", self.stderr());
                }
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("still running 30 s after SIGTERM");
    }
}

fn seed(event: &str, conversation: &str, key: (&str, &str), extra: Value) -> Value {
    let mut body = json!({"event": event, "conversationId": conversation,
        "metadata": {"businessId": key.0, "locationId": key.1}});
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    body
}

/// A seed-webhook `message` event saying `content` in `conversation`.
fn message(conversation: &str, key: (&str, &str), content: &str) -> Value {
    seed(
        "message",
        conversation,
        key,
        json!({"message": {"content": content}}),
    )
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn local_mode_serves_the_examples_like_elevenlabs_calls_them() {
    let data = tempfile::tempdir().unwrap();
    let local = Local::start(data.path(), &examples(), &["--echo-actions"], &[]);
    assert!(
        local.report.contains("(echoed to standard output)"),
        "{}",
        local.report
    );
    assert!(
        local.report.contains("OFFLINE stand-in"),
        "{}",
        local.report
    );
    assert!(
        local
            .report
            .contains("webhook secret  from ELEVENLABS_WEBHOOK_SECRET"),
        "{}",
        local.report
    );
    assert!(local.report.contains("curl -sS"), "{}", local.report);
    let agent = local.active(CLINIC.0, CLINIC.1).await;
    assert!(agent.starts_with("agent_offline_"), "{agent}");

    // A whole call through the seed webhook.
    let conversation = "conv_local_e2e_1";
    let (code, answer) = local
        .signed(
            "/api/elevenlabs/webhook",
            &seed("conversation_start", conversation, CLINIC, json!({})),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let turn = message(conversation, CLINIC, "Ce program aveți mâine?");
    let (code, answer) = local.signed("/api/elevenlabs/webhook", &turn).await;
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer["response"]
            .as_str()
            .unwrap()
            .starts_with("[scripted agent]"),
        "{answer}"
    );
    assert_eq!(answer["continueConversation"], json!(true));
    let end = seed(
        "conversation_end",
        conversation,
        CLINIC,
        json!({"duration": 61.5}),
    );
    assert_eq!(local.signed("/api/elevenlabs/webhook", &end).await.0, 200);

    // Refusals: no signature, an unknown tenant. A disabled one hears
    // the closing sentence in its agent's language and the call ends.
    let unsigned = reqwest::Client::new()
        .post(format!("{}/api/elevenlabs/webhook", local.base))
        .json(&turn)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let disabled = ("B0200001", "L0200002");
    let mut answer = (0, Value::Null);
    for _ in 0..100 {
        let off = message("conv_off", disabled, "hello");
        answer = local.signed("/api/elevenlabs/webhook", &off).await;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, closing) = answer;
    assert_eq!(code, 200, "the disabled example answers: {closing}");
    assert_eq!(closing["continueConversation"], json!(false), "{closing}");
    assert_eq!(closing["actions"], json!([]), "{closing}");
    let said = closing["response"].as_str().unwrap();
    assert!(said.starts_with("Ne pare rău"), "a Romanian agent: {said}");
    let stranger = message("conv_x", ("B9999999", "L9999999"), "hello");
    assert_eq!(
        local.signed("/api/elevenlabs/webhook", &stranger).await.0,
        404
    );

    // The custom LLM, streamed.
    let request = json!({"model": "custom", "stream": true, "user_id": "caller-1",
        "messages": [{"role": "system", "content": "You are the front desk."},
                     {"role": "user", "content": "Aveți liber mâine la 10?"}],
        "elevenlabs_extra_body": {"conversation_id": conversation}});
    let llm = format!(
        "{}/api/elevenlabs/llm/{}/{}/chat/completions",
        local.base, CLINIC.0, CLINIC.1
    );
    let mut events = llm_events(&llm, &request).await;
    let text = sse::said(&sse::chunks(
        &sse::read_data(&mut events, Duration::from_secs(30)).await,
    ))
    .concat();
    assert!(text.starts_with("[scripted agent]"), "{text}");

    // Conversation initiation and the post-call transcription, for the
    // agent the controller made.
    let init = json!({"agent_id": agent, "caller_id": "+40721000111",
        "called_number": "+40312345678", "call_sid": "CA_local_1"});
    let (code, answer) = local
        .signed("/api/elevenlabs/conversation-init", &init)
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["dynamic_variables"]["business_id"], json!(CLINIC.0));
    assert_eq!(answer["dynamic_variables"]["location_id"], json!(CLINIC.1));
    let mut post_call: Value = serde_json::from_slice(
        &std::fs::read(crate::support::fixture(
            "elevenlabs/post_call_transcription.json",
        ))
        .unwrap(),
    )
    .unwrap();
    post_call["data"]["agent_id"] = json!(agent);
    post_call["data"]["conversation_id"] = json!(conversation);
    let (code, answer) = local.signed("/api/elevenlabs/post-call", &post_call).await;
    assert_eq!((code, &answer["status"]), (200, &json!("ok")), "{answer}");

    // The action log's counters are on /metrics next to the controller's.
    let metrics = reqwest::get(format!("{}/metrics", local.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let enqueued: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("voice_operator_action_log_enqueued_total "))
        .unwrap_or_else(|| panic!("no action-log counter in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(enqueued >= 5, "{metrics}");
    assert!(
        metrics.contains("voice_operator_action_log_dropped_total 0"),
        "{metrics}"
    );
    let stdout = local.stdout.clone();
    let stderr_path = local.stderr.clone();
    assert!(local.stop().await);
    let records = read_log(&data.path().join("agent-log.jsonl"));
    // The pipe may still hold lines after the exit.
    let mut echoed = 0;
    for _ in 0..50 {
        echoed = stdout
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("{\"resourceType\""))
            .count();
        if echoed >= records.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        echoed,
        records.len(),
        "every record echoed once: {}\n{}",
        stdout.lock().unwrap(),
        std::fs::read_to_string(&stderr_path).unwrap()
    );
    let validator = crate::support::agent_log_validator();
    for record in &records {
        assert!(validator.is_valid(record), "not schema-valid: {record}");
    }
    let ours: Vec<&Value> = records
        .iter()
        .filter(|r| r["data"]["agentSessionId"] == json!(conversation))
        .collect();
    let events: Vec<&str> = ours
        .iter()
        .filter_map(|r| r["data"]["metadata"]["event"].as_str())
        .collect();
    for event in ["conversation_start", "message", "conversation_end"] {
        assert!(events.contains(&event), "{event} missing: {ours:?}");
    }
    let post = ours
        .iter()
        .find(|r| r["data"]["metadata"]["callDuration"].is_number())
        .expect("a post-call record with callDuration");
    assert_eq!(post["businessId"], json!(CLINIC.0));
    assert_eq!(post["data"]["actionType"], json!("voice_call"));
    assert!(
        records.iter().all(|r| r["businessId"] != json!("B9999999")),
        "nothing logged for refused calls"
    );
}

const SALON: &str = "apiVersion: voiceagents.io/v1alpha1
kind: VoiceAgent
metadata:
  name: salon-new
  namespace: tenants
spec:
  businessId: B0700001
  locationId: L0700001
  businessName: Salon Nou
  voiceId: 21m00Tcm4TlvDq8ikWAM
  greeting: Bună ziua!
";

#[tokio::test]
async fn the_manifests_directory_is_watched_and_bad_documents_named() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples().join("voiceagent-clinic.yaml"),
        manifests.path().join("clinic.yaml"),
    )
    .unwrap();
    let bad_phone = SALON
        .replace("salon-new", "salon-bad")
        .replace("L0700001", "L0700002")
        .replace(
            "greeting: Bună ziua!",
            "greeting: Bună ziua!\n  phoneNumber: \"0312 345 678\"",
        );
    let two = format!(
        "{}---\n{bad_phone}",
        SALON
            .replace("salon-new", "salon-good")
            .replace("L0700001", "L0700003")
    );
    std::fs::write(manifests.path().join("two.yaml"), two).unwrap();
    let local = Local::start(data.path(), manifests.path(), &[], &[]);
    assert!(
        local
            .report
            .contains("(2 VoiceAgents, 1 invalid documents; watched)"),
        "{}",
        local.report
    );
    local.active(CLINIC.0, CLINIC.1).await;
    local.active("B0700001", "L0700003").await;
    let stderr = local.stderr();
    assert!(
        stderr.contains("two.yaml, document 2: spec.phoneNumber:"),
        "{stderr}"
    );
    assert_eq!(local.status("B0700001", "L0700002").await.0, 404);

    // A new file is picked up; removing it deletes the agent (policy
    // Delete) and the tenant.
    std::fs::write(manifests.path().join("salon.yaml"), SALON).unwrap();
    let agent = local.active("B0700001", "L0700001").await;
    let offline = data.path().join("offline-agents.json");
    assert!(std::fs::read_to_string(&offline).unwrap().contains(&agent));
    std::fs::remove_file(manifests.path().join("salon.yaml")).unwrap();
    let mut code = 0;
    for _ in 0..100 {
        code = local.status("B0700001", "L0700001").await.0;
        if code == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 404, "the removed manifest's VoiceAgent is gone");
    let mut deleted = false;
    for _ in 0..100 {
        if !std::fs::read_to_string(&offline).unwrap().contains(&agent) {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deleted, "agent {agent} deleted (deletionPolicy Delete)");
    let gone = message("conv_gone", ("B0700001", "L0700001"), "hello");
    assert_eq!(local.signed("/api/elevenlabs/webhook", &gone).await.0, 404);

    // Breaking a file keeps what it defined; an immutable field edit is
    // refused and named.
    std::fs::write(manifests.path().join("two.yaml"), "spec: [unclosed\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(local.status("B0700001", "L0700003").await.0, 200);
    let moved = std::fs::read_to_string(manifests.path().join("clinic.yaml"))
        .unwrap()
        .replace("locationId: L0100001", "locationId: L0100009");
    std::fs::write(manifests.path().join("clinic.yaml"), moved).unwrap();
    let mut refused = false;
    for _ in 0..50 {
        if local
            .stderr()
            .contains("clinic.yaml, document 1: spec.locationId: is immutable")
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "{}", local.stderr());
    assert_eq!(local.status(CLINIC.0, CLINIC.1).await.0, 200);

    // The admin API writes a manifest into the directory.
    let activation = json!({"locationId": "L0800001", "voiceId": "21m00Tcm4TlvDq8ikWAM",
        "greeting": "Hello!", "businessName": "Admin Made"});
    let response = reqwest::Client::new()
        .post(format!("{}/api/elevenlabs/activate/B0800001", local.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&activation)
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(code == 200 || code == 202, "{code} {body}");
    let written = manifests.path().join("b0800001-l0800001.yaml");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("businessName: Admin Made"), "{text}");
    local.active("B0800001", "L0800001").await;
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/api/elevenlabs/deactivate/B0800001?locationId=L0800001",
            local.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("enabled: false"), "{text}");
    assert!(local.stop().await);
}

/// `local --manifests examples/fleet`: the template and the three
/// locations that name it. Each location's agent gets the template's
/// values with its own overrides; editing the template reaches all three;
/// removing it stalls them (TemplateNotFound, naming it).
#[tokio::test]
async fn local_mode_serves_the_fleet_template_and_its_three_locations() {
    let data = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    for file in ["template.yaml", "locations.yaml"] {
        std::fs::copy(
            examples().join("fleet").join(file),
            manifests.path().join(file),
        )
        .unwrap();
    }
    let local = Local::start(data.path(), manifests.path(), &[], &[]);
    assert!(
        local
            .report
            .contains("(3 VoiceAgents, 0 invalid documents; watched)"),
        "{}",
        local.report
    );
    let locations = ["L0300001", "L0300002", "L0300003"];
    let tenants = data.path().join("tenants.sqlite3");
    // The tenant item holds the merged spec, and so does the admin API's
    // status.
    let item = |location: &str| -> Value {
        let query = format!("SELECT item FROM tenants WHERE location_id = '{location}'");
        let rows = sqlite_rows(&tenants, &query);
        serde_json::from_str(rows[0][0].as_deref().unwrap()).unwrap()
    };
    for location in locations {
        local.active("B0300003", location).await;
        let item = item(location);
        assert_eq!(item["businessName"], json!("Zâmbet Dental"), "{item}");
        assert_eq!(
            item["greeting"],
            json!("Bună ziua! Zâmbet Dental {{city}}, cu ce vă pot ajuta?")
        );
        assert_eq!(item["templateGeneration"], json!(1), "{item}");
        let (code, status) = local.status("B0300003", location).await;
        assert_eq!(code, 200, "{status}");
        assert_eq!(status["templateRef"], json!("zambet-dental"), "{status}");
        assert_eq!(status["config"]["businessName"], item["businessName"]);
        assert_eq!(status["config"]["greeting"], item["greeting"]);
        assert_eq!(status["config"]["voiceId"], item["voiceId"], "{status}");
        assert!(status["config"]["voiceId"].is_string(), "{status}");
    }
    // Each agent carries its location's own variables over the template's.
    let agents = std::fs::read_to_string(data.path().join("offline-agents.json")).unwrap();
    for own in [
        "Strada Memorandumului 5",
        "Monday to Saturday 9:00 to 19:00",
        "Strada Lăpușneanu 2",
    ] {
        assert!(agents.contains(own), "{own} missing from {agents}");
    }

    let template = manifests.path().join("template.yaml");
    let edited = std::fs::read_to_string(&template)
        .unwrap()
        .replace("cu ce vă pot ajuta?", "cum vă pot ajuta?");
    std::fs::write(&template, edited).unwrap();
    for location in locations {
        let mut greeting = Value::Null;
        for _ in 0..300 {
            greeting = item(location)["greeting"].clone();
            if greeting == json!("Bună ziua! Zâmbet Dental {{city}}, cum vă pot ajuta?") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            greeting,
            json!("Bună ziua! Zâmbet Dental {{city}}, cum vă pot ajuta?"),
            "{location} on the edited template within 30 s; stderr: {}",
            local.stderr()
        );
        assert_eq!(item(location)["templateGeneration"], json!(2));
        let (_, status) = local.status("B0300003", location).await;
        assert_eq!(
            status["config"]["greeting"],
            json!("Bună ziua! Zâmbet Dental {{city}}, cum vă pot ajuta?"),
            "the status shows the edited template: {status}"
        );
    }

    std::fs::remove_file(&template).unwrap();
    for location in locations {
        local
            .status_until("B0300003", location, "stalled", |body| {
                body["phase"] == json!("Error")
                    && body["message"].as_str().is_some_and(|m| {
                        m.contains("VoiceAgentTemplate zambet-dental does not exist")
                    })
            })
            .await;
    }
    assert!(local.stop().await);
}

#[tokio::test]
async fn local_mode_on_dynamodb_and_kinesis_in_the_emulator() {
    let Some(endpoint) = crate::support::emulator() else {
        return;
    };
    let config = crate::support::aws_config(&endpoint);
    let table = crate::support::unique_name("local-tenants");
    let stream = crate::support::unique_name("local-actions");
    voice_operator::tenant::dynamodb::create_table(
        &aws_sdk_dynamodb::Client::new(&config),
        &table,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    crate::support::create_stream(&kinesis, &stream, 1).await;

    let data = tempfile::tempdir().unwrap();
    let aws_env = [
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let local = Local::start(
        data.path(),
        &examples(),
        &[
            "--tenant-store",
            "dynamodb",
            "--dynamodb-table",
            &table,
            "--action-sink",
            "kinesis",
            "--kinesis-stream",
            &stream,
        ],
        &aws_env,
    );
    assert!(
        local.report.contains(&format!("DynamoDB table {table}")),
        "{}",
        local.report
    );
    assert!(
        local.report.contains(&format!("Kinesis stream {stream}")),
        "{}",
        local.report
    );
    let agent = local.active(CLINIC.0, CLINIC.1).await;
    let item = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&table)
        .key(
            "businessId",
            aws_sdk_dynamodb::types::AttributeValue::S(CLINIC.0.into()),
        )
        .key(
            "locationId",
            aws_sdk_dynamodb::types::AttributeValue::S(CLINIC.1.into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the tenant item is in DynamoDB");
    assert_eq!(
        item.get("agentId").and_then(|v| v.as_s().ok()),
        Some(&agent)
    );

    let conversation = "conv_local_kinesis";
    let turn = message(conversation, CLINIC, "Ce program aveți?");
    let (code, answer) = local.signed("/api/elevenlabs/webhook", &turn).await;
    assert_eq!(code, 200, "{answer}");
    // The dashboard reads the stream the action log goes to.
    assert!(
        local
            .report
            .contains(&format!("the action log (kinesis:{stream})")),
        "{}",
        local.report
    );
    let path = format!("/api/dashboard/calls/{conversation}");
    let mut story = (0, Value::Null);
    for _ in 0..100 {
        story = local.dashboard(&path, ADMIN_TOKEN).await;
        if story.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(story.0, 200, "{}\nstderr: {}", story.1, local.stderr());
    assert_eq!(
        story.1["steps"].as_array().map(Vec::len),
        Some(1),
        "{}",
        story.1
    );
    assert!(local.stop().await);
    assert!(
        !data.path().join("agent-log.jsonl").exists(),
        "no JSON-lines file with the Kinesis sink"
    );

    let records: Vec<Value> = crate::support::stream_records(&kinesis, &stream)
        .await
        .into_iter()
        .map(|r| r.json)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let validator = crate::support::agent_log_validator();
    assert!(validator.is_valid(&records[0]), "{}", records[0]);
    assert_eq!(records[0]["data"]["agentSessionId"], json!(conversation));
    assert_eq!(records[0]["businessId"], json!(CLINIC.0));
}

/// Rows of `query` in the SQLite file at `path`, each column as text.
fn sqlite_rows(path: &Path, query: &str) -> Vec<Vec<Option<String>>> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut statement = db.prepare(query).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| row.get::<_, Option<String>>(i))
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_first_run_books_refuses_a_taken_slot_and_confirms_to_the_outbox() {
    let data = tempfile::tempdir().unwrap();
    let local = Local::start(data.path(), &examples(), &[], &[]);
    for embedded in [
        "app server      EMBEDDED bookings calendar (no --app-server-url)",
        "Mon-Fri 09:00-17:00, 30-minute slots",
        "messaging       EMBEDDED outbox (no provider configured)",
    ] {
        assert!(
            local.report.contains(embedded),
            "{embedded}: {}",
            local.report
        );
    }
    local.active(CLINIC.0, CLINIC.1).await;
    // The dashboard's live feed, open through the whole call (and the
    // stop: an open feed must not hold the process up).
    let live = reqwest::Client::new()
        .get(format!("{}/api/dashboard/live", local.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut live = live.bytes_stream().eventsource();

    let conversation = "conv_first_run";
    let simulated = Command::new("python3")
        .arg(examples().join("simulate-call.py"))
        .args(["--url", &local.base, "--conversation", conversation])
        .arg("--data-dir")
        .arg(data.path())
        .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("VOICE_OPERATOR_LLM_SECRET", LLM_SECRET)
        .output()
        .expect("python3 runs the simulator");
    let out = String::from_utf8_lossy(&simulated.stdout);
    assert!(
        simulated.status.success(),
        "{out}\n{}\nserver: {}",
        String::from_utf8_lossy(&simulated.stderr),
        local.stderr()
    );

    // The calendar holds the one booking; the second ask was refused.
    let booked = sqlite_rows(
        &data.path().join("bookings.sqlite"),
        "SELECT id, business_id, location_id, date, time, customer_phone FROM appointments",
    );
    assert_eq!(booked.len(), 1, "{booked:?}");
    let [id, business, location, date, time, phone] = &booked[0][..] else {
        panic!("{booked:?}")
    };
    let (id, date, time) = (
        id.clone().unwrap(),
        date.clone().unwrap(),
        time.clone().unwrap(),
    );
    assert_eq!(
        (business.as_deref(), location.as_deref(), phone.as_deref()),
        (Some(CLINIC.0), Some(CLINIC.1), Some("+40721000111"))
    );
    // The outbox holds the confirmation, and nothing else.
    let outbox = sqlite_rows(
        &data.path().join("outbox.sqlite"),
        "SELECT id, channel, recipient, text FROM messages",
    );
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let [message_id, channel, recipient, text] = &outbox[0][..] else {
        panic!("{outbox:?}")
    };
    assert_eq!(
        (channel.as_deref(), recipient.as_deref()),
        (Some("sms"), Some("+40721000111"))
    );
    let text = text.clone().unwrap();
    assert!(text.contains(&format!("{date} at {time}")), "{text}");
    let message_id = message_id.clone().unwrap();
    assert!(
        out.contains(&format!("{message_id} sms to +40721000111")),
        "{out}"
    );

    // The action log tells all of it: the SMS as sent through the outbox,
    // and the booking and the refusal in the call's transcript.
    let validator = crate::support::agent_log_validator();
    let mut records = Vec::new();
    for _ in 0..100 {
        records = read_log(&data.path().join("agent-log.jsonl"))
            .into_iter()
            .filter(|r| r["data"]["agentSessionId"] == json!(conversation))
            .collect();
        if records
            .iter()
            .any(|r| r["data"]["metadata"]["event"] == json!("post_call_transcription"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for record in &records {
        assert!(validator.is_valid(record), "schema-valid: {record}");
    }
    let sms: Vec<&Value> = records
        .iter()
        .filter(|r| r["data"]["actionType"] == json!("sms"))
        .collect();
    assert_eq!(sms.len(), 1, "{records:#?}");
    let sms = &sms[0]["data"];
    assert_eq!(sms["externalId"], json!(message_id));
    assert_eq!(sms["metadata"]["standIn"], json!("outbox"));
    assert_eq!(sms["metadata"]["deliveryStatus"], json!("sent"));
    assert_eq!(sms["recipient"]["phone"], json!("+40721000111"));
    let post_call = records
        .iter()
        .find(|r| r["data"]["metadata"]["event"] == json!("post_call_transcription"))
        .unwrap_or_else(|| panic!("no post-call record: {records:#?}"));
    let said: Vec<&str> = post_call["data"]["metadata"]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == json!("agent"))
        .filter_map(|t| t["message"].as_str())
        .collect();
    assert!(
        said.iter()
            .any(|s| s.contains("create_appointment done") && s.contains(&id)),
        "the booking: {said:#?}"
    );
    assert!(
        said.iter().any(|s| s.contains("create_appointment failed")
            && s.contains("409")
            && s.contains("slot taken")),
        "the refusal: {said:#?}"
    );

    // The dashboard inside `local` shows the same: the clinic's totals
    // count every record of the log, the one SMS among them, and the
    // call's story holds its records with the booking and the refusal.
    let dashboard = format!("{}/dashboard", local.base);
    assert!(
        local
            .report
            .contains(&format!("dashboard       {dashboard} with the admin token"))
            && local
                .report
                .contains(&format!("  dashboard              {dashboard} ")),
        "{}",
        local.report
    );
    let page = reqwest::get(&dashboard).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let clinic: Vec<Value> = read_log(&data.path().join("agent-log.jsonl"))
        .into_iter()
        .filter(|r| r["businessId"] == json!(CLINIC.0) && r["locationId"] == json!(CLINIC.1))
        .collect();
    let voice = clinic
        .iter()
        .filter(|r| r["data"]["actionType"] == json!("voice_call"))
        .count();
    let summary_path = format!("/api/dashboard/summary?businessId={}", CLINIC.0);
    let mut summary = Value::Null;
    for _ in 0..100 {
        let (code, body) = local.dashboard(&summary_path, ADMIN_TOKEN).await;
        assert_eq!(code, 200, "{body}");
        summary = body;
        if summary["tenants"][0]["records"] == json!(clinic.len()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tenants = summary["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{summary}");
    let totals = &tenants[0];
    assert_eq!(totals["locationId"], json!(CLINIC.1), "{summary}");
    assert_eq!(totals["records"], json!(clinic.len()), "{summary}");
    assert_eq!(totals["messages"], json!({"sms": 1}), "{summary}");
    assert_eq!(totals["calls"], json!(voice), "{summary}");
    assert_eq!(totals["failures"], json!(0), "{summary}");
    let (code, _) = local.dashboard(&summary_path, "not-a-token").await;
    assert_eq!(code, 401);

    let (code, story) = local
        .dashboard(&format!("/api/dashboard/calls/{conversation}"), ADMIN_TOKEN)
        .await;
    assert_eq!(code, 200, "{story}");
    let steps = story["steps"].as_array().unwrap();
    assert_eq!(steps.len(), records.len(), "{story:#}");
    let sent: Vec<&Value> = steps
        .iter()
        .filter(|s| s["actionType"] == json!("sms"))
        .collect();
    assert_eq!(sent.len(), 1, "{story:#}");
    assert_eq!(sent[0]["outcome"], json!("sent"));
    assert_eq!(sent[0]["record"]["data"]["externalId"], json!(message_id));
    let told: Vec<String> = steps
        .iter()
        .filter_map(|s| s["record"]["data"]["metadata"]["transcript"].as_array())
        .flatten()
        .filter_map(|t| t["message"].as_str().map(str::to_owned))
        .collect();
    let booked = told
        .iter()
        .filter(|s| s.contains("create_appointment done") && s.contains(&id))
        .count();
    let refused = told
        .iter()
        .filter(|s| s.contains("create_appointment failed") && s.contains("slot taken"))
        .count();
    assert_eq!((booked, refused), (1, 1), "{told:#?}");

    // The live feed showed the SMS as it was stored, and ends when
    // `local` stops.
    let mut fed = false;
    while !fed {
        let event = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("the SMS on the live feed within 10 s")
            .expect("the feed is open")
            .unwrap();
        let record: Value = serde_json::from_str(&event.data).unwrap();
        fed = event.event == "record" && record["data"]["externalId"] == json!(message_id);
    }
    assert!(local.stop().await);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = live.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live feed ends with the process");
}
