//! The dashboard's aggregates: plain SQL over the store, each a function
//! of a connection and its arguments, so the tests run them against a
//! known fixture.
//!
//! Every aggregate reads the [`rollup`] for the whole hours and days of
//! its range and `records` only for the partial hours at its two edges
//! ([`rollup::plan`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::rollup::{self, Plan};

/// The widest time range one request may ask for.
pub const MAX_RANGE_DAYS: i64 = 366;

/// A time range, `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a time range was refused; names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RangeError {
    pub field: &'static str,
    pub reason: String,
}

impl Range {
    /// Checks `from` < `to` and a width of at most [`MAX_RANGE_DAYS`].
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Range, RangeError> {
        if from >= to {
            return Err(RangeError {
                field: "from",
                reason: format!(
                    "{from} is not before to ({to}); the range runs backwards or is empty"
                ),
            });
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(RangeError {
                field: "to",
                reason: format!(
                    "the range from {from} to {to} is wider than {MAX_RANGE_DAYS} days; ask for a narrower one"
                ),
            });
        }
        Ok(Range { from, to })
    }
}

/// Which records an aggregate covers besides the time range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub business: Option<String>,
    pub location: Option<String>,
}

/// Counts and sums over a group of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub calls: u64,
    pub call_seconds: f64,
    pub minutes: f64,
    /// Messages per channel: sms, email, whatsapp.
    pub messages: BTreeMap<String, u64>,
    /// Records whose outcome is `failed`.
    pub failures: u64,
    /// Cost per currency (ISO 4217 code), from `metadata.cost`.
    pub cost: BTreeMap<String, f64>,
    /// Records counted.
    pub records: u64,
}

/// One business and location over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantTotals {
    pub business_id: String,
    pub location_id: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// One UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// The plan of `range`.
fn plan(range: &Range) -> Plan {
    rollup::plan(range.from.timestamp_millis(), range.to.timestamp_millis())
}

/// Rows grouped by `key` (a fixed SQL expression of `keys` columns over
/// `t`, `business_id` and `location_id`, never user input) and currency,
/// merged per key.
fn grouped(
    db: &Connection,
    key: &str,
    keys: usize,
    range: &Range,
    scope: &Scope,
) -> rusqlite::Result<Vec<(Vec<String>, Totals)>> {
    let sql = format!(
        "SELECT {key}, currency, {sums} FROM {source}
         WHERE (:business IS NULL OR business_id = :business)
           AND (:location IS NULL OR location_id = :location)
         GROUP BY {key}, currency ORDER BY {key}",
        sums = rollup::SUMS,
        source = rollup::source(),
    );
    let mut query = db.prepare_cached(&sql)?;
    let plan = plan(range);
    let mut params = plan.params().to_vec();
    params.push((":business", &scope.business));
    params.push((":location", &scope.location));
    let mut rows = query.query(params.as_slice())?;
    let mut out: Vec<(Vec<String>, Totals)> = Vec::new();
    while let Some(row) = rows.next()? {
        let group = (0..keys)
            .map(|i| row.get::<_, String>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let count = |i: usize| -> rusqlite::Result<u64> {
            Ok(row.get::<_, Option<i64>>(keys + i)?.unwrap_or(0).max(0) as u64)
        };
        let currency: String = row.get(keys)?;
        if out.last().is_none_or(|(last, _)| *last != group) {
            out.push((group, Totals::default()));
        }
        let Some((_, totals)) = out.last_mut() else {
            continue;
        };
        totals.records += count(1)?;
        totals.calls += count(2)?;
        totals.call_seconds += row.get::<_, f64>(keys + 3)?;
        for (channel, i) in [("sms", 4), ("email", 5), ("whatsapp", 6)] {
            let n = count(i)?;
            if n > 0 {
                *totals.messages.entry(channel.to_owned()).or_default() += n;
            }
        }
        totals.failures += count(7)?;
        if !currency.is_empty() {
            *totals.cost.entry(currency).or_default() += row.get::<_, f64>(keys + 8)?;
        }
    }
    for (_, totals) in &mut out {
        totals.minutes = (totals.call_seconds / 60.0 * 10.0).round() / 10.0;
    }
    Ok(out)
}

/// Per business and location: calls, minutes, messages by channel,
/// failures and cost over `range`.
pub fn summary(
    db: &Connection,
    range: &Range,
    scope: &Scope,
) -> rusqlite::Result<Vec<TenantTotals>> {
    Ok(grouped(db, "business_id, location_id", 2, range, scope)?
        .into_iter()
        .map(|(mut key, totals)| {
            let location_id = key.pop().unwrap_or_default();
            let business_id = key.pop().unwrap_or_default();
            TenantTotals {
                business_id,
                location_id,
                totals,
            }
        })
        .collect())
}

/// The same totals per UTC day.
pub fn daily(db: &Connection, range: &Range, scope: &Scope) -> rusqlite::Result<Vec<Day>> {
    Ok(grouped(db, "date(t / 1000, 'unixepoch')", 1, range, scope)?
        .into_iter()
        .map(|(mut key, totals)| Day {
            day: key.pop().unwrap_or_default(),
            totals,
        })
        .collect())
}

/// One business's cost in one currency.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantCost {
    pub business_id: String,
    pub currency: String,
    pub amount: f64,
    pub records: u64,
}

