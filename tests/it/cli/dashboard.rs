//! `voice-operator dashboard` as a user runs it: a token created on the
//! command line reads its business through the API of the running
//! consumer, which stops cleanly on SIGTERM with its counts.

use std::time::Duration;

use serde_json::Value;

use crate::dashboard::{Served, append, binary, fixture, token_create};

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
    let (token, note) = token_create(data.path(), "B1");
    assert!(token.starts_with("vodash_"), "{token}");
    assert!(note.contains("no record of business B1"), "{note}");

    let served = Served::start(data.path(), "admin-for-the-binary");
    let url = format!(
        "{}/api/dashboard/summary?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z",
        served.base
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

    let (stopped, err) = served.stop().await;
    assert!(stopped, "{err}");
    assert!(
        err.contains("dashboard: 8 stored, 0 duplicates dropped, 0 invalid skipped"),
        "{err}"
    );
    assert!(!err.contains(&token[7..]), "the token is never logged");
}
