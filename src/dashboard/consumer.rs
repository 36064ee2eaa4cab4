//! The checkpointing consumer: takes what a tail source reads (Kinesis or
//! the JSON-lines file), stores it in batches with the checkpoint in the
//! same transaction, and announces each newly stored record on the live
//! feed.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc};

use super::store::{self, BatchCounts};
use crate::actionlog::tail::{Item, TailError};

/// The most items written in one transaction.
pub const BATCH: usize = 10_000;

/// One record as the live feed shows it.
#[derive(Debug, Clone)]
pub struct Live {
    pub business_id: String,
    /// The record as it was written.
    pub json: String,
}

/// Why the consumer stopped other than on request. Nothing is lost: the
/// checkpoint only moves with the records it covers.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Source(#[from] TailError),
    #[error("cannot write to the dashboard store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("the dashboard store's writer stopped: {0}")]
    Writer(String),
}

/// Stores what `items` brings under the checkpoint name `source`, until
/// `stop` resolves or the source ends; `reader` runs alongside. Returns
/// the counts of this run.
pub async fn run(
    db: Arc<Mutex<Connection>>,
    source: String,
    mut items: mpsc::Receiver<Item>,
    reader: impl std::future::Future<Output = Result<(), TailError>>,
    live: broadcast::Sender<Arc<Live>>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<BatchCounts, ConsumeError> {
    tokio::pin!(stop);
    tokio::pin!(reader);
    let mut reader_done = false;
    let mut total = BatchCounts::default();
    loop {
        let first = tokio::select! {
            biased;
            () = &mut stop => break,
            ended = &mut reader, if !reader_done => {
                reader_done = true;
                ended?;
                continue;
            }
            item = items.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match items.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let db = Arc::clone(&db);
        let name = source.clone();
        let (counts, fresh) = tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
            store::ingest(&mut db, &name, &batch)
        })
        .await
        .map_err(|e| ConsumeError::Writer(e.to_string()))??;
        total.stored += counts.stored;
        total.duplicates += counts.duplicates;
        total.invalid += counts.invalid;
        for (record, json) in fresh {
            // Nobody watching is fine; the feed is best effort, the store
            // is the record.
            let _ = live.send(Arc::new(Live {
                business_id: record.business_id,
                json,
            }));
        }
    }
    Ok(total)
}
