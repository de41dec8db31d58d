//! The SIP text of open dialogs, kept by Call-ID until their legs end, so that a flagged
//! leg is stored with every SIP message captured for it (the inspectors' ladder).
//!
//! Input: every packet the engine task hands to the sinks ([`crate::sinks::EventSink::
//! on_packet`]); only what parses as a SIP message with a Call-ID is kept, whole (all
//! copies and retransmissions: the ladder shows what the wire carried). Output: the
//! messages of a leg's Call-ID (and its linked customer Call-ID), in capture order.
//!
//! Bounded outside the engine's per-leg memory: `budget_bytes` over all calls, at most
//! [`MAX_MESSAGES_PER_CALL`] messages per call and [`MAX_MESSAGE_BYTES`] per message.
//! Calls with no open leg are forgotten [`IDLE_US`] after their last message (activity is
//! tracked to [`REKEY_US`], one index update per burst of messages); calls with
//! an open leg are kept until the leg ends (and for at most `max_keep_us`). Over budget,
//! a call whose legs have all been written ([`SipBuffer::written`]: every leg ended and
//! stored, none waiting for late messages) is forgotten first, oldest first: nothing
//! will read it, so it is neither spilled nor counted as lost. Then the messages of the
//! least recently active call (one without an open leg first) are spilled to disk
//! ([`Spill`]: append-only segment files, deleted once none of their messages is
//! needed), within their own byte budget; when that is full too, they are dropped, and
//! every message dropped is counted.
//!
//! The bookkeeping around the text is kept small (issue 4, memory per open leg): a
//! message is one allocation, its bytes behind an 11-byte header (capture time, its two
//! addresses as indexes into the call's few addresses, transport); a call's addresses
//! are packed in a word each (IPv6 ones aside); the store's [`SipRow`] (addresses and
//! first line as strings, the first line found again by the parser) is made only when
//! messages are read or spilled. A call is filed under a 64-bit hash of its Call-ID
//! ([`CallKey`]): the Call-ID itself is only in its messages, and reading filters on it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use smallvec::SmallVec;

use crate::engine::{Captured, PayloadHint};
use crate::store::SipRow;
use crate::wire::sip::header::HeaderName;
use crate::wire::sip::message::SipMessage;
use crate::wire::Transport;

pub const MAX_MESSAGES_PER_CALL: usize = 400;
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// A call with no open leg is forgotten this long (capture time) after its last message.
pub const IDLE_US: i64 = 120 * 1_000_000;
/// Accounting overhead per kept message (addresses, first line, bookkeeping).
const OVERHEAD: usize = 160;
/// A call's last activity is tracked to this (capture µs): the activity index is
/// updated once per burst of messages, not for each.
const REKEY_US: i64 = 1_000_000;

/// One kept message in one allocation: a header of [`Msg::HEAD`] bytes (capture time,
/// the indexes of its two addresses in the call's addresses, its transport) and then its
/// bytes. A slot in the call's list is 16 bytes, where a struct beside the text was 40;
/// the first line is found again when the message is read (rarely: a flagged leg).
#[derive(Debug)]
struct Msg(Box<[u8]>);

impl Msg {
    const HEAD: usize = 11;

    fn new(at: i64, src: u8, dst: u8, transport: Transport, raw: &[u8]) -> Msg {
        let mut v = Vec::with_capacity(Msg::HEAD + raw.len());
        v.extend_from_slice(&at.to_le_bytes());
        v.extend_from_slice(&[src, dst, transport_code(transport)]);
        v.extend_from_slice(raw);
        Msg(v.into_boxed_slice())
    }

    fn at(&self) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        i64::from_le_bytes(b)
    }

    fn src(&self) -> u8 {
        self.0[8]
    }

    fn dst(&self) -> u8 {
        self.0[9]
    }

    fn transport(&self) -> Transport {
        transport_of(self.0[10])
    }

    fn raw(&self) -> &[u8] {
        &self.0[Msg::HEAD..]
    }
}

fn transport_code(t: Transport) -> u8 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Sctp => 3,
    }
}

fn transport_of(code: u8) -> Transport {
    match code {
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Sctp,
        _ => Transport::Udp,
    }
}

/// What reading a kept message back needs of it, from one parse: its first line as
/// captured, without its line break (for a message cut at [`MAX_MESSAGE_BYTES`] that no
/// longer parses, the bytes up to the first line break after any leading ones), and
/// the Call-ID it was filed under (None when it cannot be read again).
fn read_back(raw: &[u8]) -> (&[u8], Option<&[u8]>) {
    // The parser's spans lie within `raw`: the same bytes, borrowed from `raw` itself.
    let within = |part: &[u8]| {
        let start = (part.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
        raw.get(start..start.saturating_add(part.len()))
    };
    let parsed = SipMessage::parse_lenient(raw).ok();
    let call_id = parsed
        .as_ref()
        .and_then(|m| m.header(HeaderName::CallId))
        .and_then(|id| within(trim(id)));
    if let Some(line) = parsed.as_ref().and_then(|m| within(m.first_line())) {
        return (line, call_id);
    }
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw.len());
    let rest = &raw[start..];
    let end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    (&rest[..end], call_id)
}

