//! The dashboard's store: how fast the consumer's batches go in, and how
//! long the summary page's aggregates take at 100,000 and 1,000,000
//! records, against a plain `SELECT COUNT(*)` over the same table in the
//! same run. Printed one per line as `name: value unit`.
//!
//! The records are what the action log holds (testkit's agent-log
//! records), in the order it holds them: by time, over 30 days, each
//! within five minutes of its place (the shipper's batches and Kinesis'
//! shards interleave). 200 businesses with 3 locations each, every one
//! active over the whole month; a conversation's four records share a
//! business; 40 % voice calls, 40 % SMS, 10 % email, 10 % WhatsApp; 5 %
//! failed; nine in ten with a cost, one in five of those in EUR, the rest
//! in USD. They are stored through `store::ingest` in the consumer's
//! batches with their checkpoint, as `dashboard` stores them. The
//! aggregates are those of the summary page: over the whole 30 days (a
//! range of whole days) per business and location for every business and
//! for one, per day for one business, and the top ten by cost; and per
//! business and location over ragged ranges, which read the rollup's
//! hourly rows and the records at both edges: the page's default (the day
//! before a time that is not on the hour) and the month from 01:23 on its
//! first day to 22:37 on its last.
//!
//! A last figure stores 100,000 records in no order at all (each at a
//! random time in the 30 days) into a fresh store: the worst case for
//! every index by time, as a replay of an old shuffled file would be.
//!
//! `DASHBOARD_BENCH_RECORDS` lowers the larger size (default 1000000),
//! `DASHBOARD_BENCH_QUERIES` the queries timed per figure (default 30).
//!
//! Run with `cargo bench --bench dashboard`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use voice_operator::actionlog::tail::{Item, Position};
use voice_operator::dashboard::consumer::BATCH;
use voice_operator::dashboard::query::{self, Range, Scope};
use voice_operator::dashboard::store;
use voice_operator::testkit::agent_log::Spec;

const BUSINESSES: u64 = 200;
const DAYS: i64 = 30;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start() -> DateTime<Utc> {
    "2026-11-01T00:00:00Z".parse().unwrap()
}

/// SplitMix64: the synthetic log's pseudo-random, reproducible choices.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How records are spread over the 30 days.
#[derive(Clone, Copy)]
enum Order {
    /// Record `n` of `total` at its share of the month, within five
    /// minutes.
    Time { total: u64 },
    /// Anywhere in the month.
    Shuffled,
}

/// Record `n` of the synthetic log.
fn line(n: u64, order: Order) -> String {
    let tenant = mix(n / 4);
    let business = format!("B{:04}", tenant % BUSINESSES);
    let location = format!("L{}", (tenant >> 16) % 3);
    let conversation = format!("conv_{}", n / 4);
    let h = mix(n ^ 0x5eed_0000_0000);
    let action = match h % 10 {
        0..=3 => "voice_call",
        4..=7 => "sms",
        8 => "email",
        _ => "meta_message",
    };
    let spread = DAYS * 86_400_000;
    let offset = match order {
        Order::Time { total } => {
            let jitter = ((h >> 8) % 600_000) as i64 - 300_000;
            (n as i128 * spread as i128 / total.max(1) as i128) as i64 + jitter
        }
        Order::Shuffled => ((h >> 8) % spread as u64) as i64,
    };
    let at = start() + chrono::Duration::milliseconds(offset.clamp(0, spread - 1));
    let currency = if (h >> 40).is_multiple_of(5) {
        "EUR"
    } else {
        "USD"
    };
    Spec {
        business: &business,
        location: &location,
        action,
        failed: (h >> 48).is_multiple_of(20),
        at,
        seconds: (action == "voice_call").then_some(((h >> 32) % 600) as f64),
        cost: ((h >> 56) % 10 != 5).then_some((((h >> 24) % 100) as f64 / 100.0, currency)),
        conversation: &conversation,
        request_id: uuid::Uuid::from_u128(0xbe7c_0000_0000_4000_8000_0000_0000_0000 | n as u128),
    }
    .line()
}

