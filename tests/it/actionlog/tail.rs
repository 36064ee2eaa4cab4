//! `action-log tail` against the AWS emulator (moto) with the real
//! aws-sdk-kinesis client, over a JSON-lines file, and through the binary
//! with Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use voice_operator::actionlog::AgentLogRecord;
use voice_operator::actionlog::tail::kinesis::Timing;
use voice_operator::actionlog::tail::{self, Filter, Format, Start, TailError, TailSummary};

use crate::support::{
    create_stream, emulator_endpoint, kinesis_client, sample_record, unique_name, wait_for,
};

/// What the tail printed, shared with the test.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Out {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `requestId` of every line (`--json` output), in order.
    fn ids(&self) -> Vec<String> {
        ids_of(&self.lines(), &BTreeSet::new())
    }
}

/// A tail running in the background until stopped.
struct Tailing {
    out: Out,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<TailSummary, TailError>>,
}

impl Tailing {
    fn start<F>(
        source: F,
        items: mpsc::Receiver<tail::Item>,
        filter: Filter,
        format: Format,
    ) -> Self
    where
        F: std::future::Future<Output = Result<(), TailError>> + Send + 'static,
    {
        let out = Out::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let mut writer = out.clone();
        let task = tokio::spawn(async move {
            tail::run(items, source, filter, format, &mut writer, async {
                let _ = stopped.await;
            })
            .await
        });
        Tailing { out, stop, task }
    }

    fn kinesis(
        client: &aws_sdk_kinesis::Client,
        stream: &str,
        start: Start,
        filter: Filter,
        format: Format,
    ) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let timing = Timing {
            poll: Duration::from_millis(100),
            relist: Duration::from_millis(300),
            backoff_max: Duration::from_millis(500),
        };
        let source = tail::kinesis::follow(
            client.clone(),
            stream.to_owned(),
            start,
            BTreeMap::new(),
            timing,
            tx,
        );
        Self::start(source, rx, filter, format)
    }

    async fn wait_for_ids(&self, ids: &[String], what: &str) {
        let out = self.out.clone();
        let wanted: BTreeSet<&String> = ids.iter().collect();
        wait_for(Duration::from_secs(30), what, || {
            let seen = out.ids();
            wanted.iter().all(|id| seen.contains(id))
        })
        .await;
    }

    async fn stop(self) -> (Vec<String>, TailSummary) {
        let _ = self.stop.send(());
        let summary = self.task.await.unwrap().expect("the tail ends cleanly");
        (self.out.lines(), summary)
    }
}

fn client() -> aws_sdk_kinesis::Client {
    kinesis_client(&emulator_endpoint(), Duration::from_secs(5))
}

/// Puts `record` with PutRecord and returns (shard, requestId).
async fn put(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    record: &AgentLogRecord,
) -> (String, String) {
    let answer = client
        .put_record()
        .stream_name(stream)
        .partition_key(format!("{}:{}", record.business_id, record.location_id))
        .data(Blob::new(serde_json::to_vec(record).unwrap()))
        .send()
        .await
        .expect("put record");
    (answer.shard_id().to_owned(), record.request_id.to_string())
}

async fn put_raw(client: &aws_sdk_kinesis::Client, stream: &str, data: &[u8]) {
    client
        .put_record()
        .stream_name(stream)
        // The key of `sample_record(0, _)`: one shard, so a good record
        // put after these is read after them.
        .partition_key("B0000000:L0000000")
        .data(Blob::new(data.to_vec()))
        .send()
        .await
        .expect("put record");
}

/// Open shards of `stream`.
async fn open_shards(client: &aws_sdk_kinesis::Client, stream: &str) -> BTreeSet<String> {
    let listed = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    listed
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_none()
        })
        .map(|s| s.shard_id().to_owned())
        .collect()
}