/// A message address as a call keeps it: an IPv4 address and port packed in one word
/// (`1 << 48 | ip << 16 | port`), or `2 << 48 | i` for the call's `Rare::v6[i]`.
type PackedAddr = u64;

/// The index of an address a call has more of than a message header can name.
const ADDR_OVERFLOW: u8 = u8::MAX;

#[derive(Debug, Default)]
struct CallSip {
    msgs: Vec<Msg>,
    /// The addresses the call's messages came from and went to (a few: the switch's
    /// and the phone's), packed.
    addrs: SmallVec<[PackedAddr; 2]>,
    /// What few calls have: IPv6 addresses, spilled messages.
    rare: Option<Box<Rare>>,
    bytes: usize,
    /// Key in the activity index: (last activity, id).
    key: (i64, u64),
    /// Legs of this call that are ringing or active, by [`leg_key`].
    open_legs: SmallVec<[u64; 2]>,
    /// Ended flagged legs still waiting to be written again with late messages.
    pins: u16,
    /// A leg of this call ended and was written, none is open and none is pinned: the
    /// messages are only kept for a leg that might still come.
    done: bool,
}

/// The parts of a call's SIP that few calls need, boxed so the others pay 8 bytes.
#[derive(Debug, Default)]
struct Rare {
    /// IPv6 addresses of the call's messages (`PackedAddr` names them by index).
    v6: Vec<SocketAddr>,
    /// Messages moved to the spill files, in arrival order.
    spilled: Vec<SpillRef>,
}

/// A Call-ID as the buffer keys its call: a 64-bit hash, so that no copy of the Call-ID
/// is kept (its bytes are in every message). Two Call-IDs with one hash would share a
/// call's fate in memory (kept, spilled and forgotten together); what is read back is
/// exact, since [`SipBuffer::messages`] keeps only the messages whose Call-ID is asked.
type CallKey = u64;

fn call_key(call_id: &[u8]) -> CallKey {
    crate::sinks::id_key(call_id)
}

/// A leg id as the call's open-leg list keeps it: its hash (the legs of one call never
/// collide in 64 bits; a collision would only keep the call's text longer).
fn leg_key(leg_id: &str) -> u64 {
    crate::sinks::id_key(leg_id.as_bytes())
}

impl CallSip {
    fn last_at(&self) -> i64 {
        self.key.0
    }

    fn spilled(&self) -> &[SpillRef] {
        self.rare.as_deref().map_or(&[], |r| &r.spilled)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn pack(&mut self, a: SocketAddr) -> PackedAddr {
        match a {
            SocketAddr::V4(v4) => {
                1 << 48 | u64::from(u32::from(*v4.ip())) << 16 | u64::from(v4.port())
            }
            SocketAddr::V6(_) => {
                let v6 = &mut self.rare_mut().v6;
                let i = v6.iter().position(|x| *x == a).unwrap_or_else(|| {
                    v6.push(a);
                    v6.len() - 1
                });
                2 << 48 | i as u64
            }
        }
    }

    fn unpack(&self, p: PackedAddr) -> Option<SocketAddr> {
        match p >> 48 {
            1 => Some(SocketAddr::from((
                std::net::Ipv4Addr::from((p >> 16) as u32),
                p as u16,
            ))),
            _ => self
                .rare
                .as_deref()
                .and_then(|r| r.v6.get((p & 0xffff_ffff) as usize))
                .copied(),
        }
    }

    /// The index of an address in the call's addresses (added when new).
    fn addr(&mut self, a: SocketAddr) -> u8 {
        let p = self.pack(a);
        match self.addrs.iter().position(|x| *x == p) {
            Some(i) => i.min(usize::from(ADDR_OVERFLOW)) as u8,
            None if self.addrs.len() < usize::from(ADDR_OVERFLOW) => {
                self.addrs.push(p);
                (self.addrs.len() - 1) as u8
            }
            None => ADDR_OVERFLOW,
        }
    }

    /// Grows the message list by half (not double): it is kept for the whole call.
    fn reserve_one(&mut self) {
        if self.msgs.len() == self.msgs.capacity() {
            let n = self.msgs.len();
            self.msgs.reserve_exact((n / 2).max(4));
        }
    }

    fn row(&self, m: &Msg) -> SipRow {
        self.row_with(m, read_back(m.raw()).0)
    }

    /// The row of `m`, whose first line the caller has read back already.
    fn row_with(&self, m: &Msg, first_line: &[u8]) -> SipRow {
        let addr = |i: u8| {
            self.addrs
                .get(usize::from(i))
                .and_then(|&p| self.unpack(p))
                .map_or_else(String::new, |a| a.to_string())
        };
        SipRow {
            at: m.at(),
            src: addr(m.src()),
            dst: addr(m.dst()),
            transport: m.transport().as_str().into(),
            first_line: String::from_utf8_lossy(first_line).into_owned(),
            raw: m.raw().to_vec(),
        }
    }

    fn rows(&self) -> Vec<SipRow> {
        self.msgs.iter().map(|m| self.row(m)).collect()
    }
}

/// What was thrown away, for the drop counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SipDrops {
    /// Messages evicted over budget or over the per-call cap.
    pub messages: u64,
}

