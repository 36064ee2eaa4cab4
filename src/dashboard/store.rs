//! The dashboard's embedded store: one SQLite file with a row per
//! agent-log record, the consumer's checkpoints and counters, and the
//! hashes of the read-only tokens.
//!
//! A batch of records and the checkpoint just past it are written in one
//! transaction, so after a crash the consumer resumes exactly where the
//! stored records end: nothing skipped, nothing counted twice. A
//! `requestId` seen before is dropped by the UNIQUE constraint
//! (`INSERT OR IGNORE`), which covers Kinesis delivering a record twice.
//!
//! The same transaction adds the batch's new rows to the hourly and daily
//! [`rollup`](super::rollup), which the aggregates read instead of the
//! rows. `records` carries no index for the aggregates beyond `ts` (for
//! the partial hours at a range's edges): each index is written on every
//! insert, and the rollup answers the rest.
//!
//! Write-ahead logging lets the HTTP readers query while the consumer
//! writes; `synchronous = NORMAL` is durable across a process crash in WAL
//! mode (<https://www.sqlite.org/pragma.html#pragma_synchronous>,
//! <https://www.sqlite.org/wal.html>). The WAL is copied back into the
//! database every 16,384 pages (64 MiB) rather than SQLite's 1,000: a page
//! written by several batches in between is copied once
//! (<https://www.sqlite.org/pragma.html#pragma_wal_autocheckpoint>), and
//! the file is cut back to that size afterwards (`journal_size_limit`). A
//! 64 MiB page cache (`cache_size`, per connection, used as needed) keeps
//! the indexes' hot pages in memory at a million records.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::rollup;
use crate::actionlog::record::{ActionType, AgentLogRecord};
use crate::actionlog::replay::parse_line;
use crate::actionlog::tail::{self, Item, Position};
use crate::sqlite::OpenError;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA wal_autocheckpoint = 16384;
PRAGMA journal_size_limit = 67108864;
PRAGMA cache_size = -65536;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    request_id BLOB NOT NULL UNIQUE,
    ts INTEGER NOT NULL,
    business_id TEXT NOT NULL,
    location_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    provider TEXT NOT NULL,
    call_seconds REAL,
    cost_amount REAL,
    cost_currency TEXT,
    conversation_id TEXT,
    session_id TEXT,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
DROP INDEX IF EXISTS records_time;
DROP INDEX IF EXISTS records_tenant;
CREATE INDEX IF NOT EXISTS records_conversation ON records (conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_session ON records (session_id)
    WHERE session_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS checkpoints (
    source TEXT NOT NULL,
    part TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (source, part)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash BLOB PRIMARY KEY,
    business_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
";

/// Opens (and creates) the store at `path`. A store written before the
/// rollup existed gets it, built from its records, and loses the two wide
/// indexes the aggregates used to read.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    let mut db = crate::sqlite::open("dashboard store", path, SCHEMA)?;
    rollup::create(&mut db).map_err(|e| OpenError {
        what: "dashboard store",
        path: path.to_owned(),
        message: format!("cannot build the rollup from the stored records: {e}"),
    })?;
    Ok(db)
}

/// The channel a record's action went through.
pub fn channel(action: ActionType) -> &'static str {
    match action {
        ActionType::Sms => "sms",
        ActionType::Email => "email",
        ActionType::MetaMessage => "whatsapp",
        ActionType::VoiceCall => "voice",
    }
}

/// `data.metadata.cost` (checked when the record was read): amount and
/// currency. Records written before cost tracking have none.
pub fn cost(record: &AgentLogRecord) -> Option<(f64, String)> {
    let cost = record.data.metadata.cost.as_ref()?;
    Some((cost.amount, cost.currency.clone()))
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    /// New records stored.
    pub stored: u64,
    /// Records whose `requestId` was stored already.
    pub duplicates: u64,
    /// Items that were not agent-log records.
    pub invalid: u64,
}