/// A `latest` tail sees only what is written once its readers hold their
/// iterators: write warm-up records until one has come through every open
/// shard. Returns their requestIds (they are printed like any other).
async fn warm_up(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    tailing: &Tailing,
) -> BTreeSet<String> {
    let shards = open_shards(client, stream).await;
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    for round in 0..100 {
        let seen = tailing.out.ids();
        let through: BTreeSet<&String> = written
            .iter()
            .filter(|(id, _)| seen.contains(id))
            .map(|(_, shard)| shard)
            .collect();
        if shards.iter().all(|s| through.contains(s)) {
            return written.into_keys().collect();
        }
        for i in 0..20 {
            let (shard, id) =
                put(client, stream, &sample_record(10_000 + round * 20 + i, 20)).await;
            written.insert(id, shard);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the tail never caught up with the warm-up records");
}

/// A fresh two-shard stream and a `latest` tail on it that has caught up,
/// with the requestIds of its warm-up records.
async fn latest_tail(client: &aws_sdk_kinesis::Client) -> (String, Tailing, BTreeSet<String>) {
    let stream = unique_name("tail");
    create_stream(client, &stream, 2).await;
    let tailing = Tailing::kinesis(
        client,
        &stream,
        Start::Latest,
        Filter::default(),
        Format::Json,
    );
    let warm = warm_up(client, &stream, &tailing).await;
    (stream, tailing, warm)
}

/// The `requestId` of each `--json` line, leaving out `except`.
fn ids_of(lines: &[String], except: &BTreeSet<String>) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let json: Value = serde_json::from_str(l).expect("--json prints JSON lines");
            json["requestId"].as_str().unwrap().to_owned()
        })
        .filter(|id| !except.contains(id))
        .collect()
}

