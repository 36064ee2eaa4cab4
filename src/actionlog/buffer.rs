//! The shipper's holding area: records in memory up to a cap, then (if
//! configured) in an append-only spill file, read back in order.
//!
//! Once anything is in the spill file, new records go there too until it
//! has been read back completely, so records leave in the order they came.
//! The file is truncated only when all of it has been read back; a crash
//! before that replays it from the start (at least once, never lost).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{BatchLimits, take_batch};
use super::record::EncodedRecord;

/// Where overflow goes, and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillConfig {
    pub path: PathBuf,
    pub max_bytes: u64,
}

/// Memory first, then the spill file.
pub struct Buffer {
    memory: VecDeque<EncodedRecord>,
    memory_bytes: usize,
    memory_cap: usize,
    spill: Option<Spill>,
}

struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    /// Bytes of the file already read back into memory.
    read_offset: u64,
    /// Bytes written so far, including what the writer still buffers.
    len: u64,
    /// Complete records in the file past `read_offset`.
    unread: usize,
    max_bytes: u64,
}

/// What reading the spill file back found besides records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refill {
    /// Lines that were not a record (a torn write before a crash).
    pub corrupt: usize,
}

impl Buffer {
    /// A buffer holding up to `memory_cap` bytes in memory. With a spill
    /// file, records left there by an earlier run are picked up; the
    /// second value is how many.
    pub fn open(memory_cap: usize, spill: Option<&SpillConfig>) -> io::Result<(Self, usize)> {
        let spill = spill.map(Spill::open).transpose()?;
        let recovered = spill.as_ref().map_or(0, |s| s.unread);
        let buffer = Buffer {
            memory: VecDeque::new(),
            memory_bytes: 0,
            memory_cap,
            spill,
        };
        Ok((buffer, recovered))
    }

    /// Accepts a record, or hands it back when memory is at its cap and
    /// there is no room to spill.
    pub fn push(&mut self, record: EncodedRecord) -> Result<(), EncodedRecord> {
        let spilling = self.spilled() > 0;
        if !spilling && self.memory_bytes + record.size() <= self.memory_cap {
            self.memory_bytes += record.size();
            self.memory.push_back(record);
            return Ok(());
        }
        match &mut self.spill {
            Some(spill) => spill.append(record),
            None => Err(record),
        }
    }

    /// Records held, in memory and spilled.
    pub fn len(&self) -> usize {
        self.memory.len() + self.spilled()
    }

    /// Nothing held at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records waiting in the spill file.
    pub fn spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.unread)
    }

    /// Whether a full request's worth is waiting.
    pub fn has_full_batch(&self, limits: BatchLimits) -> bool {
        self.spilled() > 0 || limits.is_full(self.memory.len(), self.memory_bytes)
    }

    /// The next request's records, reading the spill file back first
    /// when memory runs low.
    pub fn take_batch(&mut self, limits: BatchLimits) -> (Vec<EncodedRecord>, Refill) {
        let refill = if self.memory_bytes < self.memory_cap / 2 {
            self.refill()
        } else {
            Refill::default()
        };
        let batch = take_batch(&mut self.memory, limits);
        self.memory_bytes -= batch.iter().map(EncodedRecord::size).sum::<usize>();
        (batch, refill)
    }

    fn refill(&mut self) -> Refill {
        let Some(spill) = &mut self.spill else {
            return Refill::default();
        };
        let room = self.memory_cap.saturating_sub(self.memory_bytes);
        match spill.read_back(room) {
            Ok((records, refill)) => {
                for record in records {
                    self.memory_bytes += record.size();
                    self.memory.push_back(record);
                }
                refill
            }
            Err(err) => {
                tracing::error!(path = %spill.path.display(), error = %err,
                    "cannot read the action-log spill file back; will try again");
                Refill::default()
            }
        }
    }

    /// Writes `unsettled` (records taken out but never confirmed) ahead of
    /// whatever is still unread in the spill file, so the next start ships
    /// them. Returns how many records the file now holds, or `None` without
    /// a spill file.
    pub fn persist(mut self, unsettled: Vec<EncodedRecord>) -> Option<io::Result<usize>> {
        let memory = std::mem::take(&mut self.memory);
        let spill = self.spill.take()?;
        Some(spill.rewrite(unsettled.into_iter().chain(memory)))
    }
}