/// Stores records `from..to` in the consumer's batches; the seconds it
/// took, not counting making the lines.
fn fill(db: &mut Connection, path: &Arc<Path>, from: u64, to: u64, order: Order) -> f64 {
    let mut spent = Duration::ZERO;
    let mut offset = 0u64;
    let mut n = from;
    while n < to {
        let end = (n + BATCH as u64).min(to);
        let items: Vec<Item> = (n..end)
            .map(|i| {
                let data = Bytes::from(line(i, order));
                let line_at = offset;
                offset += data.len() as u64 + 1;
                Item {
                    data,
                    too_long: false,
                    at: Position::File {
                        path: Arc::clone(path),
                        line: line_at,
                        next: offset,
                    },
                }
            })
            .collect();
        let began = Instant::now();
        let (counts, _) = store::ingest(db, "file:bench", &items).expect("ingest");
        spent += began.elapsed();
        assert_eq!(counts.stored, end - n, "every record is new");
        n = end;
    }
    spent.as_secs_f64()
}

/// p50 and p99 of `runs` timings of `f`, in milliseconds.
fn time_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            f();
            began.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Times the aggregates over a store whose records end at `end`.
fn queries(db: &Connection, size: &str, runs: usize, end: DateTime<Utc>) {
    let minutes = chrono::Duration::minutes;
    let range = Range::new(start(), start() + chrono::Duration::days(DAYS)).unwrap();
    let to = end - minutes(37) - chrono::Duration::milliseconds(13_500);
    let last_day = Range::new(to - chrono::Duration::days(1), to).unwrap();
    let ragged = Range::new(
        start() + minutes(83),
        start() + chrono::Duration::days(DAYS) - minutes(83),
    )
    .unwrap();
    let all = Scope::default();
    let one = Scope {
        business: Some("B0007".into()),
        location: None,
    };
    let (count_p50, count_p99) = time_ms(runs, || {
        query::count(db).unwrap();
    });
    println!("count_p50_{size}: {count_p50:.2} ms");
    println!("count_p99_{size}: {count_p99:.2} ms");
    type Query<'a> = Box<dyn Fn() + 'a>;
    let figures: [(&str, Query); 6] = [
        (
            "summary_all",
            Box::new(|| drop(query::summary(db, &range, &all).unwrap())),
        ),
        (
            "summary_all_last_day",
            Box::new(|| drop(query::summary(db, &last_day, &all).unwrap())),
        ),
        (
            "summary_all_ragged_month",
            Box::new(|| drop(query::summary(db, &ragged, &all).unwrap())),
        ),
        (
            "summary_business",
            Box::new(|| drop(query::summary(db, &range, &one).unwrap())),
        ),
        (
            "daily_business",
            Box::new(|| drop(query::daily(db, &range, &one).unwrap())),
        ),
        (
            "top_by_cost",
            Box::new(|| drop(query::top_by_cost(db, &range, 10).unwrap())),
        ),
    ];
    for (name, run) in figures {
        let (p50, p99) = time_ms(runs, &*run);
        println!("{name}_p50_{size}: {p50:.2} ms");
        println!("{name}_p99_{size}: {p99:.2} ms");
        println!("{name}_to_count_ratio_{size}: {:.2} ratio", p50 / count_p50);
    }
}

fn main() {
    let large = env_or("DASHBOARD_BENCH_RECORDS", 1_000_000) as u64;
    let small = large.min(100_000);
    let runs = env_or("DASHBOARD_BENCH_QUERIES", 30);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("dashboard.sqlite");
    let mut db = store::open(&path).expect("store");
    let log: Arc<Path> = Arc::from(dir.path().join("agent-log.jsonl").as_path());

    let order = Order::Time { total: large };
    let end = |records: u64| {
        start() + chrono::Duration::milliseconds(DAYS * 86_400_000 * records as i64 / large as i64)
    };
    let first = fill(&mut db, &log, 0, small, order);
    println!(
        "ingest_records_per_s_first_{small}: {:.0} records/s",
        small as f64 / first
    );
    queries(&db, &small.to_string(), runs, end(small));
    if large > small {
        let rest = fill(&mut db, &log, small, large, order);
        println!(
            "ingest_records_per_s_to_{large}: {:.0} records/s",
            (large - small) as f64 / rest
        );
        println!(
            "ingest_records_per_s_overall: {:.0} records/s",
            large as f64 / (first + rest)
        );
        queries(&db, &large.to_string(), runs, end(large));
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("store_mib_{large}: {:.1} MiB", bytes as f64 / 1048576.0);
    drop(db);

    let shuffled = dir.path().join("shuffled.sqlite");
    let mut db = store::open(&shuffled).expect("store");
    let took = fill(&mut db, &log, 0, small, Order::Shuffled);
    println!(
        "ingest_records_per_s_in_no_order_{small}: {:.0} records/s",
        small as f64 / took
    );
}