/// Asserts that `printed` holds each id of `written` exactly once and, per
/// shard, in the order written.
fn once_each_in_shard_order(printed: &[String], written: &[(String, String)]) {
    let position: BTreeMap<&String, usize> =
        printed.iter().enumerate().map(|(i, id)| (id, i)).collect();
    for (_, id) in written {
        assert_eq!(
            printed.iter().filter(|p| *p == id).count(),
            1,
            "{id} printed once"
        );
    }
    let mut per_shard: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
    for (shard, id) in written {
        per_shard.entry(shard).or_default().push(position[id]);
    }
    assert!(
        per_shard.len() >= 2,
        "records spread over the shards: {per_shard:?}"
    );
    for (shard, positions) in per_shard {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "shard {shard} printed in order: {positions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_while_tailing_two_shards_are_printed_once_each_in_shard_order() {
    let client = client();
    let (stream, tailing, warm) = latest_tail(&client).await;

    let mut written = Vec::new();
    for i in 0..60 {
        written.push(put(&client, &stream, &sample_record(i, 20)).await);
    }
    let ids: Vec<String> = written.iter().map(|(_, id)| id.clone()).collect();
    tailing.wait_for_ids(&ids, "the 60 records").await;
    let (lines, summary) = tailing.stop().await;
    let printed: Vec<String> = ids_of(&lines, &warm);
    assert_eq!(printed.len(), 60, "nothing else, nothing twice");
    once_each_in_shard_order(&printed, &written);
    assert_eq!(
        (summary.invalid, summary.duplicates, summary.filtered),
        (0, 0, 0),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pick_business_location_action_and_outcome() {
    let client = client();
    let stream = unique_name("tail");
    create_stream(&client, &stream, 2).await;
    let mut records = Vec::new();
    for i in 0..80 {
        let record = sample_record(i, 4);
        put(&client, &stream, &record).await;
        records.push(serde_json::to_value(&record).unwrap());
    }
    let since = Start::Since("2020-01-01T00:00:00Z".parse().unwrap());
    let filter = Filter {
        businesses: vec!["B0000001".into(), "B0000003".into()],
        locations: vec!["L0000001".into(), "L0000003".into(), "L0000002".into()],
        actions: vec!["sms".parse().unwrap(), "email".parse().unwrap()],
        outcomes: vec!["success".parse().unwrap()],
        since: None,
    };
    let expected: Vec<&Value> = records
        .iter()
        .filter(|r| {
            ["B0000001", "B0000003"].contains(&r["businessId"].as_str().unwrap())
                && ["sms", "email"].contains(&r["data"]["actionType"].as_str().unwrap())
                && ["sent", "delivered"]
                    .contains(&r["data"]["metadata"]["deliveryStatus"].as_str().unwrap())
        })
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < records.len() / 4,
        "a real selection: {}",
        expected.len()
    );

    let tailing = Tailing::kinesis(&client, &stream, since, filter, Format::Text);
    let out = tailing.out.clone();
    wait_for(Duration::from_secs(30), "the selected records", || {
        out.lines().len() >= expected.len()
    })
    .await;
    // Whatever else would come through has had its chance too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (lines, summary) = tailing.stop().await;
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for record in expected {
        let tenant = format!(
            "{}/{}",
            record["businessId"].as_str().unwrap(),
            record["locationId"].as_str().unwrap()
        );
        let time = record["timestamp"].as_str().unwrap().trim_end_matches('Z');
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(time) && l.contains(&tenant)),
            "{time} {tenant} in {lines:#?}"
        );
    }
    assert_eq!(summary.printed + summary.filtered, 80, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_starts_at_a_time_and_follows_on() {
    let client = client();
    let stream = unique_name("tail");
    create_stream(&client, &stream, 2).await;
    let mut before = Vec::new();
    for i in 0..20 {
        before.push(put(&client, &stream, &sample_record(i, 20)).await.1);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut after = Vec::new();
    for i in 20..40 {
        after.push(put(&client, &stream, &sample_record(i, 20)).await);
    }
    let tailing = Tailing::kinesis(
        &client,
        &stream,
        Start::Since(since),
        Filter {
            since: Some(since),
            ..Filter::default()
        },
        Format::Json,
    );
    for i in 40..60 {
        after.push(put(&client, &stream, &sample_record(i, 20)).await);
    }
    let ids: Vec<String> = after.iter().map(|(_, id)| id.clone()).collect();
    tailing.wait_for_ids(&ids, "the records since").await;
    let (lines, _) = tailing.stop().await;
    let printed: Vec<String> = ids_of(&lines, &BTreeSet::new());
    assert!(
        before.iter().all(|id| !printed.contains(id)),
        "nothing from before --since"
    );
    assert_eq!(printed.len(), 40);
    once_each_in_shard_order(&printed, &after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resharded_stream_keeps_being_followed() {
    let client = client();
    let (stream, tailing, warm) = latest_tail(&client).await;
    let mut written = Vec::new();
    for i in 0..20 {
        written.push(put(&client, &stream, &sample_record(i, 20)).await.1);
    }
    tailing
        .wait_for_ids(&written, "the records before the reshard")
        .await;

    // moto reaches 3 shards by splitting both (4 children), then merging
    // two of them: children of splits and a child of a merge.
    client
        .update_shard_count()
        .stream_name(&stream)
        .target_shard_count(3)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .expect("update shard count");
    assert_eq!(open_shards(&client, &stream).await.len(), 3);
    for i in 20..60 {
        written.push(put(&client, &stream, &sample_record(i, 20)).await.1);
    }
    tailing
        .wait_for_ids(&written, "the records after the reshard")
        .await;
    let (lines, summary) = tailing.stop().await;
    let printed: Vec<String> = ids_of(&lines, &warm);
    let unique: BTreeSet<&String> = printed.iter().collect();
    assert_eq!((printed.len(), unique.len()), (60, 60), "each printed once");
    assert_eq!(summary.invalid, 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_is_not_an_agent_log_record_is_skipped_and_counted() {
    let client = client();
    let stream = unique_name("tail");
    create_stream(&client, &stream, 2).await;
    put_raw(&client, &stream, b"not json at all").await;
    put_raw(&client, &stream, br#"{"resourceType":"agent-log"}"#).await;
    let good = put(&client, &stream, &sample_record(0, 20)).await.1;
    let since = Start::Since("2020-01-01T00:00:00Z".parse().unwrap());
    let tailing = Tailing::kinesis(&client, &stream, since, Filter::default(), Format::Json);
    tailing
        .wait_for_ids(std::slice::from_ref(&good), "the good record")
        .await;
    let (lines, summary) = tailing.stop().await;
    assert_eq!(lines.len(), 1);
    assert_eq!((summary.printed, summary.invalid), (1, 2), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_disappears_ends_the_tail_with_a_clear_error() {
    let client = client();
    let (stream, tailing, _) = latest_tail(&client).await;
    client
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), tailing.task)
        .await
        .expect("the tail ends");
    let err = ended.unwrap().expect_err("a missing stream is an error");
    assert!(
        err.to_string().contains(&stream) && err.to_string().contains("does not exist"),
        "{err}"
    );
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn json_line(i: usize) -> (String, String) {
    let record = sample_record(i, 20);
    (
        record.request_id.to_string(),
        format!("{}\n", serde_json::to_string(&record).unwrap()),
    )
}

#[tokio::test]
async fn a_json_lines_file_is_followed_like_tail_f() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-log.jsonl");
    let (old, line) = json_line(0);
    append(&path, &line);
    let (tx, rx) = mpsc::channel(64);
    let source = tail::file::follow(
        path.clone(),
        tail::file::FileStart::End,
        Duration::from_millis(20),
        tx,
    );
    let tailing = Tailing::start(source, rx, Filter::default(), Format::Json);
    // Records written from now on are shown, the one before is not: once
    // a warm-up record comes through, the tail is at the end of the file.
    let mut warm = BTreeSet::new();
    for k in 0.. {
        assert!(k < 100, "the tail never showed a warm-up record");
        let (id, line) = json_line(100 + k);
        append(&path, &line);
        warm.insert(id);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !tailing.out.ids().is_empty() {
            break;
        }
    }
    let (a, line_a) = json_line(1);
    let (b, line_b) = json_line(2);
    append(&path, &line_a);
    // A line in two writes is one record, handed on at its newline.
    let (head, rest) = line_b.split_at(40);
    append(&path, head);
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&path, rest);
    append(&path, "{\"not\": \"a record\"}\n\n");
    tailing
        .wait_for_ids(&[a.clone(), b.clone()], "the appended records")
        .await;
    // Truncated (as by logrotate's copytruncate): read again from the start.
    std::fs::write(&path, "").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (c, line_c) = json_line(3);
    append(&path, &line_c);
    tailing
        .wait_for_ids(std::slice::from_ref(&c), "the record after truncation")
        .await;
    let out = tailing.out.clone();
    let (_, summary) = tailing.stop().await;
    assert_eq!(
        ids_of(&out.lines(), &warm),
        [a, b, c],
        "in order, and nothing from before the start"
    );
    assert!(!out.ids().contains(&old));
    assert_eq!(
        (summary.printed, summary.invalid),
        (out.lines().len() as u64, 1),
        "{summary}"
    );
}

#[test]
fn ctrl_c_ends_the_binary_cleanly_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-log.jsonl");
    for i in 0..3 {
        append(&path, &json_line(i).1);
    }
    append(&path, "garbage\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voice-operator"))
        .args([
            "action-log",
            "tail",
            "--from",
            "jsonl",
            "--since",
            "2020-01-01T00:00:00Z",
            "--poll-ms",
            "50",
            "--action",
            "sms",
            "--action",
            "email",
            "--action",
            "meta_message",
        ])
        .arg("--action-log-file")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the tail printed {lines:?}"
        );
        lines.push(line);
    }
    // Appended after start: followed (the voice call is filtered out).
    append(&path, &json_line(3).1);
    append(&path, &json_line(4).1);
    let mut line = String::new();
    assert!(stdout.read_line(&mut line).unwrap() > 0);
    lines.push(line);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "exit 0 on Ctrl-C: {:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("4 printed, 1 filtered out") && stderr.contains("1 invalid skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("garbage") || stderr.contains("skipping"),
        "{stderr}"
    );
    for (i, line) in lines.iter().enumerate() {
        let i = if i == 3 { 4 } else { i };
        assert!(line.contains(&format!("B000000{i}/L000000{i}")), "{line}");
    }
    assert!(lines[3].contains(" sms "), "{}", lines[3]);
}

/// Errors Kinesis answers that moto never does, put in front of moto's
/// answers by an SDK interceptor: the reader's handling of an expired
/// iterator, throttling and a shard that is gone runs against the real
/// client and the real emulator everywhere else.
mod faults {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use aws_sdk_kinesis::config::interceptors::{
        BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    };
    use aws_sdk_kinesis::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::config_bag::{Storable, StoreReplace};

    /// The Kinesis operation of a request (`X-Amz-Target`, less its prefix).
    fn operation(target: Option<&str>) -> String {
        target
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned()
    }

    /// An error waiting for operations, and what went past.
    #[derive(Default)]
    struct Plan {
        /// Operation -> (error code, how many more answers get it, and
        /// only for requests whose body names this shard, if set).
        armed: BTreeMap<String, (String, u32, Option<String>)>,
        /// Every request: operation and body.
        seen: Vec<(String, String)>,
        /// Errors answered.
        injected: u32,
    }

    #[derive(Clone, Default, Debug)]
    pub struct Faults(Arc<Mutex<Plan>>);

    impl std::fmt::Debug for Plan {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} injected", self.injected)
        }
    }

    /// The error chosen for one attempt, kept in its config bag between
    /// the transmit and the deserialization hooks.
    #[derive(Debug, Clone)]
    struct Inject(String);

    impl Storable for Inject {
        type Storer = StoreReplace<Self>;
    }

    impl Faults {
        /// The next `times` answers to `op` (for `shard` only, if given)
        /// become the error `code`.
        pub fn arm(&self, op: &str, code: &str, times: u32, shard: Option<&str>) {
            self.0.lock().unwrap().armed.insert(
                op.to_owned(),
                (code.to_owned(), times, shard.map(str::to_owned)),
            );
        }

        /// Errors answered so far.
        pub fn injected(&self) -> u32 {
            self.0.lock().unwrap().injected
        }

        /// Requests for `op` whose body contains `needle`.
        pub fn count(&self, op: &str, needle: &str) -> usize {
            let plan = self.0.lock().unwrap();
            plan.seen
                .iter()
                .filter(|(o, body)| o == op && body.contains(needle))
                .count()
        }

        /// `client`, with the faults in front of its answers.
        pub fn client(&self, client: &aws_sdk_kinesis::Client) -> aws_sdk_kinesis::Client {
            aws_sdk_kinesis::Client::from_conf(
                client
                    .config()
                    .to_builder()
                    .interceptor(self.clone())
                    .build(),
            )
        }
    }

    impl Intercept for Faults {
        fn name(&self) -> &'static str {
            "kinesis faults"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), aws_sdk_kinesis::error::BoxError> {
            let request = context.request();
            let op = operation(request.headers().get("x-amz-target"));
            let body =
                String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            let mut plan = self.0.lock().unwrap();
            let chosen = match plan.armed.get_mut(&op) {
                Some((code, left, shard))
                    if *left > 0 && shard.as_ref().is_none_or(|s| body.contains(s.as_str())) =>
                {
                    *left -= 1;
                    Some(code.clone())
                }
                _ => None,
            };
            plan.seen.push((op, body));
            if let Some(code) = chosen {
                plan.injected += 1;
                cfg.interceptor_state().store_put(Inject(code));
            }
            Ok(())
        }

        fn modify_before_deserialization(
            &self,
            context: &mut BeforeDeserializationInterceptorContextMut<'_>,
            _: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), aws_sdk_kinesis::error::BoxError> {
            let Some(Inject(code)) = cfg.load::<Inject>().cloned() else {
                return Ok(());
            };
            // The JSON error shape of the Kinesis API (awsJson1_1): the
            // code in `__type`, a 400 status.
            let response = context.response_mut();
            *response.status_mut() = 400.try_into().expect("a valid status");
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
            *response.body_mut() = SdkBody::from(format!(
                r#"{{"__type":"{code}","message":"injected by the test"}}"#
            ));
            Ok(())
        }
    }
}

