//! Fresh databases for the store and API tests: a SQLite file in a folder of its own, or a
//! new database on a real PostgreSQL, and [`on_both_backends!`](crate::on_both_backends)
//! to run one test body against each.
//!
//! PostgreSQL comes from `CALLWATCH_TEST_PG_URL` (`scripts/pg_test.sh CMD` sets it);
//! without it the first test starts a throwaway cluster with `scripts/pg_test.sh
//! --start`, stopped when the test process exits. A PostgreSQL test that finds no server
//! fails: the PostgreSQL half of the suite never skips.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::temp_dir::TempDir;

/// A SQLite database in a folder of its own. The folder goes when this is dropped, or
/// stays (its path printed) when the test is failing, as a [`TempDir`] does.
pub struct SqliteDb {
    pub url: String,
    _dir: TempDir,
}

/// A fresh SQLite database for test `name`; keep the [`SqliteDb`] as long as the store.
pub fn sqlite_db(name: &str) -> SqliteDb {
    let dir = TempDir::new(name);
    SqliteDb {
        url: format!("sqlite://{}/callwatch.db", dir.display()),
        _dir: dir,
    }
}

fn pg_server() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("CALLWATCH_TEST_PG_URL") {
            if !u.is_empty() {
                return Some(u);
            }
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg_test.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("--start")
            .arg(std::process::id().to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .ok()?;
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && url.starts_with("postgres://")).then_some(url)
    })
    .clone()
}

/// A new, empty PostgreSQL database for one test. Panics when no server can be had:
/// the PostgreSQL half of the suite never skips (`bash scripts/test.sh` installs it).
pub async fn pg_url(name: &str) -> String {
    let Some(server) = pg_server() else {
        panic!(
            "no PostgreSQL for the store tests: set CALLWATCH_TEST_PG_URL, or install \
             postgresql (apt-get install -y postgresql) so that scripts/pg_test.sh can start \
             a throwaway cluster"
        );
    };
    static N: AtomicU64 = AtomicU64::new(0);
    let db = format!(
        "cw_{}_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .to_lowercase();
    let admin = sqlx::PgPool::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("connecting to {server}: {e}"));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => base[..i].to_string(),
        _ => base,
    };
    format!("{base}/{db}{query}")
}

/// Runs one async test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::store_db::sqlite_db(stringify!($name));
                    super::$name(db.url.clone()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let url = $crate::common::store_db::pg_url(stringify!($name)).await;
                    super::$name(url).await;
                }
            }
        )*
    };
}
