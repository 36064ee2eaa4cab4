//! The dashboard: the checkpointing consumer, the aggregates against a
//! known fixture, and the API's tokens.

mod api;
mod browser;
mod consumer;
mod query;
mod rollup;

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;
use voice_operator::actionlog::tail::file::{self, FileStart};
use voice_operator::actionlog::tail::kinesis::{self, Timing};
use voice_operator::actionlog::tail::{Item, Start, TailError};
use voice_operator::dashboard::consumer::{ConsumeError, Live};
use voice_operator::dashboard::store::{self, BatchCounts};
use voice_operator::testkit::agent_log::Spec;

use crate::support::{free_port, wait_for};

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

/// A fixed requestId per number, so a test can write a record twice.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n)
}

#[allow(clippy::too_many_arguments)]
fn spec<'a>(
    n: u128,
    business: &'a str,
    location: &'a str,
    action: &'a str,
    time: &str,
    seconds: Option<f64>,
    cost: Option<(f64, &'a str)>,
    conversation: &'a str,
) -> Spec<'a> {
    Spec {
        business,
        location,
        action,
        failed: false,
        at: at(time),
        seconds,
        cost,
        conversation,
        request_id: id(n),
    }
}

/// The known fixture: three tenants over two days, and one record after
/// them (2026-12-05).
///
/// | business/location | calls | seconds | messages        | failures | cost                |
/// | B1/L1             | 2     | 120     | sms 1, email 1  | 1        | USD 0.45            |
/// | B1/L2             | 0     | 0       | whatsapp 1      | 0        | EUR 0.02            |
/// | B2/L1             | 1     | 600     | sms 1           | 1        | USD 2.05            |
pub(crate) fn fixture() -> Vec<String> {
    let failed = |mut s: Spec<'static>| {
        s.failed = true;
        s
    };
    let usd = |amount| Some((amount, "USD"));
    [
        spec(
            1,
            "B1",
            "L1",
            "voice_call",
            "2026-12-01T09:00:00Z",
            Some(90.0),
            usd(0.30),
            "c1",
        ),
        spec(
            2,
            "B1",
            "L1",
            "sms",
            "2026-12-01T09:01:00Z",
            None,
            usd(0.05),
            "c1",
        ),
        failed(spec(
            3,
            "B1",
            "L1",
            "email",
            "2026-12-01T09:02:00Z",
            None,
            None,
            "c1",
        )),
        spec(
            4,
            "B1",
            "L1",
            "voice_call",
            "2026-11-30T10:00:00Z",
            Some(30.0),
            usd(0.10),
            "c2",
        ),
        spec(
            5,
            "B1",
            "L2",
            "meta_message",
            "2026-12-01T11:00:00Z",
            None,
            Some((0.02, "EUR")),
            "c4",
        ),
        spec(
            6,
            "B2",
            "L1",
            "voice_call",
            "2026-12-01T12:00:00Z",
            Some(600.0),
            usd(2.00),
            "c3",
        ),
        failed(spec(
            7,
            "B2",
            "L1",
            "sms",
            "2026-12-01T12:05:00Z",
            None,
            usd(0.05),
            "c3",
        )),
        spec(
            8,
            "B2",
            "L1",
            "sms",
            "2026-12-05T08:00:00Z",
            None,
            usd(9.00),
            "c5",
        ),
    ]
    .iter()
    .map(Spec::line)
    .collect()
}

/// A store file in a fresh directory.
fn new_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard.sqlite");
    (dir, path)
}

pub(crate) fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// A consumer of a JSON-lines file running in the background, resuming
/// from the store's checkpoint, until stopped.
struct Consuming {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<BatchCounts, ConsumeError>>,
}

const SOURCE: &str = "file:test";

impl Consuming {
    /// A consumer of the JSON-lines file `log`.
    fn start(store_path: &Path, log: &Path, live: broadcast::Sender<Arc<Live>>) -> Consuming {
        let db = store::open(store_path).unwrap();
        let offset = store::file_offset(&db, SOURCE).unwrap();
        let (tx, rx) = mpsc::channel(64);
        let reader = file::follow(
            log.to_owned(),
            FileStart::At(offset),
            Duration::from_millis(20),
            tx,
        );
        Consuming::spawn(db, SOURCE, rx, reader, live)
    }