impl Spill {
    fn open(cfg: &SpillConfig) -> io::Result<Self> {
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&cfg.path)?;
        let (unread, complete_len) = count_complete_lines(&cfg.path)?;
        let len = file.metadata()?.len();
        if complete_len < len {
            tracing::warn!(path = %cfg.path.display(), torn_bytes = len - complete_len,
                "dropping a torn last line from the action-log spill file (a crash mid-write)");
            file.set_len(complete_len)?;
        }
        Ok(Spill {
            path: cfg.path.clone(),
            writer: BufWriter::new(file),
            read_offset: 0,
            len: complete_len,
            unread,
            max_bytes: cfg.max_bytes,
        })
    }

    fn append(&mut self, record: EncodedRecord) -> Result<(), EncodedRecord> {
        let line_len = (record.partition_key.len() + record.data.len() + 2) as u64;
        if self.len + line_len > self.max_bytes {
            return Err(record);
        }
        if let Err(err) = write_line(&mut self.writer, &record) {
            tracing::error!(path = %self.path.display(), error = %err,
                "cannot write to the action-log spill file");
            return Err(record);
        }
        self.len += line_len;
        self.unread += 1;
        Ok(())
    }

    /// Reads back up to `room` bytes of records (at least one record).
    fn read_back(&mut self, room: usize) -> io::Result<(Vec<EncodedRecord>, Refill)> {
        let mut records = Vec::new();
        let mut refill = Refill::default();
        if self.unread == 0 {
            return Ok((records, refill));
        }
        self.writer.flush()?;
        let mut reader = BufReader::new(File::open(&self.path)?);
        reader.seek(SeekFrom::Start(self.read_offset))?;
        let mut taken = 0;
        let mut line = Vec::new();
        while self.unread > 0 && (records.is_empty() || taken < room) {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            self.read_offset += n as u64;
            self.unread -= 1;
            match parse_line(&line) {
                Some(record) => {
                    taken += record.size();
                    records.push(record);
                }
                None => {
                    tracing::error!(path = %self.path.display(), offset = self.read_offset - n as u64,
                        "skipping a line of the action-log spill file that is not a record");
                    refill.corrupt += 1;
                }
            }
        }
        if self.unread == 0 {
            self.writer.get_ref().set_len(0)?;
            self.read_offset = 0;
            self.len = 0;
        }
        Ok((records, refill))
    }

    fn rewrite(mut self, head: impl Iterator<Item = EncodedRecord>) -> io::Result<usize> {
        self.writer.flush()?;
        let tmp = self.path.with_extension("tmp");
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut count = self.unread;
        for record in head {
            write_line(&mut out, &record)?;
            count += 1;
        }
        let mut tail = File::open(&self.path)?;
        tail.seek(SeekFrom::Start(self.read_offset))?;
        io::copy(&mut tail, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        Ok(count)
    }
}

/// One record per line: `partition key <TAB> JSON <LF>`. Neither part can
/// hold a tab or a newline: ids refuse whitespace and compact JSON escapes
/// control characters.
fn write_line(out: &mut impl Write, record: &EncodedRecord) -> io::Result<()> {
    out.write_all(record.partition_key.as_bytes())?;
    out.write_all(b"\t")?;
    out.write_all(&record.data)?;
    out.write_all(b"\n")
}

fn parse_line(line: &[u8]) -> Option<EncodedRecord> {
    let line = line.strip_suffix(b"\n")?;
    let tab = line.iter().position(|&b| b == b'\t')?;
    let partition_key = std::str::from_utf8(&line[..tab]).ok()?.to_owned();
    let data = &line[tab + 1..];
    if partition_key.is_empty() || data.is_empty() {
        return None;
    }
    Some(EncodedRecord {
        partition_key,
        data: Bytes::copy_from_slice(data),
    })
}

