//! The rollup: per UTC hour and per UTC day, per business, location and
//! currency, the sums the aggregates need (records, calls, call seconds,
//! messages per channel, failures, cost), so a month of records is read
//! as a few rows per tenant and day instead of a million rows.
//!
//! The rollup is a function of `records`, written in SQL once
//! ([`RECORD_MEASURES`]): the consumer adds the rows of each batch it
//! stored, in the batch's transaction, and a store from before the rollup
//! gets it built from its records when opened. An aggregate over a range
//! reads whole days from the daily rows, the whole hours at the range's
//! ragged ends from the hourly rows, and only the partial hours at its
//! two edges from `records` ([`Plan`]), so its answer is the same as one
//! over the records themselves.

use rusqlite::{Connection, ToSql, named_params};

/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollup (
    span INTEGER NOT NULL,
    start INTEGER NOT NULL,
    business_id TEXT NOT NULL,
    location_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    records INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    call_seconds REAL NOT NULL,
    sms INTEGER NOT NULL,
    email INTEGER NOT NULL,
    whatsapp INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (span, start, business_id, location_id, currency)
) WITHOUT ROWID;
";

/// One record's share of the rollup, as columns over a row of `records`
/// (and its `ts` as `t`). `currency` is `''` for a record without a cost:
/// currencies are ISO 4217 codes of three letters, so none is empty.
const RECORD_MEASURES: &str = "
    ts AS t, business_id, location_id, COALESCE(cost_currency, '') AS currency,
    1 AS records, channel = 'voice' AS calls, COALESCE(call_seconds, 0.0) AS call_seconds,
    channel = 'sms' AS sms, channel = 'email' AS email, channel = 'whatsapp' AS whatsapp,
    outcome = 'failed' AS failures, COALESCE(cost_amount, 0.0) AS cost";

/// The rollup's columns from its own rows, in the same shape.
const ROLLUP_MEASURES: &str = "
    start AS t, business_id, location_id, currency,
    records, calls, call_seconds, sms, email, whatsapp, failures, cost";

/// The sums over rows of either shape, after a `GROUP BY`.
pub const SUMS: &str = "
    SUM(records), SUM(calls), TOTAL(call_seconds), SUM(sms), SUM(email),
    SUM(whatsapp), SUM(failures), TOTAL(cost)";

/// Adds the records whose id is above `:after` (those a transaction just
/// stored) to the hourly and daily rows. `t - ((t % span) + span) % span`
/// is the start of the hour or day, also before 1970. (`WHERE true` tells
/// the upsert's `ON CONFLICT` from a join's `ON`, as
/// <https://www.sqlite.org/lang_upsert.html> asks.)
fn add_sql() -> String {
    format!(
        "INSERT INTO rollup (span, start, business_id, location_id, currency,
            records, calls, call_seconds, sms, email, whatsapp, failures, cost)
        SELECT span, t - ((t % span) + span) % span AS bucket,
            business_id, location_id, currency, {SUMS}
        FROM (SELECT {RECORD_MEASURES} FROM records WHERE id > :after),
             (SELECT {HOUR_MS} AS span UNION ALL SELECT {DAY_MS})
        WHERE true
        GROUP BY span, bucket, business_id, location_id, currency
        ON CONFLICT DO UPDATE SET
            records = records + excluded.records,
            calls = calls + excluded.calls,
            call_seconds = call_seconds + excluded.call_seconds,
            sms = sms + excluded.sms,
            email = email + excluded.email,
            whatsapp = whatsapp + excluded.whatsapp,
            failures = failures + excluded.failures,
            cost = cost + excluded.cost"
    )
}

/// The highest record id stored: what [`add_after`] is given before a
/// batch is inserted.
pub(super) fn last_id(db: &Connection) -> rusqlite::Result<i64> {
    db.query_row("SELECT COALESCE(MAX(id), 0) FROM records", [], |r| r.get(0))
}

/// Adds the records stored after id `after` to the rollup. Ids of new
/// rows are above every id before them (`INTEGER PRIMARY KEY` without
/// `AUTOINCREMENT` takes the largest plus one,
/// <https://www.sqlite.org/autoinc.html>, and only the transaction calling
/// this writes), so these are exactly the rows it inserted: a duplicate
/// `requestId` it ignored is not among them.
pub(super) fn add_after(db: &Connection, after: i64) -> rusqlite::Result<()> {
    db.prepare_cached(&add_sql())?
        .execute(named_params! { ":after": after })?;
    Ok(())
}

fn exists(db: &Connection) -> rusqlite::Result<bool> {
    db.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'rollup')",
        [],
        |r| r.get(0),
    )
}

/// Creates the rollup and fills it from every stored record, when the
/// store was made before it existed; in one transaction, so a store is
/// never seen with half a rollup, and asked again under the write lock,
/// so two processes opening the store at once build it once.
pub(super) fn create(db: &mut Connection) -> rusqlite::Result<()> {
    if exists(db)? {
        return Ok(());
    }
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !exists(&tx)? {
        tx.execute_batch(SCHEMA)?;
        add_after(&tx, 0)?;
    }
    tx.commit()
}

/// A half-open interval of milliseconds, empty when `from >= to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first millisecond in it.
    pub from: i64,
    /// The first millisecond after it.
    pub to: i64,
}