#[derive(Debug)]
pub struct SipBuffer {
    /// Boxed: the table keeps a pointer per slot, not a whole call, so its unused slots
    /// (up to half of them after it grows) cost 8 bytes each.
    calls: foldhash::HashMap<CallKey, Box<CallSip>>,
    /// (last activity, id) → Call-ID, oldest first.
    by_activity: BTreeMap<(i64, u64), CallKey>,
    /// The keys of `by_activity` whose call has messages in memory (eviction candidates:
    /// spilled calls are not rescanned on every packet).
    resident: BTreeSet<(i64, u64)>,
    /// The keys of resident calls that are `done`: forgotten first over budget.
    done: BTreeSet<(i64, u64)>,
    next_id: u64,
    bytes: usize,
    budget_bytes: usize,
    max_keep_us: i64,
    drops: SipDrops,
    spill: Option<Spill>,
}

/// Where one spilled message is.
#[derive(Clone, Copy, Debug)]
struct SpillRef {
    segment: u64,
    offset: u64,
    len: u32,
}

/// Segment size of the spill files.
const SPILL_SEGMENT: u64 = 8 << 20;

/// Append-only files holding the SIP text of calls evicted from memory. The index lives
/// in memory (the refs of each call), so the files are worthless after a restart and
/// are removed when the spill opens.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    file: Option<File>,
    segment: u64,
    len: u64,
    max_bytes: u64,
    /// segment → (messages still referenced, bytes)
    live: BTreeMap<u64, (usize, u64)>,
    used: u64,
}

impl Spill {
    /// Opens (and empties) the spill folder `dir`, holding at most `max_bytes`.
    pub fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<Spill> {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(Spill {
            dir,
            file: None,
            segment: 0,
            len: 0,
            max_bytes,
            live: BTreeMap::new(),
            used: 0,
        })
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("{segment:012}.sip"))
    }

    /// Writes the messages; None when they do not fit or the disk fails.
    fn write(&mut self, msgs: &[SipRow]) -> Option<Vec<SpillRef>> {
        let mut blobs = Vec::with_capacity(msgs.len());
        for m in msgs {
            blobs.push(serde_json::to_vec(m).ok()?);
        }
        let total: u64 = blobs.iter().map(|b| b.len() as u64).sum();
        if self.used + total > self.max_bytes {
            return None;
        }
        if self.file.is_none() || self.len + total > SPILL_SEGMENT {
            if self.file.is_some() {
                self.segment += 1;
                self.retire_empty();
            }
            let mut o = OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            self.file = Some(o.open(self.path(self.segment)).ok()?);
            self.len = 0;
        }
        let file = self.file.as_mut()?;
        let mut refs = Vec::with_capacity(blobs.len());
        let mut buf = Vec::with_capacity(total as usize);
        for b in &blobs {
            refs.push(SpillRef {
                segment: self.segment,
                offset: self.len + buf.len() as u64,
                len: b.len() as u32,
            });
            buf.extend_from_slice(b);
        }
        if file.write_all(&buf).is_err() {
            // Whatever was written is garbage now: start a new segment next time.
            self.file = None;
            self.segment += 1;
            return None;
        }
        self.len += total;
        self.used += total;
        let e = self.live.entry(self.segment).or_default();
        e.0 += refs.len();
        e.1 += total;
        Some(refs)
    }

    fn read(&self, r: &SpillRef) -> Option<SipRow> {
        let mut f = File::open(self.path(r.segment)).ok()?;
        f.seek(SeekFrom::Start(r.offset)).ok()?;
        let mut buf = vec![0u8; r.len as usize];
        f.read_exact(&mut buf).ok()?;
        serde_json::from_slice(&buf).ok()
    }

    fn release(&mut self, refs: &[SpillRef]) {
        for r in refs {
            if let Some(e) = self.live.get_mut(&r.segment) {
                e.0 = e.0.saturating_sub(1);
            }
        }
        self.retire_empty();
    }

    /// Deletes the segments no message needs any more (but the one being written).
    fn retire_empty(&mut self) {
        let dead: Vec<u64> = self
            .live
            .iter()
            .filter(|(&s, &(n, _))| n == 0 && (s != self.segment || self.file.is_none()))
            .map(|(&s, _)| s)
            .collect();
        for s in dead {
            if let Some((_, bytes)) = self.live.remove(&s) {
                self.used = self.used.saturating_sub(bytes);
            }
            let _ = fs::remove_file(self.path(s));
        }
    }

    pub fn used_bytes(&self) -> u64 {
        self.used
    }
}