    /// A consumer of every shard of the Kinesis `stream`.
    fn kinesis(store_path: &Path, client: &aws_sdk_kinesis::Client, stream: &str) -> Consuming {
        let db = store::open(store_path).unwrap();
        let source = format!("kinesis:{stream}");
        let after = store::checkpoints(&db, &source).unwrap();
        let (tx, rx) = mpsc::channel(64);
        let timing = Timing {
            poll: Duration::from_millis(100),
            relist: Duration::from_millis(300),
            backoff_max: Duration::from_millis(500),
        };
        let reader = kinesis::follow(
            client.clone(),
            stream.to_owned(),
            Start::Since(DateTime::UNIX_EPOCH),
            after,
            timing,
            tx,
        );
        Consuming::spawn(db, &source, rx, reader, broadcast::channel(16).0)
    }

    fn spawn(
        db: Connection,
        source: &str,
        rx: mpsc::Receiver<Item>,
        reader: impl Future<Output = Result<(), TailError>> + Send + 'static,
        live: broadcast::Sender<Arc<Live>>,
    ) -> Consuming {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(voice_operator::dashboard::consumer::run(
            Arc::new(Mutex::new(db)),
            source.to_owned(),
            rx,
            reader,
            live,
            async {
                let _ = stopped.await;
            },
        ));
        Consuming { stop, task }
    }

    /// Waits until the store has seen `items` items in all (stored,
    /// duplicate or invalid), then stops the consumer.
    async fn finish_after(self, store_path: &Path, items: u64) -> BatchCounts {
        let reader = store::open(store_path).unwrap();
        wait_for(Duration::from_secs(20), "the consumer to catch up", || {
            let t = store::totals(&reader).unwrap();
            t.stored + t.duplicates + t.invalid >= items
        })
        .await;
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap()
    }
}

/// The fixture ingested into a fresh store, through the consumer.
async fn fixture_store() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = new_store();
    let log = dir.path().join("agent-log.jsonl");
    let lines = fixture();
    append(&log, &lines);
    let (live, _) = broadcast::channel(16);
    Consuming::start(&path, &log, live)
        .finish_after(&path, lines.len() as u64)
        .await;
    (dir, path)
}

fn rows(db: &Connection) -> u64 {
    voice_operator::dashboard::query::count(db).unwrap()
}

/// The `voice-operator` binary with `data` as its data directory and
/// none of the dashboard's variables from the environment.
pub(crate) fn binary(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_voice-operator"));
    command
        .env("VOICE_OPERATOR_DATA_DIR", data)
        .env_remove("VOICE_OPERATOR_ADMIN_TOKEN")
        .env_remove("VOICE_OPERATOR_DASHBOARD_STORE");
    command
}

/// A new read-only token of `business` from `dashboard token create`, and
/// what the command wrote to standard error.
pub(crate) fn token_create(data: &Path, business: &str) -> (String, String) {
    let created = binary(data)
        .args(["dashboard", "token", "create", "--business", business])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&created.stderr).into_owned();
    assert!(created.status.success(), "{err}");
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    (token, err)
}

/// `voice-operator dashboard` running as a user runs it, following
/// `<data>/agent-log.jsonl` every 50 ms; killed if the test ends without
/// stopping it.
pub(crate) struct Served {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Served {
    /// Starts it with `admin` as the admin token, on a free port.
    pub(crate) fn start(data: &Path, admin: &str) -> Served {
        let port = free_port();
        let child = binary(data)
            .args(["dashboard", "--poll-ms", "50"])
            .env(
                "VOICE_OPERATOR_DASHBOARD_LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env("VOICE_OPERATOR_ADMIN_TOKEN", admin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until its consumer has stored `records` records in all, as
    /// its status (read with the admin token `admin`) says.
    pub(crate) async fn wait_stored(&self, admin: &str, records: u64) {
        let client = reqwest::Client::new();
        let url = format!("{}/api/dashboard/status", self.base);
        for _ in 0..400 {
            if let Ok(answer) = client.get(&url).bearer_auth(admin).send().await
                && let Ok(totals) = answer.json::<serde_json::Value>().await
                && totals["stored"] == records
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the dashboard did not store {records} records within 20 s");
    }

    /// Stops it with SIGTERM; whether it exited successfully, and what it
    /// wrote to standard error.
    pub(crate) async fn stop(mut self) -> (bool, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        wait_for(Duration::from_secs(30), "the dashboard to stop", || {
            self.child.try_wait().unwrap().is_some()
        })
        .await;
        let success = self.child.wait().unwrap().success();
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err).unwrap();
        }
        (success, err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
