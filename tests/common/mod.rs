//! Helpers shared by the integration tests, one concern a file. A test file takes them
//! with `mod common;` and names what it uses (`common::temp_dir::TempDir`); the engine
//! test files take the SIP factory and the engine runner whole (`use common::*`).
//!
//! - [`sip_dialog`]: SIP text of one dialog between the switch and a phone;
//! - [`call_spec`]: loadgen calls between the tests' switch and phones;
//! - [`heap_count`]: what a counting-allocator region gained (the memory tests);
//! - [`engine_run`]: an engine fed by hand at explicit capture times, its events kept;
//! - [`temp_dir`]: a fresh folder of the test's own, removed unless the test fails;
//! - [`ports`]: a loopback port free on TCP and UDP alike;
//! - [`callwatch_run`]: the real `callwatch run` binary as a child, its addresses, killed
//!   when dropped;
//! - [`daemon_task`]: the daemon in-process on loopback port 0, stopped on request;
//! - [`process_group`]: SIPp, Kamailio or Prometheus in a process group of its own,
//!   stopped when dropped, and log tails;
//! - [`tools`]: whether a program is on the PATH;
//! - [`http_get`]: a blocking HTTP/1.0 GET;
//! - [`metrics_wait`]: scraping a daemon's `/metrics` until a condition holds;
//! - [`store_db`], [`store_rows`]: fresh SQLite and PostgreSQL databases, leg rows;
//! - [`contract`]: the fields of the analyze JSON line (SPEC §5);
//! - [`zone`]: a time zone where it is noon now (daily figures on the wall clock).
//!
//! Each test binary compiles all of them and uses a few, hence `dead_code` allowed here.
#![allow(dead_code)]

pub mod call_spec;
pub mod callwatch_run;
pub mod contract;
pub mod daemon_task;
pub mod engine_run;
pub mod heap_count;
pub mod http_get;
pub mod metrics_wait;
pub mod ports;
pub mod process_group;
pub mod sip_dialog;
pub mod store_db;
pub mod store_rows;
pub mod temp_dir;
pub mod tools;
pub mod zone;

// The engine test files' `use common::*`; unused in the others.
#[allow(unused_imports)]
pub use engine_run::*;
#[allow(unused_imports)]
pub use sip_dialog::*;
