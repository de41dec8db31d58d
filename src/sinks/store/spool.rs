//! The store's write-ahead spool: the bounded on-disk queue between the store sink (on
//! the engine task) and the writer task that commits to the database.
//!
//! The sink appends each record as one frame (`len u32 LE`, `crc32 u32 LE`, payload) with
//! a single `write(2)` to the current segment file before `on_event` returns: from then
//! on the record is in the kernel's page cache and survives the process being killed
//! (SIGKILL, OOM kill, panic). That is what "acknowledged" means for the store. The
//! writer reads frames back from its checkpoint (segment number and offset), commits
//! them in batches, then moves the checkpoint and deletes the segments it has passed.
//! A restart replays from the checkpoint; the store's upsert by `leg_id` makes a replay
//! harmless, so every acknowledged leg ends up in the database exactly once.
//!
//! Bounds: segments rotate at `segment_bytes`; when the segments not yet deleted hold
//! `max_bytes` (the database is down or slower than the calls), a new record is refused
//! and the caller counts it in `callwatch_events_dropped_total{sink="store"}`. A frame
//! torn by a crash (bad length or CRC in a segment that is no longer written to) ends
//! that segment's replay and is counted as corrupt. Power loss is out of scope: frames
//! are not fsync'ed one by one (the writer's database commit is).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A frame's payload is at most this long (a flagged leg with its SIP ladder).
pub const MAX_FRAME: usize = 64 << 20;
const HEADER: usize = 8;
const CHECKPOINT: &str = "checkpoint";

/// State shared by the appending side and the reading side.
#[derive(Debug, Default)]
pub struct SpoolShared {
    /// Bytes appended and not yet committed by the reader (the backlog the bound
    /// applies to; the files on disk may hold one segment more).
    pub bytes: AtomicU64,
    /// Frames appended by this process.
    pub appended: AtomicU64,
    /// Frames refused because the spool was full or the disk failed.
    pub refused: AtomicU64,
    /// Torn or corrupt frames skipped while reading.
    pub corrupt: AtomicU64,
    /// Woken after each append.
    pub notify: tokio::sync::Notify,
}

/// Why a record was not spooled.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("spool full ({0} bytes)")]
    Full(u64),
    #[error("record of {0} bytes is too large")]
    TooLarge(usize),
    #[error("spool write failed: {0}")]
    Io(#[from] io::Error),
}

/// Where the reader is: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.log"))
}

/// Segment numbers present in `dir`, ascending.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn read_checkpoint(dir: &Path) -> Position {
    let Ok(s) = fs::read_to_string(dir.join(CHECKPOINT)) else {
        return Position::default();
    };
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(segment), Some(offset)) => Position { segment, offset },
        _ => Position::default(),
    }
}

/// Opens the spool in `dir` (created when missing): the appending side starts a new
/// segment after every existing one (a segment left by a crash is never appended to),
/// the reading side resumes at the checkpoint.
pub fn open(
    dir: &Path,
    max_bytes: u64,
    segment_bytes: u64,
) -> io::Result<(SpoolWriter, SpoolReader)> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let existing = segments(dir)?;
    let mut cp = read_checkpoint(dir);
    if let Some(&first) = existing.first() {
        if first > cp.segment {
            cp = Position {
                segment: first,
                offset: 0,
            };
        }
    }
    let mut bytes = 0u64;
    for &s in &existing {
        if s < cp.segment {
            // Passed by the checkpoint but not deleted (killed in between).
            let _ = fs::remove_file(segment_path(dir, s));
        } else {
            let len = fs::metadata(segment_path(dir, s)).map_or(0, |m| m.len());
            bytes += if s == cp.segment {
                len.saturating_sub(cp.offset)
            } else {
                len
            };
        }
    }
    let shared = Arc::new(SpoolShared::default());
    shared.bytes.store(bytes, Ordering::Relaxed);
    let seq = existing
        .last()
        .map_or(cp.segment, |&l| l + 1)
        .max(cp.segment);
    let writer = SpoolWriter {
        dir: dir.to_path_buf(),
        file: create_segment(dir, seq)?,
        seq,
        len: 0,
        max_bytes,
        segment_bytes: segment_bytes.max(HEADER as u64 + 1),
        shared: shared.clone(),
    };
    let reader = SpoolReader {
        dir: dir.to_path_buf(),
        pos: cp,
        shared,
    };
    Ok((writer, reader))
}

/// Segments hold customer numbers and SIP text: readable by the daemon's user only.
fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(segment_path(dir, seq))
}

