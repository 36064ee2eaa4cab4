//! Action-log figures, printed one per line as `name: value unit`.
//!
//! - the caller's cost of logging one record (build, validate, encode,
//!   queue), median over many chunks;
//! - shipper throughput into a local fake Kinesis endpoint that answers at
//!   once (the real SDK client, batching, HTTP on loopback), with the
//!   batch fill ratio;
//! - the same through a null sink as the baseline, and the ratio.
//!
//! Run with `cargo bench --bench action_log`. `ACTION_LOG_BENCH_RECORDS`
//! sets the records per throughput run (default 300000).

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use voice_operator::actionlog::kinesis::KinesisSink;
use voice_operator::actionlog::{
    Action, ActionLog, ActionSink, AgentLogRecord, EncodedRecord, Outcome, PutOutcome, Recipient,
    ShipperConfig, SmsProvider,
};
use voice_operator::testkit::fake_kinesis::{Answer, FakeKinesis};

/// Accepts everything without looking: the baseline.
struct NullSink;

impl ActionSink for NullSink {
    fn put<'a>(&'a self, _batch: &'a [EncodedRecord]) -> BoxFuture<'a, PutOutcome> {
        Box::pin(async { PutOutcome::Delivered })
    }

    fn describe(&self) -> String {
        "null".into()
    }
}

fn action(i: usize) -> Action {
    Action {
        business_id: format!("B{:07}", i % 50),
        location_id: format!("L{:07}", i % 50),
        agent_session_id: Some(format!("session-{i}")),
        recipient: Recipient::phone("+40721000111"),
        outcome: Outcome::Sent {
            external_id: Some("SM0123456789abcdef0123456789abcdef".into()),
        },
    }
}

fn config(queue: usize) -> ShipperConfig {
    ShipperConfig {
        queue_capacity: queue,
        memory_cap_bytes: 1 << 30,
        ..ShipperConfig::default()
    }
}

async fn enqueue_ns_per_record() -> f64 {
    const CHUNK: usize = 1000;
    const CHUNKS: usize = 300;
    let (log, shipper) = ActionLog::start(Arc::new(NullSink), config(CHUNK * CHUNKS)).unwrap();
    let actions: Vec<Action> = (0..CHUNK * CHUNKS).map(action).collect();
    let mut per_chunk = Vec::with_capacity(CHUNKS);
    let mut actions = actions.into_iter();
    for _ in 0..CHUNKS {
        let chunk: Vec<Action> = actions.by_ref().take(CHUNK).collect();
        let start = Instant::now();
        for a in chunk {
            log.log_agent_sms(a, SmsProvider::Twilio, 58).unwrap();
        }
        per_chunk.push(start.elapsed().as_nanos() as f64 / CHUNK as f64);
    }
    shipper.shutdown(Duration::from_secs(30)).await;
    per_chunk.sort_by(f64::total_cmp);
    per_chunk[CHUNKS / 2]
}

/// Records per second from the first enqueue to the last delivery.
async fn throughput(sink: Arc<dyn ActionSink>, n: usize) -> f64 {
    let records: Vec<AgentLogRecord> = (0..n)
        .map(|i| AgentLogRecord::sms(action(i), SmsProvider::Twilio, 58).unwrap())
        .collect();
    let (log, shipper) = ActionLog::start(sink, config(n)).unwrap();
    let start = Instant::now();
    for r in &records {
        log.log(r).unwrap();
    }
    while log.metrics().delivered < n as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = start.elapsed();
    let report = shipper.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    n as f64 / elapsed.as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("ACTION_LOG_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let enqueue = enqueue_ns_per_record().await;
        println!("enqueue_ns_per_record: {enqueue:.0} ns");

        let fake = FakeKinesis::start(false, |_| Answer::Accept).await;
        let client = aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(&fake.endpoint)
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
                .build(),
        );
        let kinesis = throughput(Arc::new(KinesisSink::new(client, "bench")), n).await;
        let fill = fake.accepted_count() as f64 / fake.request_count() as f64 / 500.0;
        println!("shipper_records_per_s: {kinesis:.0} records/s");
        println!("batch_fill_ratio: {fill:.3} of 500");
        let null = throughput(Arc::new(NullSink), n).await;
        println!("null_sink_records_per_s: {null:.0} records/s");
        println!("kinesis_to_null_ratio: {:.3} ratio", kinesis / null);
    });
}