/// The counters kept in the store, over every batch ever written.
pub type Totals = BatchCounts;

/// Stores the records among `items` and, in the same transaction, adds
/// the new ones to the rollup and writes the checkpoint just past the
/// last item of each shard or file under `source`. Returns the counts and the records newly stored (for the
/// live feed), as their JSON text.
pub fn ingest(
    db: &mut Connection,
    source: &str,
    items: &[Item],
) -> rusqlite::Result<(BatchCounts, Vec<(AgentLogRecord, String)>)> {
    let tx = db.transaction()?;
    let before = rollup::last_id(&tx)?;
    let mut counts = BatchCounts::default();
    let mut fresh = Vec::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO records (request_id, ts, business_id, location_id, action_type,
                channel, outcome, provider, call_seconds, cost_amount, cost_currency,
                conversation_id, session_id, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for item in items {
            match &item.at {
                Position::Shard { shard, sequence } => {
                    last.insert(shard.to_string(), sequence.clone());
                }
                Position::File { next, .. } => {
                    last.insert(String::new(), next.to_string());
                }
            }
            let record = match parse_line(&item.data, item.too_long) {
                Ok(record) => record,
                Err(reason) => {
                    counts.invalid += 1;
                    tracing::warn!(at = %item.at, error = %reason, "skipping what is not an agent-log record");
                    continue;
                }
            };
            let raw = String::from_utf8_lossy(item.data.trim_ascii()).into_owned();
            let d = &record.data;
            let m = &d.metadata;
            let (amount, currency) = cost(&record).unzip();
            let inserted = insert.execute(params![
                record.request_id.as_bytes().as_slice(),
                record.timestamp.timestamp_millis(),
                record.business_id,
                record.location_id,
                d.action_type.name(),
                channel(d.action_type),
                tail::outcome(&record),
                tail::wire(&d.provider),
                m.call_duration.map(|s| s.0),
                amount,
                currency,
                m.conversation_id
                    .as_deref()
                    .or(d.agent_session_id.as_deref()),
                d.agent_session_id,
                raw,
            ])?;
            if inserted == 1 {
                counts.stored += 1;
                fresh.push((record, raw));
            } else {
                counts.duplicates += 1;
            }
        }
        if counts.stored > 0 {
            rollup::add_after(&tx, before)?;
        }
        let mut checkpoint = tx.prepare_cached(
            "INSERT INTO checkpoints (source, part, position) VALUES (?1, ?2, ?3)
             ON CONFLICT (source, part) DO UPDATE SET position = excluded.position",
        )?;
        for (part, position) in &last {
            checkpoint.execute(params![source, part, position])?;
        }
        let mut count = tx.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )?;
        for (name, value) in [
            ("stored", counts.stored),
            ("duplicates", counts.duplicates),
            ("invalid", counts.invalid),
        ] {
            count.execute(params![name, value as i64])?;
        }
    }
    tx.commit()?;
    Ok((counts, fresh))
}

/// Where the consumer of `source` left off: shard id to the last sequence
/// number stored, or `""` to the file offset to resume at.
pub fn checkpoints(db: &Connection, source: &str) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut query = db.prepare("SELECT part, position FROM checkpoints WHERE source = ?1")?;
    let rows = query.query_map([source], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// The file offset the consumer of `source` resumes at (0 the first time).
pub fn file_offset(db: &Connection, source: &str) -> rusqlite::Result<u64> {
    Ok(checkpoints(db, source)?
        .get("")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0))
}

/// The counters over every batch written.
pub fn totals(db: &Connection) -> rusqlite::Result<Totals> {
    let get = |name: &str| -> rusqlite::Result<u64> {
        let value: Option<i64> = db
            .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(value.unwrap_or(0).max(0) as u64)
    };
    Ok(Totals {
        stored: get("stored")?,
        duplicates: get("duplicates")?,
        invalid: get("invalid")?,
    })
}
