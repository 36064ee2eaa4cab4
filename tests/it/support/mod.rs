//! Shared test helpers: AWS clients for the local emulator, the moto
//! server, the fake Kinesis endpoint, and record factories.

pub mod bridge;
pub mod cluster;
pub mod gitops;
pub mod kube_mock;
pub mod providers;
pub mod runtime;
pub mod smtp;
pub mod webdriver;

pub use voice_operator::testkit::{fake_bedrock, fake_elevenlabs, fake_kinesis, sse};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine;
use voice_operator::actionlog::{
    Action, AgentLogRecord, EmailProvider, Outcome, Recipient, SmsProvider, VoiceCall,
};

/// Path to a file under `../shared/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel)
}

/// The JSON Schema validator for agent-log records: the shared, original
/// schema.
pub fn agent_log_validator() -> jsonschema::Validator {
    validator_of(&fixture("agent-log/agent-log.schema.json"))
}

/// The repository's own schema, `schemas/agent-log.schema.json`: the
/// shared one with `data.metadata.cost` added.
pub fn repo_agent_log_validator() -> jsonschema::Validator {
    validator_of(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/agent-log.schema.json"))
}

fn validator_of(path: &std::path::Path) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the agent-log schema compiles")
}

/// Fails unless `record` is valid against both the shared schema and the
/// repository's.
pub fn assert_valid_against_both_schemas(record: &serde_json::Value) {
    for (name, validator) in [
        ("shared", agent_log_validator()),
        ("repository", repo_agent_log_validator()),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(record)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name} schema: {errors:?} in {record:#}");
    }
}

/// The shared AWS emulator started by `scripts/test.sh`.
pub fn emulator_endpoint() -> String {
    std::env::var("VOICE_OPERATOR_TEST_AWS_ENDPOINT").expect(
        "VOICE_OPERATOR_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test.sh, which starts the AWS emulator",
    )
}

/// SDK settings for the emulator or a fake endpoint: test credentials,
/// a fixed region, and the given retry policy and attempt timeout.
fn test_sdk_config(endpoint: &str, retry: RetryConfig, attempt_timeout: Duration) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        )))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build()
}

/// The emulator's endpoint, or `None` (with a note) when the tests run
/// without it; scripts/test.sh always starts it.
pub fn emulator() -> Option<String> {
    if std::env::var_os("VOICE_OPERATOR_TEST_AWS_ENDPOINT").is_none() {
        eprintln!(
            "skipped: VOICE_OPERATOR_TEST_AWS_ENDPOINT is not set; scripts/test.sh starts the AWS emulator and sets it"
        );
        return None;
    }
    Some(emulator_endpoint())
}

/// SDK settings for `endpoint` with test credentials and a fixed region,
/// so nothing of a developer's own AWS setup is read.
pub fn aws_config(endpoint: &str) -> SdkConfig {
    test_sdk_config(
        endpoint,
        RetryConfig::standard().with_max_attempts(2),
        Duration::from_secs(10),
    )
}

/// What the emulator recorded, from its `/moto-api/data.json`.
pub async fn moto_data(endpoint: &str) -> serde_json::Value {
    reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A phone number no other test (or run) uses on the shared emulator.
pub fn unique_phone() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000;
    format!("+40721{n:07}")
}

/// A sender address on a domain of its own, so no identity another test
/// verified covers it.
pub fn unique_sender() -> String {
    format!("programari@{}.example.com", unique_name("salon"))
}

/// A Kinesis client for `endpoint` with the SDK's own retries off (the
/// shipper retries) and a short attempt timeout.
pub fn kinesis_client(endpoint: &str, attempt_timeout: Duration) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&test_sdk_config(
        endpoint,
        RetryConfig::disabled(),
        attempt_timeout,
    ))
}

/// A DynamoDB client for `endpoint` with the SDK's standard retries.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&test_sdk_config(
        endpoint,
        RetryConfig::standard(),
        Duration::from_secs(5),
    ))
}

/// Creates the Kinesis stream `name` with `shards` shards and waits until it
/// is ACTIVE.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        let status = summary
            .stream_description_summary()
            .unwrap()
            .stream_status();
        if status.as_str() == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// One record read back from a Kinesis stream.
pub struct StreamRecord {
    /// The id of the shard it was read from.
    pub shard: String,
    /// Its data, parsed as JSON.
    pub json: serde_json::Value,
    /// The partition key it was put with.
    pub partition_key: String,
}

/// Every record in `stream`, shard by shard, each shard from its start.
pub async fn stream_records(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<StreamRecord> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let page = client
                .get_records()
                .shard_iterator(&iterator)
                .limit(1000)
                .send()
                .await
                .unwrap();
            out.extend(page.records().iter().map(|r| StreamRecord {
                shard: shard.shard_id().to_owned(),
                json: serde_json::from_slice(r.data().as_ref()).unwrap(),
                partition_key: r.partition_key().unwrap_or_default().to_owned(),
            }));
            match page.next_shard_iterator() {
                Some(next) if !page.records().is_empty() => iterator = next.to_owned(),
                _ => break,
            }
        }
    }
    out
}

/// A name no other test uses, for tables and streams on the shared emulator.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A moto server this test owns, so it can stop and restart it.
pub struct Moto {
    pub port: u16,
    child: Option<Child>,
}

impl Moto {
    /// Starts `moto_server` (path from VOICE_OPERATOR_TEST_MOTO_SERVER) on
    /// a free loopback port and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let mut moto = Moto { port, child: None };
        moto.restart();
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its state goes with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        let bin = std::env::var("VOICE_OPERATOR_TEST_MOTO_SERVER").expect(
            "VOICE_OPERATOR_TEST_MOTO_SERVER is not set: run the tests with scripts/test.sh",
        );
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not come up on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `i`-th test record: tenants, action types and outcomes vary with `i`.
pub fn sample_record(i: usize, tenants: usize) -> AgentLogRecord {
    let t = i % tenants;
    let outcome = match i % 3 {
        0 => Outcome::Sent {
            external_id: Some(format!("ext-{i}")),
        },
        1 => Outcome::Received { external_id: None },
        _ => Outcome::failed(format!("provider said no to {i}")),
    };
    let action = |recipient| Action {
        business_id: format!("B{t:07}"),
        location_id: format!("L{t:07}"),
        agent_session_id: Some(format!("session-{i}")),
        recipient,
        outcome: outcome.clone(),
    };
    match i % 4 {
        0 => AgentLogRecord::sms(
            action(Recipient::phone("+40721000111")),
            SmsProvider::Twilio,
            40 + i % 100,
        ),
        1 => AgentLogRecord::email(
            action(Recipient::email("ana@example.com")),
            EmailProvider::AwsSes,
            Some("Confirmare programare".into()),
            400,
        ),
        2 => AgentLogRecord::meta_message(action(Recipient::phone("+40721000112")), 12),
        _ => AgentLogRecord::voice_call(
            action(Recipient::default()),
            VoiceCall {
                conversation_id: format!("conv_{i}"),
                call_duration_secs: Some((i % 300) as f64),
                ..VoiceCall::default()
            },
        ),
    }
    .expect("sample records are valid")
}

/// Decodes a base64 `Data` field and returns the record's JSON.
pub fn decode_data(b64: &str) -> serde_json::Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The `requestId` of each base64 `Data` field, in order.
pub fn request_ids(data: &[String]) -> Vec<String> {
    data.iter()
        .map(|d| decode_data(d)["requestId"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `done` every 20 ms for up to `limit`.
pub async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