/// Counts complete lines and the length they span.
fn count_complete_lines(path: &Path) -> io::Result<(usize, u64)> {
    let mut reader = BufReader::new(File::open(path)?);
    let (mut lines, mut complete) = (0, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok((lines, complete));
        }
        lines += 1;
        complete += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actionlog::batch::KINESIS_LIMITS;

    fn rec(i: usize) -> EncodedRecord {
        EncodedRecord {
            partition_key: format!("B{}:L1", i % 7),
            data: Bytes::from(format!("{{\"n\":{i}}}")),
        }
    }

    fn drain(buffer: &mut Buffer, limits: BatchLimits) -> Vec<EncodedRecord> {
        let mut out = Vec::new();
        while !buffer.is_empty() {
            let (batch, refill) = buffer.take_batch(limits);
            assert_eq!(refill, Refill::default());
            out.extend(batch);
        }
        out
    }

    #[test]
    fn memory_only_refuses_past_the_cap() {
        let size = rec(0).size();
        let (mut b, recovered) = Buffer::open(size * 3, None).unwrap();
        assert_eq!(recovered, 0);
        for i in 0..3 {
            b.push(rec(i)).unwrap();
        }
        assert_eq!(b.push(rec(3)), Err(rec(3)));
        assert_eq!(
            drain(&mut b, KINESIS_LIMITS),
            (0..3).map(rec).collect::<Vec<_>>()
        );
    }

    #[test]
    fn overflow_spills_and_comes_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpillConfig {
            path: dir.path().join("spill.log"),
            max_bytes: 1 << 20,
        };
        let (mut b, _) = Buffer::open(rec(0).size() * 10, Some(&cfg)).unwrap();
        for i in 0..1000 {
            b.push(rec(i)).unwrap();
        }
        assert!(b.spilled() > 900);
        let limits = BatchLimits {
            max_records: 7,
            max_bytes: 1 << 20,
        };
        assert_eq!(
            drain(&mut b, limits),
            (0..1000).map(rec).collect::<Vec<_>>()
        );
        assert_eq!(
            fs::metadata(&cfg.path).unwrap().len(),
            0,
            "file truncated once read"
        );
        // Back to memory once the file is drained.
        b.push(rec(5)).unwrap();
        assert_eq!(b.spilled(), 0);
    }

    #[test]
    fn the_spill_cap_is_a_hard_limit() {
        let dir = tempfile::tempdir().unwrap();
        let line = (rec(0).size() + 2) as u64;
        let cfg = SpillConfig {
            path: dir.path().join("spill.log"),
            max_bytes: line * 2,
        };
        let (mut b, _) = Buffer::open(0, Some(&cfg)).unwrap();
        b.push(rec(0)).unwrap();
        b.push(rec(0)).unwrap();
        assert!(b.push(rec(0)).is_err());
    }

    #[test]
    fn persisted_records_are_recovered_by_the_next_open_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpillConfig {
            path: dir.path().join("nested/spill.log"),
            max_bytes: 1 << 20,
        };
        let (mut b, _) = Buffer::open(rec(0).size() * 4, Some(&cfg)).unwrap();
        for i in 0..20 {
            b.push(rec(i)).unwrap();
        }
        let limits = BatchLimits {
            max_records: 3,
            max_bytes: 1 << 20,
        };
        let (first, _) = b.take_batch(limits); // 0, 1, 2 from memory
        let (second, _) = b.take_batch(limits); // 3, then 4 and 5 read back
        assert_eq!(first, (0..3).map(rec).collect::<Vec<_>>());
        assert_eq!(second, (3..6).map(rec).collect::<Vec<_>>());
        // `second` was delivered; `first` was in flight at shutdown; 6 is
        // in memory and 7.. still unread in the file.
        assert_eq!(b.persist(first).unwrap().unwrap(), 17);
        let (mut again, recovered) = Buffer::open(1 << 20, Some(&cfg)).unwrap();
        assert_eq!(recovered, 17);
        let expected: Vec<_> = (0..3).chain(6..20).map(rec).collect();
        let got = drain(&mut again, KINESIS_LIMITS);
        assert_eq!(got, expected);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_garbage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.log");
        fs::write(
            &path,
            b"B1:L1\t{\"n\":1}\nnot a record\nB1:L1\t{\"n\":2}\nB1:L1\t{\"n\"",
        )
        .unwrap();
        let cfg = SpillConfig {
            path: path.clone(),
            max_bytes: 1 << 20,
        };
        let (mut b, recovered) = Buffer::open(1 << 20, Some(&cfg)).unwrap();
        assert_eq!(recovered, 3);
        let (batch, refill) = b.take_batch(KINESIS_LIMITS);
        assert_eq!(refill.corrupt, 1);
        let data: Vec<_> = batch.iter().map(|r| r.data.clone()).collect();
        assert_eq!(data, [Bytes::from("{\"n\":1}"), Bytes::from("{\"n\":2}")]);
        assert!(b.is_empty());
    }
}
