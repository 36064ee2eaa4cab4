//! Partial failures, server errors, throttling and timeouts from a local
//! Kinesis-protocol server: every record arrives exactly once and failed
//! entries are retried alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_kinesis::{Answer, FakeKinesis};
use crate::support::{decode_data, kinesis_client, request_ids, sample_record};
use voice_operator::actionlog::kinesis::KinesisSink;
use voice_operator::actionlog::{ActionLog, ShipperConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_entries_are_retried_alone_until_delivered_once() {
    let failed_entries = vec![0, 17, 499];
    let plan_failed = failed_entries.clone();
    let fake = FakeKinesis::start(true, move |n| match n {
        0 => Answer::FailEntries(plan_failed.clone()),
        1 => Answer::Status(500, "InternalFailure"),
        2 => Answer::Hang(Duration::from_secs(2)),
        3 => Answer::Status(400, "ProvisionedThroughputExceededException"),
        4 => Answer::Status(503, "ServiceUnavailable"),
        _ => Answer::Accept,
    })
    .await;
    let client = kinesis_client(&fake.endpoint, Duration::from_millis(300));
    let cfg = ShipperConfig {
        max_in_flight: 1, // one request at a time makes the order checkable
        flush_interval: Duration::from_secs(5), // only full batches until shutdown
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        ..ShipperConfig::default()
    };
    let (log, shipper) = ActionLog::start(Arc::new(KinesisSink::new(client, "s")), cfg).unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..1200 {
        expected.insert(log.log(&sample_record(i, 20)).unwrap().to_string());
    }
    let report = shipper.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.undelivered, 0, "{report}");

    let requests = fake.requests();
    let first = request_ids(&requests[0].data);
    assert_eq!(first.len(), 500);
    let refused: Vec<String> = failed_entries.iter().map(|&i| first[i].clone()).collect();
    // Requests 1-5 carry exactly the refused entries: after the partial
    // failure, then after a 500, a timeout, throttling and a 503.
    for (n, request) in requests.iter().enumerate().skip(1).take(5) {
        assert_eq!(
            request_ids(&request.data),
            refused,
            "request {n} retries only the refused entries"
        );
    }
    // Partition keys travel with their records.
    for request in &requests {
        for (data, key) in request.data.iter().zip(&request.partition_keys) {
            let json = decode_data(data);
            assert_eq!(
                key,
                &format!(
                    "{}:{}",
                    json["businessId"].as_str().unwrap(),
                    json["locationId"].as_str().unwrap()
                )
            );
        }
    }

    let accepted = request_ids(&fake.accepted());
    assert_eq!(accepted.len(), 1200, "each record accepted exactly once");
    assert_eq!(accepted.into_iter().collect::<BTreeSet<_>>(), expected);
    let m = log.metrics();
    assert_eq!((m.delivered, m.failed, m.queue_depth), (1200, 0, 0));
    assert_eq!(m.retried, 3 * 5, "3 entries resent 5 times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_refused_request_is_split_so_good_records_still_arrive() {
    // The first request and the first single-record retry are refused as
    // invalid; the other records of the batch go through one by one.
    let fake = FakeKinesis::start(true, |n| match n {
        0 | 1 => Answer::Status(400, "ValidationException"),
        _ => Answer::Accept,
    })
    .await;
    let client = kinesis_client(&fake.endpoint, Duration::from_secs(2));
    let cfg = ShipperConfig {
        max_in_flight: 1,
        flush_interval: Duration::from_secs(5),
        ..ShipperConfig::default()
    };
    let (log, shipper) = ActionLog::start(Arc::new(KinesisSink::new(client, "s")), cfg).unwrap();
    for i in 0..5 {
        log.log(&sample_record(i, 2)).unwrap();
    }
    let report = shipper.shutdown(Duration::from_secs(10)).await;
    let m = log.metrics();
    assert_eq!(
        (m.delivered, m.failed, m.queue_depth),
        (4, 1, 0),
        "{report}"
    );
    assert_eq!(fake.accepted_count(), 4);
    let sizes: Vec<usize> = fake.requests().iter().map(|r| r.data.len()).collect();
    assert_eq!(sizes, [5, 1, 1, 1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_counts_instead_of_blocking() {
    // Nothing is ever accepted and memory is tiny, so the queue fills.
    let fake = FakeKinesis::start(false, |_| Answer::Status(500, "InternalFailure")).await;
    let client = kinesis_client(&fake.endpoint, Duration::from_secs(2));
    let cfg = ShipperConfig {
        queue_capacity: 10,
        memory_cap_bytes: 2048,
        ..ShipperConfig::default()
    };
    let (log, shipper) = ActionLog::start(Arc::new(KinesisSink::new(client, "s")), cfg).unwrap();
    let mut refused = 0;
    for i in 0..200 {
        match log.log(&sample_record(i, 2)) {
            Ok(_) => {}
            Err(voice_operator::actionlog::LogError::QueueFull { capacity, .. }) => {
                assert_eq!(capacity, 10);
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let m = log.metrics();
    assert!(refused > 0);
    assert_eq!(m.dropped, refused);
    assert_eq!(m.enqueued + m.dropped, 200);
    let report = shipper.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.delivered, 0);
    assert_eq!(report.undelivered, m.enqueued);
    assert_eq!(
        report.lost(),
        m.enqueued,
        "no spill file, so the report says they are lost"
    );
    assert_eq!(log.metrics().failed, m.enqueued);
}
