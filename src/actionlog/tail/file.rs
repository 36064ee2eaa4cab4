//! Following a JSON-lines action log (the `jsonl` sink's file) as it
//! grows, like `tail -f`: a line is handed on once its newline is written,
//! a file that shrinks (truncated) is read again from its start, and a file
//! replaced by another (rotated) is followed under its name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{Item, Position, TailError};
use crate::actionlog::record::MAX_RECORD_BYTES;

/// Lines longer than this cannot hold a record.
const MAX_LINE_BYTES: usize = 2 * MAX_RECORD_BYTES;

/// Where following a file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStart {
    /// Its end when it is opened: only lines written from then on.
    End,
    /// This byte offset (0 is the start), where a line begins; a file now
    /// shorter than that was truncated or replaced and is read from its
    /// start.
    At(u64),
}

/// Follows `path` from `start`. Waits for the file if it does not exist
/// yet. Ends `Ok` when nobody listens any more.
pub async fn follow(
    path: PathBuf,
    start: FileStart,
    poll: Duration,
    items: mpsc::Sender<Item>,
) -> Result<(), TailError> {
    let shown: Arc<Path> = Arc::from(path.as_path());
    let error = |source| TailError::File {
        path: path.clone(),
        source,
    };
    let mut file = wait_for(&path, poll, &items).await.map_err(error)?;
    let Some(opened) = file.as_mut() else {
        return Ok(());
    };
    let end = opened
        .seek(std::io::SeekFrom::End(0))
        .await
        .map_err(error)?;
    let mut offset = match start {
        FileStart::End => end,
        FileStart::At(at) if at <= end => at,
        FileStart::At(at) => {
            tracing::info!(path = %path.display(), at, "the action-log file is shorter than the offset to resume at (truncated or replaced); reading it from its start");
            0
        }
    };
    opened
        .seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(error)?;
    let mut line = Vec::new();
    let mut too_long = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let Some(reading) = file.as_mut() else {
            return Ok(());
        };
        let n = reading.read(&mut chunk).await.map_err(error)?;
        if n == 0 {
            if items.is_closed() {
                return Ok(());
            }
            tokio::time::sleep(poll).await;
            match replaced(&path, reading, offset).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(path = %path.display(), "the action-log file was truncated or replaced; reading it from its start");
                    file = wait_for(&path, poll, &items).await.map_err(error)?;
                    offset = 0;
                    line.clear();
                    too_long = false;
                }
                Err(e) => return Err(error(e)),
            }
            continue;
        }
        let mut start = 0;
        for (i, &b) in chunk[..n].iter().enumerate() {
            if b != b'\n' {
                continue;
            }
            keep(&mut line, &mut too_long, &chunk[start..i]);
            let at = offset + start as u64;
            let data = Bytes::from(std::mem::take(&mut line));
            let long = std::mem::take(&mut too_long);
            start = i + 1;
            if data.iter().all(u8::is_ascii_whitespace) && !long {
                continue;
            }
            let item = Item {
                data,
                too_long: long,
                at: Position::File {
                    path: Arc::clone(&shown),
                    line: at,
                    next: offset + i as u64 + 1,
                },
            };
            if items.send(item).await.is_err() {
                return Ok(());
            }
        }
        keep(&mut line, &mut too_long, &chunk[start..n]);
        offset += n as u64;
    }
}

/// Adds `part` to `line`, keeping at most [`MAX_LINE_BYTES`].
fn keep(line: &mut Vec<u8>, too_long: &mut bool, part: &[u8]) {
    let room = MAX_LINE_BYTES.saturating_sub(line.len());
    *too_long |= part.len() > room;
    line.extend_from_slice(&part[..part.len().min(room)]);
}

/// Opens `path`, waiting (and saying so once) while it does not exist;
/// `None` when nobody listens any more.
async fn wait_for(
    path: &Path,
    poll: Duration,
    items: &mpsc::Sender<Item>,
) -> std::io::Result<Option<tokio::fs::File>> {
    let mut said = false;
    loop {
        match tokio::fs::File::open(path).await {
            Ok(file) => return Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !said {
                    tracing::info!(path = %path.display(), "waiting for the action-log file to appear");
                    said = true;
                }
            }
            Err(e) => return Err(e),
        }
        if items.is_closed() {
            return Ok(None);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Whether the file at `path` is no longer the one being read past
/// `offset`: shorter than that (truncated), or another file (rotated).
async fn replaced(path: &Path, reading: &tokio::fs::File, offset: u64) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let now = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        // Moved away and not yet replaced: keep the old one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let open = reading.metadata().await?;
    Ok(now.ino() != open.ino() || now.dev() != open.dev() || now.len() < offset)
}