/// The `limit` businesses that cost the most over `range`, highest first
/// (amounts in different currencies are not converted: each business and
/// currency is one entry).
pub fn top_by_cost(
    db: &Connection,
    range: &Range,
    limit: u32,
) -> rusqlite::Result<Vec<TenantCost>> {
    let mut query = db.prepare_cached(&format!(
        "SELECT business_id, currency, TOTAL(cost), SUM(records) FROM {source}
         WHERE currency <> ''
         GROUP BY business_id, currency
         ORDER BY 3 DESC, business_id LIMIT :limit",
        source = rollup::source(),
    ))?;
    let plan = plan(range);
    let mut params = plan.params().to_vec();
    params.push((":limit", &limit));
    let rows = query.query_map(params.as_slice(), |row| {
        Ok(TenantCost {
            business_id: row.get(0)?,
            currency: row.get(1)?,
            amount: row.get(2)?,
            records: row.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// One record of a call's story.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub timestamp: String,
    pub action_type: String,
    pub outcome: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<(f64, String)>,
    /// The record as it was written.
    pub record: Value,
}

/// One call from its conversation id: every record that names it, in
/// time order, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Story {
    pub conversation_id: String,
    pub business_id: String,
    pub location_id: String,
    pub steps: Vec<Step>,
    pub cost: BTreeMap<String, f64>,
}

/// The most records one story shows.
const STORY_STEPS: u32 = 1000;

/// The story of `conversation`, or `None` when no record names it.
pub fn story(db: &Connection, conversation: &str) -> rusqlite::Result<Option<Story>> {
    let mut query = db.prepare_cached(
        "SELECT ts, business_id, location_id, action_type, outcome, provider,
                cost_amount, cost_currency, raw
         FROM records WHERE conversation_id = ?1 OR session_id = ?1
         ORDER BY ts, id LIMIT ?2",
    )?;
    let mut rows = query.query(params![conversation, STORY_STEPS])?;
    let mut story: Option<Story> = None;
    while let Some(row) = rows.next()? {
        let ts: i64 = row.get(0)?;
        let cost = match (
            row.get::<_, Option<f64>>(6)?,
            row.get::<_, Option<String>>(7)?,
        ) {
            (Some(amount), Some(currency)) => Some((amount, currency)),
            _ => None,
        };
        let raw: String = row.get(8)?;
        let story = story.get_or_insert_with(|| Story {
            conversation_id: conversation.to_owned(),
            business_id: String::new(),
            location_id: String::new(),
            steps: Vec::new(),
            cost: BTreeMap::new(),
        });
        if story.steps.is_empty() {
            story.business_id = row.get(1)?;
            story.location_id = row.get(2)?;
        }
        if let Some((amount, currency)) = &cost {
            *story.cost.entry(currency.clone()).or_default() += amount;
        }
        story.steps.push(Step {
            timestamp: DateTime::from_timestamp_millis(ts)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            action_type: row.get(3)?,
            outcome: row.get(4)?,
            provider: row.get(5)?,
            cost,
            record: serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        });
    }
    Ok(story)
}

/// Rows in the records table: the benchmark's baseline.
pub fn count(db: &Connection) -> rusqlite::Result<u64> {
    db.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}
