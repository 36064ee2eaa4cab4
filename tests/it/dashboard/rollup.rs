//! The rollup gives the same answers as sums over the records themselves,
//! for ranges with ragged edges, several businesses and currencies, and
//! records written twice; and a store from before the rollup gets it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use voice_operator::actionlog::tail::{Item, Position};
use voice_operator::dashboard::query::{self, Range, Scope, TenantCost, Totals};
use voice_operator::dashboard::store;
use voice_operator::testkit::agent_log::Spec;

use super::{at, id, new_store};

const BUSINESSES: [&str; 3] = ["B1", "B2", "B3"];
const LOCATIONS: [&str; 2] = ["L1", "L2"];
const ACTIONS: [&str; 4] = ["voice_call", "sms", "email", "meta_message"];
const CURRENCIES: [&str; 3] = ["USD", "EUR", "RON"];
const CONVERSATIONS: [&str; 4] = ["c1", "c2", "c3", "c4"];

fn base() -> DateTime<Utc> {
    at("2026-12-01T00:00:00Z")
}

/// A small linear congruential generator: the same records every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// 900 records over three days and an hour, one in nine exactly on the
/// hour, the rest anywhere.
fn records() -> Vec<Spec<'static>> {
    let mut draw = Draw(17);
    (0..900u128)
        .map(|n| {
            let minute = draw.next(73 * 60) as i64;
            let on_the_hour = n % 9 == 0;
            let at = if on_the_hour {
                base() + Duration::hours(minute / 60)
            } else {
                base()
                    + Duration::minutes(minute)
                    + Duration::milliseconds(draw.next(60_000) as i64)
            };
            let action = ACTIONS[draw.next(4) as usize];
            let priced = draw.next(5) != 0;
            let cost = draw.next(1000) as f64 / 100.0;
            let currency = CURRENCIES[draw.next(3) as usize];
            Spec {
                business: BUSINESSES[draw.next(3) as usize],
                location: LOCATIONS[draw.next(2) as usize],
                action,
                failed: draw.next(7) == 0,
                at,
                seconds: (action == "voice_call").then(|| draw.next(900) as f64 + 0.25),
                cost: priced.then_some((cost, currency)),
                conversation: CONVERSATIONS[draw.next(4) as usize],
                request_id: id(10_000 + n),
            }
        })
        .collect()
}

/// Stores `lines` through `store::ingest` in batches of `batch`.
fn ingest(db: &mut Connection, lines: &[String], batch: usize) {
    let path: Arc<Path> = Arc::from(Path::new("/rollup-test.jsonl"));
    let mut offset = 0;
    for chunk in lines.chunks(batch) {
        let items: Vec<Item> = chunk
            .iter()
            .map(|line| {
                let line_at = offset;
                offset += line.len() as u64 + 1;
                Item {
                    data: Bytes::from(line.clone()),
                    too_long: false,
                    at: Position::File {
                        path: Arc::clone(&path),
                        line: line_at,
                        next: offset,
                    },
                }
            })
            .collect();
        store::ingest(db, "file:rollup-test", &items).unwrap();
    }
}

/// The records written, every tenth written again further on, in
/// batches of 37: the store then holds each once.
fn store_with_duplicates(db: &mut Connection, specs: &[Spec]) {
    let mut lines: Vec<String> = specs.iter().map(Spec::line).collect();
    let again: Vec<String> = lines.iter().step_by(10).cloned().collect();
    lines.splice(450..450, again.iter().cloned());
    lines.extend(again);
    ingest(db, &lines, 37);
    assert_eq!(query::count(db).unwrap(), specs.len() as u64);
}

/// What an aggregate should say, summed over the records themselves.
fn expected(
    specs: &[Spec],
    range: &Range,
    scope: &Scope,
    key: impl Fn(&Spec) -> String,
) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    let inside = specs.iter().filter(|s| {
        s.at >= range.from
            && s.at < range.to
            && scope.business.as_deref().is_none_or(|b| b == s.business)
            && scope.location.as_deref().is_none_or(|l| l == s.location)
    });
    for s in inside {
        let t = out.entry(key(s)).or_default();
        t.records += 1;
        t.failures += u64::from(s.failed);
        t.call_seconds += s.seconds.unwrap_or(0.0);
        let channel = match s.action {
            "voice_call" => None,
            "meta_message" => Some("whatsapp"),
            other => Some(other),
        };
        match channel {
            None => t.calls += 1,
            Some(c) => *t.messages.entry(c.to_owned()).or_default() += 1,
        }
        if let Some((amount, currency)) = s.cost {
            *t.cost.entry(currency.to_owned()).or_default() += amount;
        }
    }
    for t in out.values_mut() {
        t.minutes = (t.call_seconds / 60.0 * 10.0).round() / 10.0;
    }
    out
}

/// Sums agree to rounding (they are added in another order); counts
/// exactly.
fn same(got: &Totals, want: &Totals) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    (got.calls, got.records, got.failures, &got.messages)
        == (want.calls, want.records, want.failures, &want.messages)
        && close(got.call_seconds, want.call_seconds)
        && got.minutes == want.minutes
        && got.cost.len() == want.cost.len()
        && want
            .cost
            .iter()
            .all(|(c, w)| got.cost.get(c).is_some_and(|g| close(*g, *w)))
}

