//! The action log against a local AWS emulator (moto) with the real
//! aws-sdk-kinesis client: nothing lost, nothing duplicated, also across
//! an outage of the emulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    Moto, StreamRecord, agent_log_validator, create_stream, emulator_endpoint, kinesis_client,
    sample_record, stream_records, wait_for,
};
use serde_json::Value;
use voice_operator::actionlog::buffer::SpillConfig;
use voice_operator::actionlog::kinesis::KinesisSink;
use voice_operator::actionlog::{ActionLog, ShipperConfig};

/// moto numbers records as "highest so far + 1" without a lock, so two
/// concurrent PutRecords on one shard can overwrite each other inside the
/// emulator. Requests to it go one at a time; concurrency is covered by the
/// fake-endpoint tests.
fn serial() -> ShipperConfig {
    ShipperConfig {
        max_in_flight: 1,
        ..ShipperConfig::default()
    }
}

fn request_id(json: &Value) -> String {
    json["requestId"].as_str().unwrap().to_owned()
}

/// The `requestId` of every record in `stream`.
async fn stored_ids(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let records = stream_records(client, stream).await;
    records.iter().map(|r| request_id(&r.json)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_records_from_twenty_tenants_arrive_exactly_once() {
    let client = kinesis_client(&emulator_endpoint(), Duration::from_secs(5));
    let stream = format!("agent-log-{}", uuid::Uuid::new_v4());
    create_stream(&client, &stream, 2).await;
    let sink = Arc::new(KinesisSink::new(client.clone(), &stream));
    let (log, shipper) = ActionLog::start(sink, serial()).unwrap();

    let mut expected = BTreeMap::new();
    for i in 0..2000 {
        let record = sample_record(i, 20);
        let id = log.log(&record).expect("queued without waiting");
        expected.insert(id.to_string(), record);
    }
    let report = shipper.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        (report.delivered, report.undelivered),
        (2000, 0),
        "{report}"
    );
    let m = log.metrics();
    assert_eq!(
        (m.enqueued, m.delivered, m.failed, m.dropped, m.queue_depth),
        (2000, 2000, 0, 0, 0)
    );

    let validator = agent_log_validator();
    let got = stream_records(&client, &stream).await;
    assert_eq!(got.len(), 2000, "no duplicates");
    let mut per_shard = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for StreamRecord {
        shard,
        json,
        partition_key,
    } in &got
    {
        assert!(validator.is_valid(json), "schema-valid: {json}");
        let id = request_id(json);
        let original = expected
            .get(&id)
            .unwrap_or_else(|| panic!("unexpected record {id}"));
        assert_eq!(json, &serde_json::to_value(original).unwrap());
        assert_eq!(
            partition_key,
            &format!("{}:{}", original.business_id, original.location_id)
        );
        *per_shard.entry(shard.clone()).or_insert(0) += 1;
        assert!(seen.insert(id, ()).is_none(), "duplicate record");
    }
    assert_eq!(seen.len(), expected.len(), "nothing lost");
    assert_eq!(
        per_shard.len(),
        2,
        "20 tenants spread over both shards: {per_shard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_outage_loses_nothing() {
    let mut moto = Moto::start();
    let client = kinesis_client(&moto.endpoint(), Duration::from_millis(800));
    let stream = "resources-operations";
    create_stream(&client, stream, 2).await;
    let spill_dir = tempfile::tempdir().unwrap();
    let cfg = ShipperConfig {
        flush_interval: Duration::from_millis(20),
        // Small memory so the outage pushes records into the spill file.
        memory_cap_bytes: 32 * 1024,
        spill: Some(SpillConfig {
            path: spill_dir.path().join("spill.log"),
            max_bytes: 64 * 1024 * 1024,
        }),
        backoff_max: Duration::from_millis(500),
        ..serial()
    };
    let sink = Arc::new(KinesisSink::new(client.clone(), stream));
    let (log, shipper) = ActionLog::start(sink, cfg).unwrap();

    let mut expected = std::collections::BTreeSet::new();
    for i in 0..300 {
        expected.insert(log.log(&sample_record(i, 20)).unwrap().to_string());
    }
    wait_for(Duration::from_secs(30), "first 300 delivered", || {
        log.metrics().delivered == 300
    })
    .await;
    let before = stored_ids(&client, stream).await;

    moto.stop();
    for i in 300..1000 {
        expected.insert(log.log(&sample_record(i, 20)).unwrap().to_string());
    }
    wait_for(Duration::from_secs(10), "retries during the outage", || {
        log.metrics().retried > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = log.metrics();
    assert_eq!(
        during.delivered, 300,
        "nothing counted delivered while the emulator is down"
    );
    assert_eq!(during.queue_depth, 700);
    assert!(
        during.spilled > 0,
        "records overflowed to the spill file: {during:?}"
    );

    // The emulator comes back empty; the stream appears a moment later
    // (ResourceNotFound meanwhile, which must not lose records either).
    moto.restart();
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_stream(&client, stream, 2).await;
    wait_for(Duration::from_secs(60), "all 1000 delivered", || {
        log.metrics().delivered == 1000
    })
    .await;
    let report = shipper.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.undelivered, 0, "{report}");
    let after = stored_ids(&client, stream).await;

    assert_eq!(
        before.len() + after.len(),
        1000,
        "no duplicates across the outage"
    );
    let all: std::collections::BTreeSet<String> = before.into_iter().chain(after).collect();
    assert_eq!(all, expected, "nothing lost");
    let m = log.metrics();
    assert_eq!(
        (m.failed, m.dropped, m.queue_depth, m.spilled),
        (0, 0, 0, 0)
    );
}
