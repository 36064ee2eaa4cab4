//! The consumer's checkpoint across restarts, duplicates and bad lines.

use tokio::sync::broadcast;
use voice_operator::dashboard::store;

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;

use super::{Consuming, SOURCE, append, fixture, new_store, rows};
use crate::support::{create_stream, emulator_endpoint, kinesis_client, unique_name};

#[tokio::test]
async fn a_restart_neither_skips_nor_counts_twice_and_repeats_are_dropped() {
    let (dir, store_path) = new_store();
    let log = dir.path().join("agent-log.jsonl");
    let lines = fixture();
    let (live, _) = broadcast::channel(64);

    // First run: five records, one of them twice, and a line that is not
    // a record.
    let mut first: Vec<String> = lines[..5].to_vec();
    first.push(lines[1].clone());
    first.push("{not json".into());
    append(&log, &first);
    let counts = Consuming::start(&store_path, &log, live.clone())
        .finish_after(&store_path, 7)
        .await;
    assert_eq!(
        (counts.stored, counts.duplicates, counts.invalid),
        (5, 1, 1)
    );
    let db = store::open(&store_path).unwrap();
    let length = std::fs::metadata(&log).unwrap().len();
    assert_eq!(store::file_offset(&db, SOURCE).unwrap(), length);

    // Written while it was down: the rest, one record stored already, and
    // a valid JSON document that is not an agent-log record.
    let mut second: Vec<String> = lines[5..].to_vec();
    second.push(lines[0].clone());
    second.push(r#"{"resourceType":"agent-log"}"#.into());
    append(&log, &second);
    let counts = Consuming::start(&store_path, &log, live.clone())
        .finish_after(&store_path, 7 + second.len() as u64)
        .await;
    assert_eq!(
        (counts.stored, counts.duplicates, counts.invalid),
        (3, 1, 1),
        "the second run reads only what came after the checkpoint"
    );

    // A third run with nothing new changes nothing.
    let before = store::totals(&db).unwrap();
    let mut feed = live.subscribe();
    let third = Consuming::start(&store_path, &log, live);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counts = third.finish_after(&store_path, 0).await;
    assert_eq!(
        (counts.stored, counts.duplicates, counts.invalid),
        (0, 0, 0)
    );
    assert!(feed.try_recv().is_err(), "nothing was announced again");

    assert_eq!(rows(&db), lines.len() as u64);
    let totals = store::totals(&db).unwrap();
    assert_eq!(totals, before);
    assert_eq!(
        (totals.stored, totals.duplicates, totals.invalid),
        (8, 2, 2)
    );
    let distinct: i64 = db
        .query_row("SELECT COUNT(DISTINCT request_id) FROM records", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(distinct, 8);
}

#[tokio::test]
async fn a_truncated_file_is_read_again_from_its_start() {
    let (dir, store_path) = new_store();
    let log = dir.path().join("agent-log.jsonl");
    let lines = fixture();
    let (live, _) = broadcast::channel(16);
    append(&log, &lines[..4]);
    Consuming::start(&store_path, &log, live.clone())
        .finish_after(&store_path, 4)
        .await;
    // Rotated while down: the new file is shorter than the checkpoint.
    std::fs::write(&log, format!("{}\n", lines[7])).unwrap();
    let counts = Consuming::start(&store_path, &log, live)
        .finish_after(&store_path, 5)
        .await;
    assert_eq!(counts.stored, 1);
    let db = store::open(&store_path).unwrap();
    assert_eq!(rows(&db), 5);
}

#[tokio::test]
async fn a_restart_resumes_every_kinesis_shard_after_its_checkpoint() {
    let client = kinesis_client(&emulator_endpoint(), Duration::from_secs(5));
    let stream = unique_name("dashboard");
    create_stream(&client, &stream, 2).await;
    let put = |data: String| {
        let client = client.clone();
        let stream = stream.clone();
        async move {
            let key = data.get(..60).unwrap_or(&data).to_owned();
            client
                .put_record()
                .stream_name(stream)
                .partition_key(key)
                .data(Blob::new(data.into_bytes()))
                .send()
                .await
                .expect("put record")
                .shard_id
        }
    };
    let lines = fixture();
    let mut shards = std::collections::BTreeSet::new();
    for line in &lines[..5] {
        shards.insert(put(line.clone()).await);
    }
    let (_dir, store_path) = new_store();
    let counts = Consuming::kinesis(&store_path, &client, &stream)
        .finish_after(&store_path, 5)
        .await;
    assert_eq!(
        (counts.stored, counts.duplicates, counts.invalid),
        (5, 0, 0)
    );
    let db = store::open(&store_path).unwrap();
    let checkpoints = store::checkpoints(&db, &format!("kinesis:{stream}")).unwrap();
    assert_eq!(
        checkpoints
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        shards,
        "a checkpoint per shard read"
    );

    // While it is down: the rest, a record stored already, and bytes that
    // are not a record.
    for line in &lines[5..] {
        put(line.clone()).await;
    }
    put(lines[2].clone()).await;
    put("not a record".into()).await;
    let counts = Consuming::kinesis(&store_path, &client, &stream)
        .finish_after(&store_path, 5 + 5)
        .await;
    assert_eq!(
        (counts.stored, counts.duplicates, counts.invalid),
        (3, 1, 1),
        "only what came after each shard's checkpoint is read again"
    );
    assert_eq!(rows(&db), lines.len() as u64);
}