impl SipBuffer {
    pub fn new(budget_bytes: usize, max_keep_us: i64) -> SipBuffer {
        SipBuffer {
            calls: foldhash::HashMap::default(),
            by_activity: BTreeMap::new(),
            resident: BTreeSet::new(),
            done: BTreeSet::new(),
            next_id: 0,
            bytes: 0,
            budget_bytes,
            max_keep_us,
            drops: SipDrops::default(),
            spill: None,
        }
    }

    /// Spills over-budget calls to `spill` instead of dropping them.
    pub fn with_spill(mut self, spill: Spill) -> SipBuffer {
        self.spill = Some(spill);
        self
    }

    /// Bytes of SIP text on disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill.as_ref().map_or(0, Spill::used_bytes)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Takes the drops counted since the last call.
    pub fn take_drops(&mut self) -> SipDrops {
        std::mem::take(&mut self.drops)
    }

    /// Keeps the packet when it is a SIP message with a Call-ID.
    pub fn on_packet(&mut self, p: &Captured<'_>) {
        if p.payload.len() < 16 || p.hint == PayloadHint::Rtcp {
            return;
        }
        // A SIP message starts with a method or "SIP/2.0" (after keep-alive line ends):
        // RTP, RTCP and STUN fail here without being parsed.
        let lead = p.payload.iter().find(|&&b| b != b'\r' && b != b'\n');
        if !lead.is_some_and(u8::is_ascii_alphabetic) {
            return;
        }
        let Ok(msg) = SipMessage::parse_lenient(p.payload) else {
            return;
        };
        let Some(call_id) = msg.header(HeaderName::CallId) else {
            return;
        };
        let call_id = trim(call_id);
        if call_id.is_empty() {
            return;
        }
        let keep = p.payload.len().min(MAX_MESSAGE_BYTES);
        let raw = &p.payload[..keep];
        let size = keep + OVERHEAD;
        let at = p.at.0;
        let key = call_key(call_id);
        let entry = self.calls.entry(key).or_default();
        if entry.msgs.len() + entry.spilled().len() >= MAX_MESSAGES_PER_CALL {
            self.drops.messages += 1;
            return;
        }
        let was_resident = !entry.msgs.is_empty();
        let known = was_resident || !entry.spilled().is_empty();
        let last = entry.last_at().max(at);
        // The activity key moves when the call is new or a second has passed since it
        // last moved (the messages of a dialog come in bursts: one move per burst).
        let rekey = !known || last - entry.key.0 >= REKEY_US;
        if rekey && known {
            self.by_activity.remove(&entry.key);
            self.resident.remove(&entry.key);
            self.done.remove(&entry.key);
        }
        let (src, dst) = (entry.addr(p.src), entry.addr(p.dst));
        entry.reserve_one();
        if rekey {
            entry.key = (last, self.next_id);
            self.next_id += 1;
            self.by_activity.insert(entry.key, key);
        }
        entry.msgs.push(Msg::new(at, src, dst, p.transport, raw));
        entry.bytes += size;
        self.bytes += size;
        if rekey || !was_resident {
            self.resident.insert(entry.key);
            if entry.done {
                self.done.insert(entry.key);
            }
        }
        self.enforce_budget();
    }

    /// A leg of `call_id` is ringing or active: its call is kept until the leg ends.
    pub fn leg_open(&mut self, call_id: &[u8], leg_id: &str) {
        if let Some(c) = self.calls.get_mut(&call_key(call_id)) {
            let leg = leg_key(leg_id);
            if !c.open_legs.contains(&leg) {
                c.open_legs.push(leg);
            }
            if c.done {
                c.done = false;
                self.done.remove(&c.key);
            }
        }
    }

    /// An ended flagged leg of `call_id` waits to be written again with late messages:
    /// its call's messages are needed until [`SipBuffer::unpin`].
    pub fn pin(&mut self, call_id: &[u8]) {
        if let Some(c) = self.calls.get_mut(&call_key(call_id)) {
            c.pins = c.pins.saturating_add(1);
        }
    }

    /// The pinned leg was written again (or given up).
    pub fn unpin(&mut self, call_id: &[u8]) {
        if let Some(c) = self.calls.get_mut(&call_key(call_id)) {
            c.pins = c.pins.saturating_sub(1);
        }
        self.written(call_id);
    }

