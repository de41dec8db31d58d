//! External programs a test runs (SIPp, Kamailio, Prometheus): whether they are on the
//! PATH, so that a test missing one fails saying which package installs it.

use std::process::{Command, Stdio};

/// Whether `tool` is a command the shell finds on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
