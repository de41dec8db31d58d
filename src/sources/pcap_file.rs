//! Capture files: pcap (either byte order, micro- or nanosecond timestamps) and pcapng
//! (any number of sections and interfaces, each with its own link type,
//! `if_tsresol` and `if_tsoffset`), read with `pcap-parser`.
//!
//! Input is a list of paths; output is every frame of every file, in capture-time
//! order, handed to a callback as a [`Frame`] (link type, timestamp, bytes, which file),
//! then a [`CaptureReport`] saying how each file ended. Several files are merged by a
//! k-way merge on timestamps: each file is streamed through a fixed buffer (never
//! loaded whole), one frame per file waits in the merge, and frames with equal
//! timestamps come out in file order (the order of `paths`, then the order inside each
//! file). A file that is cut short or corrupt part-way still delivers every frame
//! before the damage; the report names the byte offset. Frames of link types the
//! decoder does not read are counted per file and skipped.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use crate::time::CaptureTime;
use crate::wire::decode::LinkType;

/// One captured frame. `data` is valid for the duration of the callback only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub at: CaptureTime,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Index of the file in the `paths` given to [`read_captures`].
    pub file: usize,
}

/// Where a truncated file stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutShort {
    /// The pcap file header (24 bytes) is incomplete.
    FileHeader,
    /// A pcap record header (16 bytes) is incomplete.
    RecordHeader,
    /// A pcap record's packet bytes are incomplete.
    RecordData,
    /// A pcapng block is incomplete.
    Block,
}

impl CutShort {
    pub fn as_str(self) -> &'static str {
        match self {
            CutShort::FileHeader => "file header cut short",
            CutShort::RecordHeader => "record header cut short",
            CutShort::RecordData => "record data cut short",
            CutShort::Block => "block cut short",
        }
    }
}

/// How reading one file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Read to its end: `frames` frames (including skipped ones of unsupported link
    /// types), `bytes` bytes of file.
    Complete { frames: u64, bytes: u64 },
    /// The file ends inside a record; the frames before `offset` were delivered.
    Truncated {
        frames: u64,
        offset: u64,
        what: CutShort,
    },
    /// Bytes at `offset` are not a valid record; the frames before were delivered.
    Corrupt {
        frames: u64,
        offset: u64,
        reason: String,
    },
    /// Not a pcap or pcapng file at all.
    NotACapture { reason: String },
    /// The file could not be opened or read.
    Io { error: String },
}

impl FileOutcome {
    /// The `callwatch analyze` exit status this outcome calls for (SPEC §5): 0 read to
    /// the end, 1 truncated or corrupt part-way, 2 not a capture or unreadable.
    pub fn exit_code(&self) -> u8 {
        match self {
            FileOutcome::Complete { .. } => 0,
            FileOutcome::Truncated { .. } | FileOutcome::Corrupt { .. } => 1,
            FileOutcome::NotACapture { .. } | FileOutcome::Io { .. } => 2,
        }
    }

    /// Frames read from the file before it ended, however it ended.
    pub fn frames(&self) -> u64 {
        match self {
            FileOutcome::Complete { frames, .. }
            | FileOutcome::Truncated { frames, .. }
            | FileOutcome::Corrupt { frames, .. } => *frames,
            FileOutcome::NotACapture { .. } | FileOutcome::Io { .. } => 0,
        }
    }

    /// A message for people naming the file (and the byte offset where it matters);
    /// `None` when the file was read completely.
    pub fn describe(&self, path: &Path) -> Option<String> {
        let name = path.display();
        match self {
            FileOutcome::Complete { .. } => None,
            FileOutcome::Truncated {
                frames,
                offset,
                what,
            } => Some(format!(
                "{name}: truncated at byte {offset} ({}); {frames} frames read before",
                what.as_str()
            )),
            FileOutcome::Corrupt {
                frames,
                offset,
                reason,
            } => Some(format!(
                "{name}: corrupt at byte {offset} ({reason}); {frames} frames read before"
            )),
            FileOutcome::NotACapture { reason } => {
                Some(format!("{name}: not a capture file ({reason})"))
            }
            FileOutcome::Io { error } => Some(format!("{name}: {error}")),
        }
    }
}