/// The appending side, owned by the store sink on the engine task.
#[derive(Debug)]
pub struct SpoolWriter {
    dir: PathBuf,
    file: File,
    seq: u64,
    len: u64,
    max_bytes: u64,
    segment_bytes: u64,
    shared: Arc<SpoolShared>,
}

impl SpoolWriter {
    pub fn shared(&self) -> &Arc<SpoolShared> {
        &self.shared
    }

    /// Appends one record with a single write; when this returns Ok the record
    /// survives the process being killed.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), AppendError> {
        if payload.len() > MAX_FRAME {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::TooLarge(payload.len()));
        }
        let frame_len = (HEADER + payload.len()) as u64;
        let held = self.shared.bytes.load(Ordering::Acquire);
        if held.saturating_add(frame_len) > self.max_bytes {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::Full(held));
        }
        if self.len > 0 && self.len + frame_len > self.segment_bytes {
            let next = self.seq + 1;
            match create_segment(&self.dir, next) {
                Ok(f) => {
                    self.file = f;
                    self.seq = next;
                    self.len = 0;
                }
                Err(e) => {
                    self.shared.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(e.into());
                }
            }
        }
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        if let Err(e) = self.file.write_all(&frame) {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            // A partial frame may be on disk: start a fresh segment so the reader
            // skips it as the torn tail of a finished segment.
            if let Ok(f) = create_segment(&self.dir, self.seq + 1) {
                self.file = f;
                self.seq += 1;
                self.len = 0;
            }
            return Err(e.into());
        }
        self.len += frame_len;
        self.shared.bytes.fetch_add(frame_len, Ordering::AcqRel);
        self.shared.appended.fetch_add(1, Ordering::Relaxed);
        self.shared.notify.notify_one();
        Ok(())
    }
}

/// Bytes the reader asks the file for at once.
const READ_CHUNK: usize = 256 << 10;

/// The reading side, owned by the writer task.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    pos: Position,
    shared: Arc<SpoolShared>,
}

/// Frames read and the position just after the last one.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Vec<u8>>,
    pub end: Position,
    /// Frame bytes (headers included) of `records`.
    pub bytes: u64,
}

impl SpoolReader {
    pub fn shared(&self) -> &Arc<SpoolShared> {
        &self.shared
    }

    pub fn position(&self) -> Position {
        self.pos
    }

    /// Reads up to `max_records` frames (and about `max_bytes`) from the position.
    /// Does not move the position: [`SpoolReader::commit`] does, once they are stored.
    pub fn read(&mut self, max_records: usize, max_bytes: usize) -> io::Result<Batch> {
        let mut batch = Batch {
            records: Vec::new(),
            end: self.pos,
            bytes: 0,
        };
        let mut taken = 0usize;
        loop {
            // Listed before reading: a later segment existing means this one is
            // finished, so what is read below is all it will ever hold.
            let later = segments(&self.dir)?
                .into_iter()
                .find(|&s| s > batch.end.segment);
            let path = segment_path(&self.dir, batch.end.segment);
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => match later {
                    Some(next) => {
                        batch.end = Position {
                            segment: next,
                            offset: 0,
                        };
                        continue;
                    }
                    None => return Ok(batch),
                },
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(batch.end.offset))?;
            // Read as the frames need it, a chunk at a time: a batch of a few records
            // does not read the rest of a long backlog only to leave it there.
            let mut buf = Vec::new();
            let mut eof = false;
            let mut at = 0usize;
            let mut torn = false;
            while batch.records.len() < max_records && taken < max_bytes {
                let need = match buf.get(at..at + HEADER) {
                    Some(head) => {
                        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                        if len > MAX_FRAME {
                            torn = true;
                            break;
                        }
                        HEADER + len
                    }
                    None => HEADER,
                };
                if buf.len() - at < need {
                    if eof {
                        torn = at < buf.len();
                        break;
                    }
                    let more = (need - (buf.len() - at)).max(READ_CHUNK) as u64;
                    eof = (&mut file).take(more).read_to_end(&mut buf)? == 0;
                    continue;
                }
                let head = &buf[at..at + HEADER];
                let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                let payload = &buf[at + HEADER..at + need];
                if crc32(payload) != crc {
                    torn = true;
                    break;
                }
                batch.records.push(payload.to_vec());
                at += need;
                taken += need;
            }
            batch.end.offset += at as u64;
            batch.bytes = taken as u64;
            let full = batch.records.len() >= max_records || taken >= max_bytes;
            if full {
                return Ok(batch);
            }
            match later {
                // The segment is finished: a torn frame at its end was left by a crash.
                Some(next) => {
                    if torn {
                        self.shared.corrupt.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            segment = batch.end.segment,
                            offset = batch.end.offset,
                            "store spool: torn or corrupt frame skipped"
                        );
                    }
                    batch.end = Position {
                        segment: next,
                        offset: 0,
                    };
                }
                // The current segment: a partial frame is still being written.
                None => return Ok(batch),
            }
        }
    }

    /// Marks the batch as stored: writes the checkpoint (atomically), deletes the
    /// segments before it and frees its bytes from the bound.
    pub fn commit(&mut self, batch: &Batch) -> io::Result<()> {
        let pos = batch.end;
        if pos <= self.pos {
            return Ok(());
        }
        let tmp = self.dir.join("checkpoint.tmp");
        fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))?;
        fs::rename(&tmp, self.dir.join(CHECKPOINT))?;
        for s in segments(&self.dir)? {
            if s >= pos.segment {
                break;
            }
            let path = segment_path(&self.dir, s);
            let _ = fs::remove_file(&path);
        }
        let _ = self
            .shared
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(batch.bytes))
            });
        self.pos = pos;
        Ok(())
    }
}