fn check(db: &Connection, specs: &[Spec], range: &Range, scope: &Scope) {
    let got: BTreeMap<String, Totals> = query::summary(db, range, scope)
        .unwrap()
        .into_iter()
        .map(|t| (format!("{}/{}", t.business_id, t.location_id), t.totals))
        .collect();
    let want = expected(specs, range, scope, |s| {
        format!("{}/{}", s.business, s.location)
    });
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{range:?} {scope:?}"
    );
    for (key, w) in &want {
        assert!(
            same(&got[key], w),
            "{key} {range:?} {scope:?}: {:?} != {w:?}",
            got[key]
        );
    }

    let days = query::daily(db, range, scope).unwrap();
    let want = expected(specs, range, scope, |s| s.at.format("%Y-%m-%d").to_string());
    assert_eq!(
        days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        "{range:?} {scope:?}"
    );
    for day in &days {
        assert!(same(&day.totals, &want[&day.day]), "{} {range:?}", day.day);
    }

    if scope.business.is_none() {
        let top = query::top_by_cost(db, range, 100).unwrap();
        let mut want: BTreeMap<(String, String), (f64, u64)> = BTreeMap::new();
        for s in specs
            .iter()
            .filter(|s| s.at >= range.from && s.at < range.to)
        {
            if let Some((amount, currency)) = s.cost {
                let entry = want
                    .entry((s.business.to_owned(), currency.to_owned()))
                    .or_default();
                entry.0 += amount;
                entry.1 += 1;
            }
        }
        let got: BTreeMap<(String, String), (f64, u64)> = top
            .iter()
            .map(
                |TenantCost {
                     business_id,
                     currency,
                     amount,
                     records,
                 }| {
                    ((business_id.clone(), currency.clone()), (*amount, *records))
                },
            )
            .collect();
        assert_eq!(got.len(), top.len(), "one entry per business and currency");
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{range:?}"
        );
        for (key, (amount, records)) in &want {
            assert_eq!(got[key].1, *records, "{key:?}");
            assert!((got[key].0 - amount).abs() < 1e-9, "{key:?} {range:?}");
        }
        assert!(
            top.windows(2).all(|w| w[0].amount >= w[1].amount),
            "highest first"
        );
    }
}

/// Ranges with edges on and off the hour and the day, inside one hour,
/// across midnight, and starting or ending exactly at a record's time.
fn ranges(specs: &[Spec]) -> Vec<Range> {
    let t = |h: i64, m: i64, ms: i64| {
        base() + Duration::minutes(h * 60 + m) + Duration::milliseconds(ms)
    };
    let mut out = vec![
        (t(0, 0, 0), t(72, 0, 0)),
        (t(-24, 0, 0), t(96, 0, 0)),
        (t(1, 23, 0), t(70, 37, 0)),
        (t(5, 10, 0), t(5, 50, 0)),
        (t(23, 30, 0), t(24, 30, 0)),
        (t(10, 0, 0), t(11, 0, 0)),
        (t(10, 0, 0), t(34, 0, 0)),
        (t(22, 59, 59_999), t(49, 0, 1)),
        (t(0, 0, 1), t(71, 59, 59_999)),
    ];
    let mut draw = Draw(99);
    for _ in 0..30 {
        let from = draw.next(74 * 60 * 60_000) as i64;
        let width = draw.next(74 * 60 * 60_000) as i64 + 1;
        out.push((
            base() + Duration::milliseconds(from),
            base() + Duration::milliseconds(from + width),
        ));
    }
    for pair in specs.chunks(2).step_by(40) {
        let (a, b) = (pair[0].at.min(pair[1].at), pair[0].at.max(pair[1].at));
        if a < b {
            out.push((a, b));
        }
    }
    out.into_iter()
        .map(|(from, to)| Range::new(from, to).unwrap())
        .collect()
}

fn scopes() -> [Scope; 3] {
    [
        Scope::default(),
        Scope {
            business: Some("B2".into()),
            location: None,
        },
        Scope {
            business: Some("B3".into()),
            location: Some("L1".into()),
        },
    ]
}

#[test]
fn the_rollup_answers_as_the_records_do_for_ragged_ranges() {
    let specs = records();
    let (_dir, path) = new_store();
    let mut db = store::open(&path).unwrap();
    store_with_duplicates(&mut db, &specs);
    let unique: HashSet<_> = specs.iter().map(|s| s.request_id).collect();
    assert_eq!(unique.len(), specs.len());
    let totals = store::totals(&db).unwrap();
    assert_eq!((totals.stored, totals.duplicates), (900, 180));
    for range in ranges(&specs) {
        for scope in &scopes() {
            check(&db, &specs, &range, scope);
        }
    }
}

#[test]
fn a_store_from_before_the_rollup_gets_it_from_its_records_when_opened() {
    let specs = records();
    let (_dir, path) = new_store();
    let (before, after) = specs.split_at(600);
    {
        let mut db = store::open(&path).unwrap();
        store_with_duplicates(&mut db, before);
        // What the store looked like before the rollup: the same tables
        // and the two wide indexes the aggregates read.
        db.execute_batch(
            "DROP TABLE rollup;
             DROP INDEX records_ts;
             CREATE INDEX records_time ON records
                 (ts, business_id, location_id, channel, outcome, call_seconds, cost_currency, cost_amount);
             CREATE INDEX records_tenant ON records
                 (business_id, ts, location_id, channel, outcome, call_seconds, cost_currency, cost_amount);",
        )
        .unwrap();
    }
    let db = store::open(&path).unwrap();
    let indexes: Vec<String> = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["records_conversation", "records_session", "records_ts"]
    );
    let whole = Range::new(base() - Duration::days(1), base() + Duration::days(4)).unwrap();
    check(&db, before, &whole, &Scope::default());
    check(&db, before, &ranges(before)[2], &scopes()[1]);

    // Opened again, it is not built twice; what comes next is added.
    drop(db);
    let mut db = store::open(&path).unwrap();
    let lines: Vec<String> = after.iter().chain(&before[..50]).map(Spec::line).collect();
    ingest(&mut db, &lines, 100);
    for range in ranges(&specs).iter().step_by(5) {
        check(&db, &specs, range, &Scope::default());
    }
}
