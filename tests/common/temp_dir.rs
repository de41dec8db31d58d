//! Folders of a test's own under the system temp folder: configuration files, stores,
//! logs and captures of one test, never the repository's `data/` (tests run in parallel).
//!
//! A [`TempDir`] is created fresh and empty, named after the test, the process and a
//! counter (`callwatch-test-{name}-{pid}-{n}`), and removed when dropped, except while the
//! test is failing: then it is kept and its path printed, for the logs inside.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty folder, removed when dropped unless the test is panicking.
pub struct TempDir(Option<PathBuf>);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "callwatch-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TempDir(Some(dir))
    }

    pub fn path(&self) -> &Path {
        self.0
            .as_deref()
            .expect("a TempDir has its path until dropped")
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("test files and logs kept in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