    /// A leg of `call_id` ended and was written: once no leg is open and none is pinned,
    /// the call is `done` and the first to be forgotten over budget.
    pub fn written(&mut self, call_id: &[u8]) {
        let Some(c) = self.calls.get_mut(&call_key(call_id)) else {
            return;
        };
        if c.done || !c.open_legs.is_empty() || c.pins > 0 {
            return;
        }
        c.done = true;
        if !c.msgs.is_empty() {
            self.done.insert(c.key);
        }
    }

    /// The leg ended: its call may be forgotten once idle.
    pub fn leg_closed(&mut self, call_id: &[u8], leg_id: &str) {
        if let Some(c) = self.calls.get_mut(&call_key(call_id)) {
            let leg = leg_key(leg_id);
            c.open_legs.retain(|l| *l != leg);
        }
    }

    /// Copies of the messages of these calls, in capture order.
    pub fn messages(&self, call_ids: &[&[u8]]) -> Vec<SipRow> {
        let mut out: Vec<SipRow> = Vec::new();
        let mut seen: HashSet<CallKey> = HashSet::new();
        // Only the messages of these Call-IDs: another Call-ID with the same hash shares
        // the call's list. (A message whose Call-ID cannot be read again is kept: it was
        // filed under one of these hashes.)
        let asked = |id: Option<&[u8]>| id.is_none_or(|id| call_ids.contains(&id));
        for id in call_ids {
            let key = call_key(id);
            if !seen.insert(key) {
                continue;
            }
            if let Some(c) = self.calls.get(&key) {
                if let Some(spill) = &self.spill {
                    out.extend(
                        c.spilled()
                            .iter()
                            .filter_map(|r| spill.read(r))
                            .filter(|row| asked(read_back(&row.raw).1)),
                    );
                }
                for m in &c.msgs {
                    let (line, id) = read_back(m.raw());
                    if asked(id) {
                        out.push(c.row_with(m, line));
                    }
                }
            }
        }
        out.sort_by_key(|m| m.at);
        out
    }