/// Frames skipped in one file because the decoder does not read their link type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedLink {
    pub file: usize,
    pub linktype: u32,
    pub frames: u64,
}

/// How every file ended, in the order of the paths given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub files: Vec<(PathBuf, FileOutcome)>,
    pub unsupported_links: Vec<UnsupportedLink>,
}

impl CaptureReport {
    /// The worst exit status over all files (see [`FileOutcome::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.files
            .iter()
            .map(|(_, o)| o.exit_code())
            .max()
            .unwrap_or(0)
    }

    /// One message per file not read completely, and one per unsupported link type.
    pub fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter_map(|(p, o)| o.describe(p))
            .collect();
        for u in &self.unsupported_links {
            let name = self.files.get(u.file).map_or_else(
                || format!("file {}", u.file),
                |(p, _)| p.display().to_string(),
            );
            out.push(format!(
                "{name}: {} frames of unsupported link type {} skipped",
                u.frames, u.linktype
            ));
        }
        out
    }

    /// Frames read over all files (skipped ones included).
    pub fn frames(&self) -> u64 {
        self.files.iter().map(|(_, o)| o.frames()).sum()
    }

    /// Frames skipped for their link type over all files.
    pub fn skipped_frames(&self) -> u64 {
        self.unsupported_links.iter().map(|u| u.frames).sum()
    }
}

impl fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.messages() {
            writeln!(f, "{m}")?;
        }
        Ok(())
    }
}

/// Reads every frame of every file in timestamp order; `progress` gets (bytes read so
/// far, total bytes) now and then, and once at the end.
pub fn read_captures(
    paths: &[PathBuf],
    on_frame: &mut dyn FnMut(Frame<'_>),
    progress: &mut dyn FnMut(u64, u64),
) -> CaptureReport {
    let mut outcomes: Vec<Option<FileOutcome>> = vec![None; paths.len()];
    let mut readers: Vec<CaptureReader> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match CaptureReader::open(i, path) {
            Ok(r) => readers.push(r),
            Err(o) => {
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(o);
                }
            }
        }
    }
    let total: u64 = readers.iter().map(|r| r.st.size).sum();
    let mut done_bytes = 0u64;
    let mut progress_tick = Progress::default();
    progress(0, total);

    // One frame per file waits here; the heap orders them by (time, file).
    let mut heads: Vec<Head> = readers.iter().map(|_| Head::new()).collect();
    let mut heap: BinaryHeap<Reverse<(CaptureTime, usize)>> = BinaryHeap::new();
    let mut finished: Vec<(usize, FileOutcome, BTreeMap<u32, u64>)> = Vec::new();
    let mut live: Vec<Option<CaptureReader>> = readers.into_iter().map(Some).collect();

    for (slot, (reader, head)) in live.iter_mut().zip(heads.iter_mut()).enumerate() {
        if let Some(r) = reader.as_mut() {
            match r.next_frame(&mut |f| head.fill(f), false) {
                None => heap.push(Reverse((head.at, slot))),
                Some(outcome) => {
                    if let Some(r) = reader.take() {
                        done_bytes += r.st.size;
                        finished.push((r.st.index, outcome, r.st.unsupported));
                    }
                }
            }
        }
    }

    while let Some(Reverse((_, slot))) = heap.pop() {
        let (Some(head), Some(reader_slot)) = (heads.get_mut(slot), live.get_mut(slot)) else {
            continue;
        };
        let Some(reader) = reader_slot.as_mut() else {
            continue;
        };
        on_frame(Frame {
            at: head.at,
            link: head.link,
            data: &head.data,
            file: reader.st.index,
        });
        let ended = if heap.is_empty() {
            // Last file standing: stream it straight through, no copy, every complete
            // record of the read buffer per call (a progress report each).
            loop {
                if let Some(outcome) = reader.next_frame(on_frame, true) {
                    break Some(outcome);
                }
                progress((done_bytes + reader.consumed()).min(total), total);
            }
        } else {
            match reader.next_frame(&mut |f| head.fill(f), false) {
                None => {
                    heap.push(Reverse((head.at, slot)));
                    None
                }
                Some(outcome) => Some(outcome),
            }
        };
        if let Some(outcome) = ended {
            if let Some(r) = reader_slot.take() {
                done_bytes += r.st.size;
                finished.push((r.st.index, outcome, r.st.unsupported));
            }
        }
        let in_flight: u64 = live.iter().flatten().map(|r| r.consumed()).sum();
        progress_tick.frame(done_bytes + in_flight, total, progress);
    }
    progress(total, total);

    let mut report = CaptureReport::default();
    for (index, outcome, unsupported) in finished {
        if let Some(slot) = outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
        for (linktype, frames) in unsupported {
            report.unsupported_links.push(UnsupportedLink {
                file: index,
                linktype,
                frames,
            });
        }
    }
    report
        .unsupported_links
        .sort_by_key(|u| (u.file, u.linktype));
    report.files = paths
        .iter()
        .zip(outcomes)
        .map(|(p, o)| {
            let o = o.unwrap_or_else(|| FileOutcome::Io {
                error: "not read".to_string(),
            });
            (p.clone(), o)
        })
        .collect();
    report
}

