//! `voice-operator dashboard` as a user runs it: a token created on the
//! command line reads its business through the API of the running
//! consumer, which stops cleanly on SIGTERM with its counts.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::dashboard::{append, fixture};
use crate::support::{free_port, wait_for};

fn binary(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_voice-operator"));
    command
        .env("VOICE_OPERATOR_DATA_DIR", data)
        .env_remove("VOICE_OPERATOR_ADMIN_TOKEN")
        .env_remove("VOICE_OPERATOR_DASHBOARD_STORE");
    command
}

#[test]
fn a_token_for_a_malformed_business_is_refused_by_flag() {
    let data = tempfile::tempdir().unwrap();
    let output = binary(data.path())
        .args(["dashboard", "token", "create", "--business", "B 1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--business businessId"), "{err}");
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn a_created_token_reads_its_business_from_the_running_dashboard() {
    let data = tempfile::tempdir().unwrap();
    append(&data.path().join("agent-log.jsonl"), &fixture());
    let created = binary(data.path())
        .args(["dashboard", "token", "create", "--business", "B1"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("vodash_"), "{token}");
    let note = String::from_utf8_lossy(&created.stderr);
    assert!(note.contains("no record of business B1"), "{note}");

    let port = free_port();
    let mut child = binary(data.path())
        .args(["dashboard", "--poll-ms", "50"])
        .env(
            "VOICE_OPERATOR_DASHBOARD_LISTEN",
            format!("127.0.0.1:{port}"),
        )
        .env("VOICE_OPERATOR_ADMIN_TOKEN", "admin-for-the-binary")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{port}/api/dashboard/summary?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z"
    );
    let client = reqwest::Client::new();
    let mut tenants = Vec::new();
    for _ in 0..200 {
        if let Ok(answer) = client.get(&url).bearer_auth(&token).send().await
            && answer.status() == 200
        {
            let body: Value = answer.json().await.unwrap();
            tenants = body["tenants"].as_array().cloned().unwrap_or_default();
            if tenants.len() == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tenants.len(), 2, "B1's two locations, not B2: {tenants:?}");
    assert_eq!(tenants[0]["calls"], 2);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for(Duration::from_secs(30), "the dashboard to stop", || {
        child.try_wait().unwrap().is_some()
    })
    .await;
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("dashboard: 8 stored, 0 duplicates dropped, 0 invalid skipped"),
        "{err}"
    );
    assert!(!err.contains(&token[7..]), "the token is never logged");
}
