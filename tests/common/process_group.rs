//! Programs a test starts beside the daemon (SIPp, Kamailio, Prometheus), each in a
//! process group of its own with its output in a log file, and stopped when the guard is
//! dropped, also on a panic: SIGTERM to the whole group (a `timeout sipp` wrapper and its
//! child alike), then SIGKILL after 3 s if anything is left.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A process group we started; TERM, then KILL, when dropped.
pub struct ProcessGroup {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ProcessGroup {
    /// Starts `cmd` as the leader of a new process group, stdin empty, stdout and stderr
    /// into `log` (created anew).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> ProcessGroup {
        let out = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ProcessGroup {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        }
    }

    /// Waits for the process to exit by itself, `limit` at most; its exit status.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, limit)
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last 30 lines of the log, named, for a failure message.
    pub fn log_tail(&self) -> String {
        format!("({}) {}", self.name, log_tail(&self.log, 30))
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.exited() {
            return;
        }
        self.signal_group("-TERM");
        if self.wait(Duration::from_secs(3)).is_none() {
            self.signal_group("-KILL");
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` to exit by itself, `limit` at most (polled every 25 ms); its exit
/// status.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// The last `lines` lines of a log file under a header naming it (empty when the file
/// cannot be read), for a failure message.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    format!(
        "--- last lines of {}:\n{}\n",
        path.display(),
        last_lines(&text, lines)
    )
}

/// The last `lines` lines of `text`.
pub fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
