//! `voice-operator dynamodb create-table`, the binary against the local
//! AWS emulator: creates, then finds the table in place; bad input is
//! refused before any call.

use std::process::{Command, Output};

fn create_table(endpoint: &str, extra: &[&str], env_region: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_voice-operator"));
    command
        .args(["dynamodb", "create-table"])
        .args(extra)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("DYNAMODB_ELEVENLABS_AGENTS_TABLE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    if env_region {
        command.env("AWS_REGION", "us-east-1");
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn creates_the_table_once_and_then_finds_it() {
    let endpoint = crate::support::emulator_endpoint();
    let table = crate::support::unique_name("cli-tenants");
    let first = create_table(&endpoint, &["--dynamodb-table", &table], true);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        format!("created table {table}; it is ACTIVE\n")
    );

    let second = create_table(&endpoint, &["--dynamodb-table", &table], true);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("already exists"),
        "{}",
        text(&second.stdout)
    );

    let client = crate::support::dynamodb_client(&endpoint);
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = described
        .table
        .unwrap()
        .key_schema()
        .iter()
        .map(|k| format!("{} {}", k.key_type().as_str(), k.attribute_name()))
        .collect();
    assert_eq!(keys, ["HASH businessId", "RANGE locationId"]);
}

#[test]
fn bad_input_is_refused_with_the_flag_named() {
    let endpoint = "http://127.0.0.1:9"; // never reached
    let bad_name = create_table(endpoint, &["--dynamodb-table", "a b"], true);
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(
        text(&bad_name.stderr).contains("DYNAMODB_ELEVENLABS_AGENTS_TABLE"),
        "{}",
        text(&bad_name.stderr)
    );

    let bad_wait = create_table(endpoint, &["--wait-secs", "0"], true);
    assert_eq!(bad_wait.status.code(), Some(2));
    assert!(
        text(&bad_wait.stderr).contains("--wait-secs"),
        "{}",
        text(&bad_wait.stderr)
    );

    let no_region = create_table(endpoint, &[], false);
    assert_eq!(no_region.status.code(), Some(2));
    assert!(
        text(&no_region.stderr).contains("AWS_REGION"),
        "{}",
        text(&no_region.stderr)
    );
}