    /// How many messages the calls hold now (with those of any Call-ID sharing their
    /// hash: once in 2^64).
    pub fn count(&self, call_ids: &[&[u8]]) -> usize {
        let mut keys: Vec<CallKey> = call_ids.iter().map(|id| call_key(id)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter()
            .filter_map(|k| self.calls.get(k))
            .map(|c| c.msgs.len() + c.spilled().len())
            .sum()
    }

    /// Forgets idle calls as of capture time `now`.
    pub fn expire(&mut self, now: i64) {
        let mut gone = Vec::new();
        for (&(last, _), id) in &self.by_activity {
            if now - last <= IDLE_US {
                break;
            }
            let Some(c) = self.calls.get(id) else {
                continue;
            };
            if c.open_legs.is_empty() || now - last > self.max_keep_us {
                gone.push(*id);
            }
        }
        for key in gone {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: CallKey) -> usize {
        match self.calls.remove(&key) {
            Some(c) => {
                self.by_activity.remove(&c.key);
                self.resident.remove(&c.key);
                self.done.remove(&c.key);
                self.bytes -= c.bytes;
                if let Some(spill) = &mut self.spill {
                    spill.release(c.spilled());
                }
                c.msgs.len() + c.spilled().len()
            }
            None => 0,
        }
    }

    fn enforce_budget(&mut self) {
        while self.bytes > self.budget_bytes && !self.calls.is_empty() {
            // A call nothing will read goes without a trace.
            let spent = self
                .done
                .first()
                .and_then(|k| self.by_activity.get(k))
                .copied();
            if let Some(spent) = spent {
                self.remove(spent);
                continue;
            }
            // The oldest call with messages in memory and without an open leg (a bounded
            // look), else the oldest with messages in memory.
            let resident = self.resident.iter().filter_map(|k| self.by_activity.get(k));
            let victim = resident
                .clone()
                .take(256)
                .find(|id| self.calls.get(*id).is_some_and(|c| c.open_legs.is_empty()))
                .or_else(|| resident.clone().next())
                .or_else(|| self.by_activity.values().next())
                .copied();
            let Some(victim) = victim else {
                break;
            };
            if self.spill_call(victim) {
                continue;
            }
            let n = self.remove(victim);
            self.drops.messages += n as u64;
        }
    }

    /// Moves a call's messages from memory to the spill files; false when it cannot.
    fn spill_call(&mut self, key: CallKey) -> bool {
        let (Some(spill), Some(c)) = (self.spill.as_mut(), self.calls.get_mut(&key)) else {
            return false;
        };
        if c.msgs.is_empty() {
            return false;
        }
        match spill.write(&c.rows()) {
            Some(refs) => {
                let rare = c.rare_mut();
                rare.spilled.extend(refs);
                c.msgs = Vec::new();
                self.resident.remove(&c.key);
                self.done.remove(&c.key);
                self.bytes -= c.bytes;
                c.bytes = 0;
                true
            }
            None => false,
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{PayloadHint, SourceId};
    use crate::time::CaptureTime;
    use crate::wire::Transport;

    fn sip(call_id: &str, first: &str) -> Vec<u8> {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:1@a>;tag=1\r\n\
             To: <sip:8001@b>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn feed(b: &mut SipBuffer, at_s: i64, payload: &[u8]) {
        feed_at(b, CaptureTime::from_secs_micros(at_s, 0), payload);
    }

    fn feed_at(b: &mut SipBuffer, at: CaptureTime, payload: &[u8]) {
        b.on_packet(&Captured {
            at,
            source: SourceId(1),
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
            transport: Transport::Udp,
            hint: PayloadHint::Sip,
            payload,
            correlation_id: None,
        });
    }

    #[test]
    fn messages_of_a_call_come_back_in_order_and_idle_calls_go() {
        let mut b = SipBuffer::new(1 << 20, 4 * 3600 * 1_000_000);
        feed(&mut b, 10, &sip("a@x", "INVITE sip:8001@b SIP/2.0"));
        feed(&mut b, 11, &sip("b@x", "OPTIONS sip:8001@b SIP/2.0"));
        feed(&mut b, 12, &sip("a@x", "SIP/2.0 180 Ringing"));
        feed(&mut b, 12, b"\x80\x00 not sip at all, RTP");
        let m = b.messages(&[b"a@x"]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].first_line, "SIP/2.0 180 Ringing");
        b.leg_open(b"a@x", "leg-a");
        b.expire(12 + 200 * 1_000_000);
        b.expire(CaptureTime::from_secs_micros(300, 0).0);
        assert_eq!(b.calls(), 1, "the open call stays, the idle one goes");
        b.leg_closed(b"a@x", "leg-a");
        b.expire(CaptureTime::from_secs_micros(300, 0).0);
        assert_eq!(b.calls(), 0);
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn rows_carry_addresses_transport_and_the_first_line_as_captured() {
        let mut b = SipBuffer::new(1 << 20, i64::MAX);
        let mut lead = b"\r\n\r\n".to_vec();
        lead.extend(sip("r@x", "INVITE sip:8001@b SIP/2.0"));
        feed(&mut b, 1, &lead);
        b.on_packet(&Captured {
            at: CaptureTime::from_secs_micros(2, 0),
            source: SourceId(1),
            src: "[2001:db8::7]:5062".parse().unwrap(),
            dst: "10.0.0.1:5060".parse().unwrap(),
            transport: Transport::Tcp,
            hint: PayloadHint::Sip,
            payload: &sip("r@x", "SIP/2.0 180 Ringing"),
            correlation_id: None,
        });
        let m = b.messages(&[b"r@x"]);
        assert_eq!(m[0].first_line, "INVITE sip:8001@b SIP/2.0");
        assert_eq!(m[0].raw, lead);
        assert_eq!(
            (m[0].src.as_str(), m[0].dst.as_str()),
            ("10.0.0.1:5060", "10.0.0.2:5060")
        );
        assert_eq!(m[0].transport, "udp");
        assert_eq!(m[1].first_line, "SIP/2.0 180 Ringing");
        assert_eq!(m[1].src, "[2001:db8::7]:5062");
        assert_eq!(m[1].dst, "10.0.0.1:5060");
        assert_eq!(m[1].transport, "tcp");
        assert_eq!(m[1].at, CaptureTime::from_secs_micros(2, 0).0);
        // A message kept cut at MAX_MESSAGE_BYTES still has its first line.
        let mut big = sip("big@x", "MESSAGE sip:8001@b SIP/2.0");
        big.resize(MAX_MESSAGE_BYTES + 100, b'x');
        feed(&mut b, 3, &big);
        let m = b.messages(&[b"big@x"]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].first_line, "MESSAGE sip:8001@b SIP/2.0");
        assert_eq!(m[0].raw.len(), MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_call_names_its_first_255_addresses_and_every_ipv6_one() {
        let mut b = SipBuffer::new(1 << 22, i64::MAX);
        let payload = sip("many@x", "OPTIONS sip:8001@b SIP/2.0");
        let from = |i: usize| -> SocketAddr {
            if i % 100 == 7 {
                format!("[2001:db8::{i:x}]:5060").parse().unwrap()
            } else {
                format!("10.9.{}.{}:{}", i / 250, i % 250, 5000 + i)
                    .parse()
                    .unwrap()
            }
        };
        for i in 0..300 {
            b.on_packet(&Captured {
                at: CaptureTime::from_secs_micros(1, i as i64),
                source: SourceId(1),
                src: from(i),
                dst: "10.0.0.1:5060".parse().unwrap(),
                transport: Transport::Udp,
                hint: PayloadHint::Sip,
                payload: &payload,
                correlation_id: None,
            });
        }
        let m = b.messages(&[b"many@x"]);
        assert_eq!(m.len(), 300);
        // 255 addresses fit the message header: the first message's two, then 253 more
        // sources; later ones are left blank.
        for (i, row) in m.iter().enumerate() {
            assert_eq!(row.dst, "10.0.0.1:5060");
            let want = if i < 254 {
                from(i).to_string()
            } else {
                String::new()
            };
            assert_eq!(row.src, want, "message {i}");
        }
        assert_eq!(m[107].src, "[2001:db8::6b]:5060");
        assert_eq!(m[207].src, "[2001:db8::cf]:5060");
    }

    #[test]
    fn a_call_id_sharing_a_hash_with_another_reads_back_only_its_own_messages() {
        let mut b = SipBuffer::new(1 << 20, i64::MAX);
        feed(&mut b, 1, &sip("a@x", "INVITE sip:8001@b SIP/2.0"));
        // A message of b@x filed under a@x's key, as if the two Call-IDs had one hash.
        let other = sip("b@x", "INVITE sip:8002@b SIP/2.0");
        let c = b.calls.get_mut(&call_key(b"a@x")).unwrap();
        let (src, dst) = (c.addr("10.0.0.3:5060".parse().unwrap()), 0);
        c.msgs
            .push(Msg::new(2_000_000, src, dst, Transport::Udp, &other));
        let a = b.messages(&[b"a@x"]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].first_line, "INVITE sip:8001@b SIP/2.0");
        let both = b.messages(&[b"a@x", b"b@x"]);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].raw, other);
        assert_eq!(b.messages(&[b"c@x"]).len(), 0);
    }

    #[test]
    fn over_budget_the_oldest_call_without_an_open_leg_goes_first() {
        let one = sip("a@x", "INVITE sip:8001@b SIP/2.0").len() + OVERHEAD;
        let mut b = SipBuffer::new(one * 2 + 10, i64::MAX);
        feed(&mut b, 1, &sip("open@x", "INVITE sip:8001@b SIP/2.0"));
        b.leg_open(b"open@x", "l1");
        feed(&mut b, 2, &sip("idle@x", "INVITE sip:8002@b SIP/2.0"));
        feed(&mut b, 3, &sip("new@x", "INVITE sip:8003@b SIP/2.0"));
        assert_eq!(b.count(&[b"open@x"]), 1);
        assert_eq!(b.count(&[b"idle@x"]), 0);
        assert_eq!(b.take_drops().messages, 1);
    }

    #[test]
    fn over_budget_a_call_whose_legs_were_all_written_goes_first_and_uncounted() {
        // Room for three messages (the longest Call-ID below), not four.
        let one = sip("legless@x", "INVITE sip:8001@b SIP/2.0").len() + OVERHEAD;
        let mut b = SipBuffer::new(one * 3 + 10, i64::MAX);
        // Oldest: a call no leg was seen for (yet): it may still be wanted.
        feed(&mut b, 1, &sip("legless@x", "INVITE sip:8001@b SIP/2.0"));
        // A flagged leg ended and waits for late messages: pinned.
        feed(&mut b, 2, &sip("pinned@x", "INVITE sip:8002@b SIP/2.0"));
        b.leg_open(b"pinned@x", "l2");
        b.leg_closed(b"pinned@x", "l2");
        b.pin(b"pinned@x");
        b.written(b"pinned@x");
        // A leg ended and was written: nothing will read this call again.
        feed(&mut b, 3, &sip("spent@x", "INVITE sip:8003@b SIP/2.0"));
        b.leg_open(b"spent@x", "l3");
        b.leg_closed(b"spent@x", "l3");
        b.written(b"spent@x");
        feed(&mut b, 4, &sip("new@x", "INVITE sip:8004@b SIP/2.0"));
        assert_eq!(b.count(&[b"spent@x"]), 0, "the written call is forgotten");
        assert_eq!(b.count(&[b"legless@x"]), 1);
        assert_eq!(b.count(&[b"pinned@x"]), 1);
        assert_eq!(b.take_drops().messages, 0, "nothing anyone needs was lost");
        // Unpinned, the flagged leg's call is written too and goes next, before the
        // older call that never had a leg.
        b.unpin(b"pinned@x");
        feed(&mut b, 5, &sip("newer@x", "INVITE sip:8005@b SIP/2.0"));
        assert_eq!(b.count(&[b"pinned@x"]), 0);
        assert_eq!(b.count(&[b"legless@x"]), 1);
        assert_eq!(b.take_drops().messages, 0);
        // A leg opening on a written call makes it wanted again.
        feed(&mut b, 6, &sip("again@x", "INVITE sip:8006@b SIP/2.0"));
        b.leg_open(b"again@x", "l6");
        b.leg_closed(b"again@x", "l6");
        b.written(b"again@x");
        b.leg_open(b"again@x", "l7");
        feed(&mut b, 7, &sip("newest@x", "INVITE sip:8007@b SIP/2.0"));
        assert_eq!(b.count(&[b"again@x"]), 1, "an open leg keeps its call");
        // Nothing written was left to forget: the legless call and then the next
        // oldest without an open leg went, each counted.
        assert_eq!(b.count(&[b"legless@x"]), 0);
        assert_eq!(b.count(&[b"new@x"]), 0);
        assert_eq!(b.take_drops().messages, 2);
    }

    #[test]
    fn a_burst_within_a_second_after_a_spill_is_kept_whole_and_evictable() {
        let dir = std::env::temp_dir().join(format!("cw-sip-burst-{}", std::process::id()));
        let one = sip("a@x", "INVITE sip:8001@b SIP/2.0").len() + OVERHEAD;
        let mut b = SipBuffer::new(one * 2 + 10, i64::MAX)
            .with_spill(Spill::open(dir.clone(), 1 << 20).unwrap());
        let feed_ms = |b: &mut SipBuffer, ms: i64, payload: &[u8]| {
            feed_at(b, CaptureTime::from_secs_micros(5, ms * 1000), payload)
        };
        feed_ms(&mut b, 0, &sip("a@x", "INVITE sip:8001@b SIP/2.0"));
        feed_ms(&mut b, 10, &sip("b@x", "INVITE sip:8002@b SIP/2.0"));
        feed_ms(&mut b, 20, &sip("c@x", "INVITE sip:8003@b SIP/2.0"));
        assert!(b.spilled_bytes() > 0, "a@x went to disk");
        // a@x again within the same second: back in memory, under the same activity key.
        feed_ms(&mut b, 30, &sip("a@x", "SIP/2.0 180 Ringing"));
        feed_ms(&mut b, 40, &sip("d@x", "INVITE sip:8004@b SIP/2.0"));
        feed_ms(&mut b, 50, &sip("e@x", "INVITE sip:8005@b SIP/2.0"));
        assert!(
            b.bytes() <= one * 2 + 10,
            "resident calls were evicted again"
        );
        assert_eq!(b.take_drops().messages, 0);
        let lines: Vec<String> = b
            .messages(&[b"a@x"])
            .into_iter()
            .map(|m| m.first_line)
            .collect();
        assert_eq!(lines, ["INVITE sip:8001@b SIP/2.0", "SIP/2.0 180 Ringing"]);
        for id in ["a@x", "b@x", "c@x", "d@x", "e@x"] {
            assert_eq!(
                b.count(&[id.as_bytes()]),
                b.messages(&[id.as_bytes()]).len()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn over_budget_calls_spill_to_disk_and_come_back() {
        let dir = std::env::temp_dir().join(format!("cw-sip-spill-{}", std::process::id()));
        let one = sip("a@x", "INVITE sip:8001@b SIP/2.0").len() + OVERHEAD;
        let mut b = SipBuffer::new(one * 2 + 10, i64::MAX)
            .with_spill(Spill::open(dir.clone(), 1 << 20).unwrap());
        feed(&mut b, 1, &sip("old@x", "INVITE sip:8001@b SIP/2.0"));
        b.leg_open(b"old@x", "l1");
        feed(&mut b, 2, &sip("mid@x", "INVITE sip:8002@b SIP/2.0"));
        feed(&mut b, 3, &sip("new@x", "INVITE sip:8003@b SIP/2.0"));
        feed(&mut b, 4, &sip("old@x", "SIP/2.0 180 Ringing"));
        assert_eq!(b.take_drops().messages, 0, "spilled, not dropped");
        assert!(b.bytes() <= one * 2 + 10);
        assert!(b.spilled_bytes() > 0);
        let m = b.messages(&[b"old@x"]);
        let lines: Vec<&str> = m.iter().map(|m| m.first_line.as_str()).collect();
        assert_eq!(lines, ["INVITE sip:8001@b SIP/2.0", "SIP/2.0 180 Ringing"]);
        assert_eq!(m[0].raw, sip("old@x", "INVITE sip:8001@b SIP/2.0"));
        assert_eq!(b.messages(&[b"mid@x"]).len(), 1);
        // Forgetting every call frees the disk.
        b.leg_closed(b"old@x", "l1");
        b.expire(CaptureTime::from_secs_micros(1000, 0).0);
        assert_eq!(b.calls(), 0);
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert!(files <= 1, "{files} spill files left");
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