/// Calls the progress callback every so many frames rather than on each.
#[derive(Default)]
struct Progress {
    frames: u32,
}

impl Progress {
    const EVERY: u32 = 4096;

    fn frame(&mut self, read: u64, total: u64, progress: &mut dyn FnMut(u64, u64)) {
        self.frames += 1;
        if self.frames >= Self::EVERY {
            self.frames = 0;
            progress(read.min(total), total);
        }
    }
}

/// The frame a file has waiting in the merge, copied out of the reader's buffer.
struct Head {
    at: CaptureTime,
    link: LinkType,
    data: Vec<u8>,
}

impl Head {
    fn new() -> Self {
        Head {
            at: CaptureTime::default(),
            link: LinkType::Ethernet,
            data: Vec::new(),
        }
    }

    fn fill(&mut self, f: Frame<'_>) {
        self.at = f.at;
        self.link = f.link;
        self.data.clear();
        self.data.extend_from_slice(f.data);
    }
}

/// What one pcapng interface (or the pcap file header) says about its frames.
#[derive(Clone, Copy, Debug)]
struct Interface {
    /// The link type, or its number when the decoder does not read it.
    link: Result<LinkType, u32>,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds to add to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

/// Initial read buffer: larger than any record of a 262144-byte snaplen.
const BUFFER: usize = 1 << 20;
/// A record longer than this is taken for corruption, not a packet.
const MAX_RECORD: usize = 16 << 20;

const PCAP_RECORD_HEADER: usize = 16;

/// Mask of the link type in a pcap header's LinkType field; the upper bits carry FCS
/// information (draft-ietf-opsawg-pcap §4).
const LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// A `Read` that remembers the last I/O error, which `pcap-parser` reduces to a bare
/// `ReadError`.
struct ReadWithError {
    file: File,
    error: Rc<RefCell<Option<String>>>,
}

impl Read for ReadWithError {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf).inspect_err(|e| {
            *self.error.borrow_mut() = Some(e.to_string());
        })
    }
}

enum Format {
    Pcap,
    PcapNg,
}

/// One capture file being read: the `pcap-parser` reader and what the file said so far
/// (kept apart so that a block borrowed from the reader can be handed on).
struct CaptureReader {
    reader: Box<dyn PcapReaderIterator>,
    st: FileState,
}

