//! The aggregates against the known fixture (see `fixture`).

use std::collections::BTreeMap;

use voice_operator::dashboard::query::{self, Range, Scope, Totals};
use voice_operator::dashboard::store;

use super::{at, fixture_store};

fn two_days() -> Range {
    Range::new(at("2026-11-30T00:00:00Z"), at("2026-12-02T00:00:00Z")).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// `totals` as (calls, seconds, minutes, messages, failures, records), and
/// its cost.
fn shape(t: &Totals) -> (u64, f64, f64, Vec<(&str, u64)>, u64, u64) {
    (
        t.calls,
        t.call_seconds,
        t.minutes,
        t.messages.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
        t.failures,
        t.records,
    )
}

fn costs_match(cost: &BTreeMap<String, f64>, expected: &[(&str, f64)]) -> bool {
    cost.len() == expected.len()
        && expected
            .iter()
            .all(|(c, amount)| cost.get(*c).is_some_and(|got| close(*got, *amount)))
}

#[tokio::test]
async fn summary_per_business_and_location_matches_the_fixture() {
    let (_dir, path) = fixture_store().await;
    let db = store::open(&path).unwrap();
    let rows = query::summary(&db, &two_days(), &Scope::default()).unwrap();
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (r.business_id.as_str(), r.location_id.as_str()))
        .collect();
    assert_eq!(keys, [("B1", "L1"), ("B1", "L2"), ("B2", "L1")]);
    assert_eq!(
        shape(&rows[0].totals),
        (2, 120.0, 2.0, vec![("email", 1), ("sms", 1)], 1, 4)
    );
    assert!(
        costs_match(&rows[0].totals.cost, &[("USD", 0.45)]),
        "{:?}",
        rows[0].totals.cost
    );
    assert_eq!(
        shape(&rows[1].totals),
        (0, 0.0, 0.0, vec![("whatsapp", 1)], 0, 1)
    );
    assert!(costs_match(&rows[1].totals.cost, &[("EUR", 0.02)]));
    assert_eq!(
        shape(&rows[2].totals),
        (1, 600.0, 10.0, vec![("sms", 1)], 1, 2)
    );
    assert!(costs_match(&rows[2].totals.cost, &[("USD", 2.05)]));

    let one = Scope {
        business: Some("B1".into()),
        location: Some("L2".into()),
    };
    let rows = query::summary(&db, &two_days(), &one).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].business_id.as_str(), rows[0].location_id.as_str()),
        ("B1", "L2")
    );

    // The record of 2026-12-05 counts once the range covers it.
    let week = Range::new(at("2026-11-30T00:00:00Z"), at("2026-12-07T00:00:00Z")).unwrap();
    let rows = query::summary(&db, &week, &Scope::default()).unwrap();
    assert!(costs_match(&rows[2].totals.cost, &[("USD", 11.05)]));
}

#[tokio::test]
async fn daily_top_and_story_match_the_fixture() {
    let (_dir, path) = fixture_store().await;
    let db = store::open(&path).unwrap();
    let b1 = Scope {
        business: Some("B1".into()),
        location: None,
    };
    let days = query::daily(&db, &two_days(), &b1).unwrap();
    let names: Vec<_> = days.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(names, ["2026-11-30", "2026-12-01"]);
    assert_eq!(shape(&days[0].totals), (1, 30.0, 0.5, vec![], 0, 1));
    assert!(costs_match(&days[0].totals.cost, &[("USD", 0.10)]));
    assert_eq!(
        shape(&days[1].totals),
        (
            1,
            90.0,
            1.5,
            vec![("email", 1), ("sms", 1), ("whatsapp", 1)],
            1,
            4
        )
    );
    assert!(costs_match(
        &days[1].totals.cost,
        &[("EUR", 0.02), ("USD", 0.35)]
    ));

    let top = query::top_by_cost(&db, &two_days(), 10).unwrap();
    let ranked: Vec<_> = top
        .iter()
        .map(|t| (t.business_id.as_str(), t.currency.as_str()))
        .collect();
    assert_eq!(ranked, [("B2", "USD"), ("B1", "USD"), ("B1", "EUR")]);
    assert!(close(top[0].amount, 2.05) && close(top[1].amount, 0.45));
    assert_eq!(query::top_by_cost(&db, &two_days(), 1).unwrap().len(), 1);

    let story = query::story(&db, "c1")
        .unwrap()
        .expect("c1 is in the fixture");
    assert_eq!(
        (story.business_id.as_str(), story.location_id.as_str()),
        ("B1", "L1")
    );
    let steps: Vec<_> = story
        .steps
        .iter()
        .map(|s| (s.action_type.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("voice_call", "delivered"),
            ("sms", "sent"),
            ("email", "failed")
        ]
    );
    assert!(costs_match(&story.cost, &[("USD", 0.35)]));
    assert_eq!(
        story.steps[1].record["data"]["metadata"]["cost"]["amount"],
        0.05
    );
    assert!(query::story(&db, "nobody").unwrap().is_none());
}

#[test]
fn a_backwards_or_too_wide_range_is_refused_by_name() {
    let backwards = Range::new(at("2026-12-02T00:00:00Z"), at("2026-12-01T00:00:00Z")).unwrap_err();
    assert_eq!(backwards.field, "from");
    assert!(backwards.reason.contains("backwards"), "{backwards}");
    let wide = Range::new(at("2024-01-01T00:00:00Z"), at("2026-12-01T00:00:00Z")).unwrap_err();
    assert_eq!(wide.field, "to");
    assert!(wide.reason.contains("366 days"), "{wide}");
}