/// Where each part of a range is read from: whole days from the daily
/// rows, whole hours from the hourly rows (before and after the days),
/// and the partial hours at the edges from `records`. The parts are
/// disjoint and together cover the range exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Whole UTC days, from the daily rows.
    pub days: Span,
    /// Whole hours before and after the days, from the hourly rows.
    pub hours: [Span; 2],
    /// The partial hours at the two edges, from `records`.
    pub records: [Span; 2],
}

fn floor(t: i64, unit: i64) -> i64 {
    t - t.rem_euclid(unit)
}

fn ceil(t: i64, unit: i64) -> i64 {
    let down = floor(t, unit);
    if down == t { t } else { down + unit }
}

const NONE: Span = Span { from: 0, to: 0 };

/// The plan for `from..to` (milliseconds since the epoch).
pub fn plan(from: i64, to: i64) -> Plan {
    let (h0, h1) = (ceil(from, HOUR_MS), floor(to, HOUR_MS));
    if h0 >= h1 {
        return Plan {
            days: NONE,
            hours: [NONE; 2],
            records: [Span { from, to }, NONE],
        };
    }
    let records = [Span { from, to: h0 }, Span { from: h1, to }];
    let (d0, d1) = (ceil(h0, DAY_MS), floor(h1, DAY_MS));
    if d0 >= d1 {
        return Plan {
            days: NONE,
            hours: [Span { from: h0, to: h1 }, NONE],
            records,
        };
    }
    Plan {
        days: Span { from: d0, to: d1 },
        hours: [Span { from: h0, to: d0 }, Span { from: d1, to: h1 }],
        records,
    }
}

/// Every row of a plan (rollup rows and records alike) in the shape of
/// [`RECORD_MEASURES`], as a subquery for `FROM`; its parameters are
/// [`Plan::params`].
pub fn source() -> String {
    let rollup = ROLLUP_MEASURES;
    let record = RECORD_MEASURES;
    format!(
        "(SELECT {rollup} FROM rollup WHERE span = {DAY_MS} AND start >= :d0 AND start < :d1
        UNION ALL
        SELECT {rollup} FROM rollup WHERE span = {HOUR_MS} AND start >= :h0 AND start < :h1
        UNION ALL
        SELECT {rollup} FROM rollup WHERE span = {HOUR_MS} AND start >= :h2 AND start < :h3
        UNION ALL
        SELECT {record} FROM records WHERE ts >= :r0 AND ts < :r1
        UNION ALL
        SELECT {record} FROM records WHERE ts >= :r2 AND ts < :r3)"
    )
}

impl Plan {
    /// The named parameters of [`SOURCE`].
    pub fn params(&self) -> [(&'static str, &dyn ToSql); 10] {
        let [h, g] = &self.hours;
        let [r, s] = &self.records;
        [
            (":d0", &self.days.from),
            (":d1", &self.days.to),
            (":h0", &h.from),
            (":h1", &h.to),
            (":h2", &g.from),
            (":h3", &g.to),
            (":r0", &r.from),
            (":r1", &r.to),
            (":r2", &s.from),
            (":r3", &s.to),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spans(p: &Plan) -> Vec<Span> {
        let mut all = vec![p.days, p.hours[0], p.hours[1], p.records[0], p.records[1]];
        all.retain(|s| s.from < s.to);
        all.sort_by_key(|s| s.from);
        all
    }

    proptest! {
        #[test]
        fn a_plan_covers_its_range_exactly_with_aligned_rollup_parts(
            from in -400 * DAY_MS..400 * DAY_MS,
            width in 1..367 * DAY_MS,
        ) {
            let to = from + width;
            let p = plan(from, to);
            let parts = spans(&p);
            prop_assert_eq!(parts.first().map(|s| s.from), Some(from));
            prop_assert_eq!(parts.last().map(|s| s.to), Some(to));
            for pair in parts.windows(2) {
                prop_assert_eq!(pair[0].to, pair[1].from, "disjoint and without gaps");
            }
            if p.days.from < p.days.to {
                prop_assert_eq!(p.days.from.rem_euclid(DAY_MS), 0);
                prop_assert_eq!(p.days.to.rem_euclid(DAY_MS), 0);
            }
            for h in p.hours.iter().filter(|s| s.from < s.to) {
                prop_assert_eq!(h.from.rem_euclid(HOUR_MS), 0);
                prop_assert_eq!(h.to.rem_euclid(HOUR_MS), 0);
                prop_assert!(
                    ceil(h.from, DAY_MS) + DAY_MS > h.to,
                    "whole days come from the daily rows"
                );
            }
            for r in p.records.iter().filter(|s| s.from < s.to) {
                prop_assert!(r.to - r.from < HOUR_MS || p.hours == [NONE; 2],
                    "records are read for partial hours only");
            }
        }
    }

    #[test]
    fn a_range_inside_one_hour_reads_records_only() {
        let p = plan(10 * HOUR_MS + 5, 10 * HOUR_MS + 900);
        assert_eq!(
            spans(&p),
            [Span {
                from: 10 * HOUR_MS + 5,
                to: 10 * HOUR_MS + 900
            }]
        );
    }

    #[test]
    fn an_aligned_month_reads_daily_rows_only() {
        let p = plan(-3 * DAY_MS, 27 * DAY_MS);
        assert_eq!(
            spans(&p),
            [Span {
                from: -3 * DAY_MS,
                to: 27 * DAY_MS
            }]
        );
        assert_eq!(p.days.to - p.days.from, 30 * DAY_MS);
    }
}
