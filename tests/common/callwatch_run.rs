//! The real `callwatch run` binary as a child of a test: started on a configuration file
//! with its output (stdout and stderr) appended to a log file, so that it never blocks on
//! a full pipe and a restart on the same folder keeps the earlier run's lines; the
//! addresses it listens on read from the line it prints once bound,
//! `callwatch: HEP on 127.0.0.1:P (UDP and TCP), metrics on http://127.0.0.1:Q/metrics`;
//! killed (SIGKILL) and reaped when dropped, also on a panic, when the last lines of its
//! log are printed before its folder goes.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::http_get::http_get;
use super::process_group::{last_lines, wait_exit};

/// A `callwatch run` child, killed when dropped.
pub struct CallwatchRun {
    child: Child,
    log: PathBuf,
    /// Where this run's output starts in `log`.
    from: usize,
}

/// The addresses a daemon printed once bound.
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    pub hep: SocketAddr,
    pub http: SocketAddr,
}

impl CallwatchRun {
    /// `callwatch run --config CONFIG` with `RUST_LOG=rust_log`, its output appended to
    /// `log`. Returns at once: see [`CallwatchRun::listening`].
    pub fn start(config: &Path, rust_log: &str, log: &Path) -> CallwatchRun {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let from = out.metadata().map_or(0, |m| m.len() as usize);
        let child = Command::new(env!("CARGO_BIN_EXE_callwatch"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting callwatch run");
        CallwatchRun {
            child,
            log: log.to_path_buf(),
            from,
        }
    }

    /// Everything this run has written so far.
    pub fn output(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(all.get(self.from..).unwrap_or_default()).into_owned()
    }

    /// The last `lines` lines this run wrote, under a header naming the log.
    pub fn output_tail(&self, lines: usize) -> String {
        format!(
            "--- last lines of callwatch run ({}):\n{}\n",
            self.log.display(),
            last_lines(&self.output(), lines)
        )
    }

    /// The addresses from the daemon's "callwatch: HEP on …" line, waiting `limit` at most
    /// for it; why not when the daemon exits first or the limit passes.
    pub fn try_listening(&mut self, limit: Duration) -> Result<Listening, String> {
        let end = Instant::now() + limit;
        loop {
            let text = self.output();
            if let Some(found) = text.lines().find_map(parse_listening) {
                return Ok(found);
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                return Err(format!(
                    "callwatch run exited with {s} before listening\n{}",
                    self.output()
                ));
            }
            if Instant::now() >= end {
                return Err(format!(
                    "callwatch run did not print its addresses within {limit:?}\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// As [`CallwatchRun::try_listening`], failing the test when the daemon does not listen.
    pub fn listening(&mut self, limit: Duration) -> Listening {
        self.try_listening(limit)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Polls `GET /readyz` on `http` every 100 ms until it answers 200; fails the test
    /// when the daemon exits or `deadline` passes first.
    pub fn wait_ready(&mut self, http: SocketAddr, deadline: Instant) {
        while !matches!(http_get(http, "/readyz", &[]), Ok((200, _))) {
            assert!(
                !self.exited() && Instant::now() < deadline,
                "callwatch never became ready\n{}",
                self.output_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, then reap: no shutdown path of the daemon runs.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL to callwatch run");
        self.child.wait().expect("reaping callwatch run");
    }

    /// Waits for the daemon to exit by itself, `limit` at most; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, limit)
    }

    /// SIGTERM (the daemon's orderly shutdown), then waits `limit` at most for the exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "SIGTERM to callwatch run {}", self.child.id());
        self.wait_exit(limit)
    }
}

impl Drop for CallwatchRun {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.output_tail(40));
        }
    }
}

/// The addresses in "callwatch: HEP on H (UDP and TCP), metrics on http://A/metrics".
fn parse_listening(line: &str) -> Option<Listening> {
    let rest = line.strip_prefix("callwatch: HEP on ")?;
    let hep = rest.split_whitespace().next()?.parse().ok()?;
    let http = rest
        .split("http://")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    Some(Listening { hep, http })
}