/// A tail on a fresh two-shard stream whose client goes through `faults`.
async fn faulty_latest_tail(
    client: &aws_sdk_kinesis::Client,
    faults: &faults::Faults,
) -> (String, Tailing, BTreeSet<String>) {
    let stream = unique_name("tail");
    create_stream(client, &stream, 2).await;
    let tailing = Tailing::kinesis(
        &faults.client(client),
        &stream,
        Start::Latest,
        Filter::default(),
        Format::Json,
    );
    let warm = warm_up(client, &stream, &tailing).await;
    (stream, tailing, warm)
}

/// Puts records `from..to` and returns (shard, requestId) of each.
async fn put_range(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    range: std::ops::Range<usize>,
) -> Vec<(String, String)> {
    let mut written = Vec::new();
    for i in range {
        written.push(put(client, stream, &sample_record(i, 20)).await);
    }
    written
}

fn ids(written: &[(String, String)]) -> Vec<String> {
    written.iter().map(|(_, id)| id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_iterator_is_renewed_after_the_last_record_nothing_skipped_or_repeated() {
    let client = client();
    let faults = faults::Faults::default();
    let (stream, tailing, warm) = faulty_latest_tail(&client, &faults).await;
    let mut written = put_range(&client, &stream, 0..20).await;
    tailing
        .wait_for_ids(&ids(&written), "the first records")
        .await;
    let renewals_before = faults.count("GetShardIterator", "AFTER_SEQUENCE_NUMBER");

    // Every reader's next GetRecords finds its iterator expired.
    faults.arm("GetRecords", "ExpiredIteratorException", 2, None);
    written.extend(put_range(&client, &stream, 20..40).await);
    tailing
        .wait_for_ids(&ids(&written), "the records after the expiry")
        .await;
    let (lines, _) = tailing.stop().await;

    assert_eq!(faults.injected(), 2, "both readers saw the expiry");
    assert_eq!(
        faults.count("GetShardIterator", "AFTER_SEQUENCE_NUMBER") - renewals_before,
        2,
        "each reader took a fresh iterator after its last record"
    );
    let printed = ids_of(&lines, &warm);
    assert_eq!(printed.len(), 40);
    once_each_in_shard_order(&printed, &written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_reads_back_off_and_go_on_without_losing_a_record() {
    let client = client();
    let faults = faults::Faults::default();
    let (stream, tailing, warm) = faulty_latest_tail(&client, &faults).await;
    faults.arm(
        "GetRecords",
        "ProvisionedThroughputExceededException",
        6,
        None,
    );
    let written = put_range(&client, &stream, 0..30).await;
    tailing
        .wait_for_ids(&ids(&written), "the records after throttling")
        .await;
    let (lines, _) = tailing.stop().await;

    assert_eq!(faults.injected(), 6, "every armed refusal was answered");
    let printed = ids_of(&lines, &warm);
    assert_eq!(printed.len(), 30);
    once_each_in_shard_order(&printed, &written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_disappears_is_left_and_the_other_is_followed() {
    let client = client();
    let faults = faults::Faults::default();
    let (stream, tailing, warm) = faulty_latest_tail(&client, &faults).await;
    let shards: Vec<String> = open_shards(&client, &stream).await.into_iter().collect();
    let (gone, kept) = (&shards[0], &shards[1]);

    // The shard is trimmed away: its iterator expires and a fresh one is
    // refused, as for a shard past the stream's retention.
    faults.arm(
        "GetShardIterator",
        "ResourceNotFoundException",
        u32::MAX,
        Some(gone),
    );
    // One expiry at a time, until the gone shard's reader is the one
    // that met it (the other renews its iterator and reads on).
    for _ in 0..20 {
        if faults.count("GetShardIterator", gone) >= 2 {
            break;
        }
        let before = faults.injected();
        faults.arm("GetRecords", "ExpiredIteratorException", 1, None);
        wait_for(Duration::from_secs(10), "an expiry answered", || {
            faults.injected() > before
        })
        .await;
    }
    let written = put_range(&client, &stream, 0..40).await;
    let on_kept: Vec<(String, String)> =
        written.iter().filter(|(s, _)| s == kept).cloned().collect();
    assert!(!on_kept.is_empty(), "some records on the shard that stays");
    tailing
        .wait_for_ids(&ids(&on_kept), "the other shard's records")
        .await;
    // Several ListShards rounds later (relist every 300 ms), the gone
    // shard has not been started again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!tailing.task.is_finished(), "the tail goes on");
    let asked = faults.count("GetShardIterator", gone);
    let (lines, _) = tailing.stop().await;

    assert_eq!(
        asked, 2,
        "the gone shard's reader asked once for a fresh iterator, was refused and never started again"
    );
    let printed = ids_of(&lines, &warm);
    let unique: BTreeSet<&String> = printed.iter().collect();
    assert_eq!(unique.len(), printed.len(), "nothing printed twice");
    for (_, id) in &on_kept {
        assert!(printed.contains(id), "{id} from the kept shard printed");
    }
}