/// CRC-32 (IEEE 802.3), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test; the test removes it when it passes.
    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cw-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_restarts() {
        let d = tmp("order");
        let (mut w, mut r) = open(&d, 1 << 20, 64).unwrap();
        for i in 0..10u32 {
            w.append(format!("record {i}").as_bytes()).unwrap();
        }
        let b = r.read(4, 1 << 20).unwrap();
        assert_eq!(b.records.len(), 4);
        r.commit(&b).unwrap();
        drop((w, r));
        // Restart: the first four are not replayed, the other six are.
        let (_w, mut r) = open(&d, 1 << 20, 64).unwrap();
        let b = r.read(100, 1 << 20).unwrap();
        let got: Vec<String> = b
            .records
            .iter()
            .map(|x| String::from_utf8(x.clone()).unwrap())
            .collect();
        assert_eq!(got.first().map(String::as_str), Some("record 4"));
        assert_eq!(got.len(), 6);
        r.commit(&b).unwrap();
        assert!(segments(&d).unwrap().len() <= 2, "passed segments deleted");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn records_larger_than_a_read_chunk_and_straddling_chunks_come_back_whole() {
        let d = tmp("chunks");
        let (mut w, mut r) = open(&d, 64 << 20, 32 << 20).unwrap();
        // Small records whose frames straddle the chunk boundaries, one bigger than a
        // chunk, then more small ones; each record's bytes tell which it is.
        let mut sent: Vec<Vec<u8>> = Vec::new();
        for i in 0..5_000u32 {
            let len = 37 + (i as usize * 13) % 200;
            sent.push(vec![(i % 251) as u8; len]);
        }
        sent.insert(2_500, vec![7u8; READ_CHUNK * 2 + 11]);
        for rec in &sent {
            w.append(rec).unwrap();
        }
        let mut got: Vec<Vec<u8>> = Vec::new();
        for _ in 0..100 {
            let b = r.read(700, 1 << 20).unwrap();
            if b.records.is_empty() {
                break;
            }
            assert!(b.records.len() <= 700);
            got.extend(b.records.iter().cloned());
            r.commit(&b).unwrap();
        }
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "records differ after reading in chunks");
        assert_eq!(r.shared().corrupt.load(Ordering::Relaxed), 0);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_skipped_after_a_restart() {
        let d = tmp("torn");
        let (mut w, r) = open(&d, 1 << 20, 1 << 20).unwrap();
        w.append(b"whole").unwrap();
        // A crash in the middle of the next frame.
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(&d, 0))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop((w, r, f));
        let (mut w, mut r) = open(&d, 1 << 20, 1 << 20).unwrap();
        w.append(b"after").unwrap();
        let b = r.read(100, 1 << 20).unwrap();
        assert_eq!(b.records, vec![b"whole".to_vec(), b"after".to_vec()]);
        assert_eq!(r.shared().corrupt.load(Ordering::Relaxed), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_full_spool_refuses_and_counts() {
        let d = tmp("full");
        let (mut w, mut r) = open(&d, 40, 1 << 20).unwrap();
        w.append(&[1u8; 20]).unwrap();
        assert!(matches!(w.append(&[2u8; 20]), Err(AppendError::Full(_))));
        assert_eq!(w.shared().refused.load(Ordering::Relaxed), 1);
        // Once the writer has stored what it read, room comes back.
        let b = r.read(10, 1 << 20).unwrap();
        w.append(&[3u8; 20]).unwrap_err();
        r.commit(&b).unwrap();
        w.append(&[3u8; 20]).unwrap();
        let _ = fs::remove_dir_all(&d);
    }
}
