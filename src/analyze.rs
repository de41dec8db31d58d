//! `callwatch analyze`: capture files → decoder → engine → one JSON line (or table row)
//! per agent leg in the order the legs end, and a summary on stderr. The same engine as
//! the daemon, driven by the files' own timestamps; no deadline fires after the last
//! packet (SPEC §3).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::config::Validated;
use crate::engine::{Captured, Engine, EngineSettings, Event, LegRecord, PayloadHint, SourceId};
use crate::report::Renderer;
use crate::sources::pcap_file::read_captures;
use crate::time::{CaptureTime, Micros};
use crate::wire::decode::{DecodeLimits, Decoder};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Table,
}

pub struct Options {
    pub files: Vec<PathBuf>,
    pub format: Format,
    pub show_numbers: bool,
    /// Draw a progress line on stderr (big files, stderr a terminal).
    pub progress: bool,
}

/// What the run found, for the summary and the exit status.
#[derive(Debug, Default)]
pub struct Outcome {
    pub legs: u64,
    /// 0 every file read to its end, 1 a file truncated or corrupt part-way, 2 a file
    /// that is not a capture or cannot be opened.
    pub exit_code: u8,
}

/// Runs the analysis, writing records to `out` and the summary to `err`.
pub fn run(
    cfg: &Validated,
    opts: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<Outcome> {
    let renderer = Renderer {
        zone: cfg.zone,
        show_numbers: opts.show_numbers,
    };
    let mut engine = Engine::new(EngineSettings::from_config(cfg));
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut legs = 0u64;
    let mut frames = 0u64;
    let mut write_error: Option<std::io::Error> = None;
    if opts.format == Format::Table {
        writeln!(out, "{}", renderer.table_header())?;
    }
    let mut order = EndOrder::default();
    // Moves ended legs from the engine to the reorder buffer, then prints those whose
    // end lies more than the settling window before `now` (all of them when None).
    let emit = |engine: &mut Engine,
                order: &mut EndOrder,
                out: &mut dyn Write,
                legs: &mut u64,
                now: Option<CaptureTime>|
     -> std::io::Result<()> {
        while let Some(ev) = engine.poll_event() {
            if let Event::LegEnded { leg, .. } = ev {
                order.push(leg);
            }
        }
        while let Some(leg) = order.pop_settled(now) {
            *legs += 1;
            match opts.format {
                Format::Json => writeln!(out, "{}", renderer.json_line(&leg))?,
                Format::Table => writeln!(out, "{}", renderer.table_row(&leg))?,
            }
        }
        Ok(())
    };
    let mut last_pct = u64::MAX;
    let report = read_captures(
        &opts.files,
        &mut |frame| {
            frames += 1;
            decoder.decode(frame.link, frame.at, frame.data, &mut |d| {
                engine.handle_packet(&Captured {
                    at: frame.at,
                    source: SourceId(0),
                    src: d.src,
                    dst: d.dst,
                    transport: d.transport,
                    hint: PayloadHint::Unknown,
                    payload: d.payload,
                    correlation_id: None,
                });
            });
            // Most frames end no leg and settle none: no call for them.
            let now = Some(frame.at);
            if write_error.is_none() && (engine.has_events() || order.any_settled(now)) {
                if let Err(e) = emit(&mut engine, &mut order, out, &mut legs, now) {
                    write_error = Some(e);
                }
            }
        },
        &mut |done, total| {
            if opts.progress && total > 0 {
                let pct = done.saturating_mul(100) / total;
                if pct != last_pct {
                    last_pct = pct;
                    let bar = "#".repeat((pct / 4) as usize);
                    let _ = write!(err, "\r[{bar:<25}] {pct:>3}% {} MB", done >> 20);
                }
            }
        },
    );
    if opts.progress && last_pct != u64::MAX {
        writeln!(err)?;
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    engine.finish();
    emit(&mut engine, &mut order, out, &mut legs, None)?;
    out.flush()?;

    for (path, outcome) in &report.files {
        if let Some(m) = outcome.describe(path) {
            writeln!(err, "callwatch: {m}")?;
        }
    }
    for u in &report.unsupported_links {
        if let Some(path) = opts.files.get(u.file) {
            writeln!(
                err,
                "callwatch: {}: {} frames of link type {} skipped (not supported)",
                path.display(),
                u.frames,
                u.linktype
            )?;
        }
    }
    let exit_code = report.exit_code();

    let s = engine.stats();
    let mut violations: Vec<String> = s
        .violations
        .iter()
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect();
    if violations.is_empty() {
        violations.push("none".into());
    }
    let mut errors: Vec<String> = s
        .errors
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .chain(
            decoder
                .counters()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{} {n}", k.as_str())),
        )
        .collect();
    if errors.is_empty() {
        errors.push("none".into());
    }
    writeln!(
        err,
        "callwatch: {legs} agent legs; violations: {}; {frames} frames, {} SIP messages; errors: {}",
        violations.join(", "),
        s.sip_messages,
        errors.join(", ")
    )?;
    Ok(Outcome { legs, exit_code })
}

/// The engine reports a leg when its end is settled, which for a few endings comes
/// after the end itself (a BYE waits up to 4 s for its response or a crossing BYE, a
/// CANCEL up to 32 s for the 487). `analyze` prints legs in the order they ended (SPEC
/// §5), so records wait here until the capture has moved past their end by more than
/// the longest settling delay. Legs still open at the end of input come last.
#[derive(Default)]
struct EndOrder {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

/// The longest time between a leg's end and its report (the CANCEL grace), plus margin.
const SETTLE_WINDOW: Micros = Micros::from_millis(33_000);

struct Pending {
    end: i64,
    seq: u64,
    leg: Box<LegRecord>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.end, self.seq) == (o.end, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.end, self.seq).cmp(&(o.end, o.seq))
    }
}

impl EndOrder {
    fn push(&mut self, leg: Box<LegRecord>) {
        let end = leg.ended_at.map_or(i64::MAX, |t| t.0);
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            end,
            seq: self.seq,
            leg,
        }));
    }

    /// Whether a leg ended more than the window before `now` (any leg, if None).
    fn any_settled(&self, now: Option<CaptureTime>) -> bool {
        let Some(Reverse(top)) = self.heap.peek() else {
            return false;
        };
        match now {
            None => true,
            Some(now) => top.end < i64::MAX && CaptureTime(top.end) + SETTLE_WINDOW < now,
        }
    }

    /// The next leg to print: ended more than the window before `now` (any, if None).
    fn pop_settled(&mut self, now: Option<CaptureTime>) -> Option<Box<LegRecord>> {
        if self.any_settled(now) {
            self.heap.pop().map(|Reverse(p)| p.leg)
        } else {
            None
        }
    }
}

/// JSON when stdout is not a terminal, a table when it is (SPEC §5).
pub fn default_format() -> Format {
    if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    }
}