struct FileState {
    index: usize,
    size: u64,
    format: Format,
    /// pcap: one entry from the file header; pcapng: the current section's interfaces.
    interfaces: Vec<Interface>,
    /// pcapng simple packet blocks carry no timestamp: they get the last one seen.
    last_at: CaptureTime,
    frames: u64,
    unsupported: BTreeMap<u32, u64>,
    error: Rc<RefCell<Option<String>>>,
    /// Byte order of the pcap file or of the current pcapng section.
    big_endian: bool,
    /// Current size of the reader's buffer.
    capacity: usize,
    /// A classic pcap file with 16-byte record headers, once its header was read: its
    /// one interface. Complete records are then cut straight out of the buffer.
    classic: Option<Interface>,
}

impl CaptureReader {
    fn open(index: usize, path: &Path) -> Result<CaptureReader, FileOutcome> {
        let io_error = |e: io::Error| FileOutcome::Io {
            error: format!("cannot read: {e}"),
        };
        let mut file = File::open(path).map_err(io_error)?;
        let size = file.metadata().map_err(io_error)?.len();
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match file.read(magic.get_mut(got..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        let format = match (got, magic) {
            (0, _) => {
                return Err(FileOutcome::NotACapture {
                    reason: "empty file".to_string(),
                })
            }
            (4, [0xa1, 0xb2, 0xc3, 0xd4] | [0xd4, 0xc3, 0xb2, 0xa1]) => Format::Pcap,
            (4, [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1]) => Format::Pcap,
            (4, [0xa1, 0xb2, 0xcd, 0x34] | [0x34, 0xcd, 0xb2, 0xa1]) => Format::Pcap,
            (4, [0x0a, 0x0d, 0x0d, 0x0a]) => Format::PcapNg,
            (_, [0x1f, 0x8b, ..]) => {
                return Err(FileOutcome::NotACapture {
                    reason: "gzip-compressed; decompress it first".to_string(),
                })
            }
            (4, [0x28, 0xb5, 0x2f, 0xfd]) => {
                return Err(FileOutcome::NotACapture {
                    reason: "zstd-compressed; decompress it first".to_string(),
                })
            }
            _ => {
                let shown: Vec<String> =
                    magic.iter().take(got).map(|b| format!("{b:02x}")).collect();
                return Err(FileOutcome::NotACapture {
                    reason: format!(
                        "no pcap or pcapng magic number (starts with {})",
                        shown.join(" ")
                    ),
                });
            }
        };
        // Start again from byte 0: the readers parse the magic themselves.
        let file = File::open(path).map_err(io_error)?;
        let error = Rc::new(RefCell::new(None));
        let source = ReadWithError {
            file,
            error: Rc::clone(&error),
        };
        let reader: Box<dyn PcapReaderIterator> = match format {
            Format::Pcap => match LegacyPcapReader::new(BUFFER, source) {
                Ok(r) => Box::new(r),
                Err(e) => return Err(header_error(e, &error, CutShort::FileHeader)),
            },
            Format::PcapNg => match PcapNGReader::new(BUFFER, source) {
                Ok(r) => Box::new(r),
                Err(e) => return Err(header_error(e, &error, CutShort::Block)),
            },
        };
        Ok(CaptureReader {
            reader,
            st: FileState {
                index,
                size,
                format,
                interfaces: Vec::new(),
                last_at: CaptureTime::default(),
                frames: 0,
                unsupported: BTreeMap::new(),
                error,
                big_endian: false,
                capacity: BUFFER,
                classic: None,
            },
        })
    }

    /// Bytes of the file read so far.
    fn consumed(&self) -> u64 {
        self.reader.consumed() as u64
    }

    /// Reads blocks until one frame was handed to `f` (returns `None`) or the file
    /// ended (returns how). With `batch`, a classic pcap file hands over every complete
    /// record of the read buffer before returning (the caller streams this file alone).
    fn next_frame(&mut self, f: &mut dyn FnMut(Frame<'_>), batch: bool) -> Option<FileOutcome> {
        let CaptureReader { reader, st } = self;
        loop {
            // Fast path: complete classic pcap records in the buffer. Anything else
            // (a record cut by the buffer's end, the file's end, an error) goes through
            // `pcap-parser` below, which refills and reports as it always did.
            if let Some(iface) = st.classic {
                let data = reader.data();
                let mut used = 0;
                let mut delivered = false;
                while let Some((secs, frac, bytes)) =
                    classic_record(data.get(used..).unwrap_or_default(), st.big_endian)
                {
                    used += PCAP_RECORD_HEADER + bytes.len();
                    let at = legacy_time(secs, frac, iface.units_per_sec);
                    delivered |= st.deliver(iface, at, bytes, f);
                    if delivered && !batch {
                        break;
                    }
                }
                if used > 0 {
                    // No shift per record: `refill` moves the remainder down once.
                    reader.consume_noshift(used);
                    if delivered {
                        return None;
                    }
                    continue;
                }
            }
            let offset = reader.consumed() as u64;
            match reader.next() {
                Ok((len, block)) => {
                    let delivered = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            let units = if h.is_nanosecond_precision() {
                                1_000_000_000
                            } else {
                                1_000_000
                            };
                            st.big_endian = h.is_bigendian();
                            let iface = Interface {
                                link: link_of((h.network.0 as u32) & LINKTYPE_MASK),
                                units_per_sec: units,
                                offset_secs: 0,
                            };
                            st.interfaces = vec![iface];
                            st.classic = (!h.is_modified_format()).then_some(iface);
                            false
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let Some(iface) = st.interfaces.first().copied() else {
                                return Some(st.corrupt(offset, "record before file header"));
                            };
                            let at = legacy_time(b.ts_sec, b.ts_usec, iface.units_per_sec);
                            st.deliver(iface, at, b.data, f)
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                            // Interface ids are per section (pcapng §4.1).
                            st.interfaces.clear();
                            st.big_endian = shb.big_endian();
                            false
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            st.interfaces.push(Interface {
                                link: link_of(u32::from(idb.linktype.0 as u16)),
                                units_per_sec: idb.ts_resolution().unwrap_or(0),
                                offset_secs: idb.if_tsoffset,
                            });
                            false
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let id = epb.if_id;
                            let Some(iface) = st.interfaces.get(id as usize).copied() else {
                                let why = format!("packet for undeclared interface {id}");
                                return Some(st.corrupt(offset, &why));
                            };
                            if iface.units_per_sec == 0 {
                                return Some(st.corrupt(offset, "invalid if_tsresol"));
                            }
                            let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let at = ng_time(ticks, iface);
                            st.deliver(iface, at, epb.packet_data(), f)
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let Some(iface) = st.interfaces.first().copied() else {
                                return Some(st.corrupt(offset, "packet before any interface"));
                            };
                            let at = st.last_at;
                            st.deliver(iface, at, spb.packet_data(), f)
                        }
                        PcapBlockOwned::NG(_) => false,
                    };
                    reader.consume(len);
                    if delivered {
                        return None;
                    }
                }
                Err(PcapError::Eof) => {
                    return Some(FileOutcome::Complete {
                        frames: st.frames,
                        bytes: offset,
                    })
                }
                Err(PcapError::Incomplete(_)) => {
                    if reader.refill().is_err() {
                        return Some(st.io(offset));
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    let left = reader.data();
                    if let Some(why) = st.implausible(left) {
                        return Some(st.corrupt(offset, &why));
                    }
                    let what = match st.format {
                        Format::Pcap if left.len() < PCAP_RECORD_HEADER => CutShort::RecordHeader,
                        Format::Pcap => CutShort::RecordData,
                        Format::PcapNg => CutShort::Block,
                    };
                    return Some(FileOutcome::Truncated {
                        frames: st.frames,
                        offset,
                        what,
                    });
                }
                Err(PcapError::BufferTooSmall) => {
                    if let Some(why) = st.implausible(reader.data()) {
                        return Some(st.corrupt(offset, &why));
                    }
                    let bigger = st.capacity.saturating_mul(2).min(MAX_RECORD * 2);
                    if bigger <= st.capacity || !reader.grow(bigger) {
                        let why = format!("record longer than {} MiB", MAX_RECORD >> 20);
                        return Some(st.corrupt(offset, &why));
                    }
                    st.capacity = bigger;
                    if reader.refill().is_err() {
                        return Some(st.io(offset));
                    }
                }
                Err(PcapError::ReadError) => return Some(st.io(offset)),
                Err(PcapError::HeaderNotRecognized) => {
                    return Some(st.corrupt(offset, "unrecognised header"))
                }
                Err(PcapError::NomError(_, kind)) | Err(PcapError::OwnedNomError(_, kind)) => {
                    let why = format!("malformed block ({})", kind.description());
                    return Some(st.corrupt(offset, &why));
                }
            }
        }
    }
}

impl FileState {
    /// Why the record or block starting `data` cannot be a real one, if its length
    /// field says more than [`MAX_RECORD`] bytes.
    fn implausible(&self, data: &[u8]) -> Option<String> {
        let at = match self.format {
            Format::Pcap => 8,
            Format::PcapNg => 4,
        };
        let field = data.get(at..)?.first_chunk::<4>()?;
        let len = if self.big_endian {
            u32::from_be_bytes(*field)
        } else {
            u32::from_le_bytes(*field)
        };
        (len as usize > MAX_RECORD).then(|| format!("record length {len} is implausible"))
    }

    fn deliver(
        &mut self,
        iface: Interface,
        at: CaptureTime,
        data: &[u8],
        f: &mut dyn FnMut(Frame<'_>),
    ) -> bool {
        self.frames += 1;
        self.last_at = at;
        match iface.link {
            Ok(link) => {
                f(Frame {
                    at,
                    link,
                    data,
                    file: self.index,
                });
                true
            }
            Err(linktype) => {
                *self.unsupported.entry(linktype).or_insert(0) += 1;
                false
            }
        }
    }

    fn corrupt(&self, offset: u64, reason: &str) -> FileOutcome {
        FileOutcome::Corrupt {
            frames: self.frames,
            offset,
            reason: reason.to_string(),
        }
    }

    fn io(&self, offset: u64) -> FileOutcome {
        let why = self
            .error
            .borrow()
            .clone()
            .unwrap_or_else(|| "unknown error".to_string());
        FileOutcome::Io {
            error: format!("read error at byte {offset}: {why}"),
        }
    }
}

fn header_error(
    e: PcapError<&[u8]>,
    io_error: &Rc<RefCell<Option<String>>>,
    cut: CutShort,
) -> FileOutcome {
    match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
            FileOutcome::Truncated {
                frames: 0,
                offset: 0,
                what: cut,
            }
        }
        PcapError::ReadError => FileOutcome::Io {
            error: format!(
                "read error at byte 0: {}",
                io_error.borrow().clone().unwrap_or_default()
            ),
        },
        other => FileOutcome::NotACapture {
            reason: format!("unreadable file header ({other:?})"),
        },
    }
}

/// The classic pcap record at the start of `data` when it is there whole: seconds,
/// fraction and packet bytes (the 16-byte header is ts_sec, ts_frac, incl_len,
/// orig_len in the file's byte order).
fn classic_record(data: &[u8], big_endian: bool) -> Option<(u32, u32, &[u8])> {
    let header = data.first_chunk::<PCAP_RECORD_HEADER>()?;
    let field = |i: usize| {
        let b = [header[i], header[i + 1], header[i + 2], header[i + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let caplen = usize::try_from(field(8)).ok()?;
    let bytes = data.get(PCAP_RECORD_HEADER..PCAP_RECORD_HEADER.checked_add(caplen)?)?;
    Some((field(0), field(4), bytes))
}

fn link_of(linktype: u32) -> Result<LinkType, u32> {
    LinkType::from_linktype(linktype).ok_or(linktype)
}

/// A pcap record time: seconds and a fraction in micro- or nanoseconds.
fn legacy_time(secs: u32, frac: u32, units_per_sec: u64) -> CaptureTime {
    let frac_us = if units_per_sec == 1_000_000_000 {
        i64::from(frac / 1000)
    } else {
        i64::from(frac)
    };
    CaptureTime::from_secs_micros(i64::from(secs), frac_us)
}

/// A pcapng timestamp: `ticks` in the interface's units since the epoch plus its offset.
fn ng_time(ticks: u64, iface: Interface) -> CaptureTime {
    let units = u128::from(iface.units_per_sec.max(1));
    let micros = u128::from(ticks).saturating_mul(1_000_000) / units;
    let micros = i64::try_from(micros).unwrap_or(i64::MAX);
    CaptureTime(micros.saturating_add(iface.offset_secs.saturating_mul(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_time_in_any_resolution() {
        let us = Interface {
            link: Ok(LinkType::Ethernet),
            units_per_sec: 1_000_000,
            offset_secs: 0,
        };
        assert_eq!(ng_time(1_500_000, us), CaptureTime(1_500_000));
        let ns = Interface {
            units_per_sec: 1_000_000_000,
            ..us
        };
        assert_eq!(ng_time(1_500_000_999, ns), CaptureTime(1_500_000));
        let pow2 = Interface {
            units_per_sec: 1 << 20,
            offset_secs: 10,
            ..us
        };
        assert_eq!(ng_time(1 << 19, pow2), CaptureTime(10_500_000));
        assert_eq!(ng_time(u64::MAX, ns).0, 18_446_744_073_709_551);
    }

    #[test]
    fn classic_record_in_both_byte_orders_and_only_when_whole() {
        let mut le = Vec::new();
        for v in [7u32, 500, 3, 60] {
            le.extend_from_slice(&v.to_le_bytes());
        }
        le.extend_from_slice(&[1, 2, 3, 9]);
        assert_eq!(classic_record(&le, false), Some((7, 500, &[1u8, 2, 3][..])));
        assert_eq!(classic_record(&le[..18], false), None);
        assert_eq!(classic_record(&le[..15], false), None);
        let mut be = Vec::new();
        for v in [7u32, 500, 0, 60] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(classic_record(&be, true), Some((7, 500, &[][..])));
        // A length field that does not fit what is there is not a record (yet).
        be[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(classic_record(&be, true), None);
    }

    #[test]
    fn pcap_time_in_micro_and_nanoseconds() {
        assert_eq!(legacy_time(2, 5, 1_000_000), CaptureTime(2_000_005));
        assert_eq!(legacy_time(2, 5_999, 1_000_000_000), CaptureTime(2_000_005));
    }

    #[test]
    fn exit_codes_and_messages() {
        let t = FileOutcome::Truncated {
            frames: 812,
            offset: 18234,
            what: CutShort::RecordHeader,
        };
        assert_eq!(t.exit_code(), 1);
        assert_eq!(
            t.describe(Path::new("capture.pcap")).as_deref(),
            Some("capture.pcap: truncated at byte 18234 (record header cut short); 812 frames read before")
        );
        let report = CaptureReport {
            files: vec![
                (
                    PathBuf::from("a.pcap"),
                    FileOutcome::Complete {
                        frames: 1,
                        bytes: 40,
                    },
                ),
                (PathBuf::from("b.pcap"), t),
                (
                    PathBuf::from("c.txt"),
                    FileOutcome::NotACapture {
                        reason: "empty file".into(),
                    },
                ),
            ],
            unsupported_links: vec![UnsupportedLink {
                file: 0,
                linktype: 147,
                frames: 3,
            }],
        };
        assert_eq!(report.exit_code(), 2);
        assert_eq!(report.messages().len(), 3);
        assert_eq!(report.frames(), 813);
        assert_eq!(report.skipped_frames(), 3);
        assert!(report.messages()[2].contains("link type 147"));
    }
}
