//! SIGTERM to the real binary: what is queued gets flushed; what cannot be
//! delivered in time is saved to the spill file and shipped on the next
//! start.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use crate::support::fake_kinesis::{Answer, FakeKinesis};
use crate::support::{request_ids, sample_record};

fn replay(endpoint: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_voice-operator"))
        .args(["action-log", "replay", "--action-sink", "kinesis"])
        .args(extra)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// Writes `n` records and one bad line to the child's stdin (kept open),
/// then waits until the child reports the bad line: everything before it
/// has been queued by then.
fn feed(
    child: &mut Child,
    n: usize,
) -> (
    std::process::ChildStdin,
    BufReader<std::process::ChildStderr>,
) {
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..n {
        writeln!(
            stdin,
            "{}",
            serde_json::to_string(&sample_record(i, 20)).unwrap()
        )
        .unwrap();
    }
    writeln!(stdin, "{{\"not\": \"a record\"}}").unwrap();
    stdin.flush().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let marker = format!("line={}", n + 1);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "child exited early"
        );
        if line.contains(&marker) {
            assert!(line.contains("missing field"), "{line}");
            return (stdin, stderr);
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child and returns its exit code and the rest of stderr.
fn finish(
    mut child: Child,
    mut stderr: BufReader<std::process::ChildStderr>,
) -> (Option<i32>, String) {
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    (child.wait().unwrap().code(), rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_queued_at_sigterm_are_flushed() {
    let fake = FakeKinesis::start(true, |_| Answer::Accept).await;
    // A one-minute flush timer and fewer than 500 records: nothing is sent
    // until the shutdown flush.
    let mut child = replay(&fake.endpoint, &["--action-log-flush-ms", "60000"]);
    let (stdin, stderr) = tokio::task::block_in_place(|| feed(&mut child, 300));
    assert_eq!(fake.request_count(), 0, "nothing sent before SIGTERM");
    sigterm(&child);
    let (code, rest) = tokio::task::block_in_place(|| finish(child, stderr));
    drop(stdin);
    assert!(rest.contains("SIGTERM received"), "{rest}");
    assert!(
        rest.contains("301 lines, 300 queued, 1 rejected; delivered 300, undelivered 0"),
        "{rest}"
    );
    assert_eq!(code, Some(1), "exit 1: a line was rejected");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 300);
    let ids: std::collections::BTreeSet<_> = request_ids(&accepted).into_iter().collect();
    assert_eq!(ids.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_records_are_saved_at_sigterm_and_shipped_on_the_next_start() {
    let down = FakeKinesis::start(false, |_| Answer::Status(500, "InternalFailure")).await;
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill.log");
    let spill_arg = spill.to_str().unwrap();
    let mut child = replay(
        &down.endpoint,
        &[
            "--action-log-spill",
            spill_arg,
            "--shutdown-grace-secs",
            "1",
            "--action-log-flush-ms",
            "10",
        ],
    );
    let (stdin, stderr) = tokio::task::block_in_place(|| feed(&mut child, 250));
    sigterm(&child);
    let (code, rest) = tokio::task::block_in_place(|| finish(child, stderr));
    drop(stdin);
    assert!(
        rest.contains("delivered 0, undelivered 250 (saved to the spill file 250, lost 0)"),
        "{rest}"
    );
    assert_eq!(code, Some(1));
    assert!(down.request_count() > 0, "it did try");

    let up = FakeKinesis::start(true, |_| Answer::Accept).await;
    let mut child = replay(&up.endpoint, &["--action-log-spill", spill_arg]);
    drop(child.stdin.take()); // empty input: only the spill file to ship
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (code, rest) = tokio::task::block_in_place(|| finish(child, stderr));
    assert!(
        rest.contains("0 lines, 0 queued, 0 rejected; delivered 250, undelivered 0"),
        "{rest}"
    );
    assert_eq!(code, Some(0));
    assert_eq!(up.accepted().len(), 250);
    assert_eq!(
        std::fs::metadata(&spill).unwrap().len(),
        0,
        "spill file emptied"
    );
}
