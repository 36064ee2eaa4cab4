//! Opening the small SQLite files of `local` (the bookings calendar, the
//! outbox) the same way: created when missing, waiting up to 5 s for a
//! lock another process holds, schema applied.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// A SQLite file could not be opened or prepared.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {what} {path}: {message}")]
pub struct OpenError {
    pub what: &'static str,
    pub path: PathBuf,
    pub message: String,
}

/// Opens (and creates) `what` at `path` and runs `schema` on it.
pub fn open(what: &'static str, path: &Path, schema: &str) -> Result<Connection, OpenError> {
    let fail = |e: rusqlite::Error| OpenError {
        what,
        path: path.to_owned(),
        message: e.to_string(),
    };
    let db = Connection::open(path).map_err(fail)?;
    db.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
    db.execute_batch(schema).map_err(fail)?;
    Ok(db)
}
