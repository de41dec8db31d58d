//! Who may read the inspectors' data (Art. 97, 98, 100): named accounts from
//! `[[auth.users]]` with Argon2id password hashes, logins that return a session token
//! signed with HMAC-SHA256 under `auth.secret` and expiring after `auth.session_minutes`,
//! failed logins rate-limited per name and per client address, and the secret itself:
//! configured, or generated on first start and kept in the data folder with mode 0600.
//!
//! A token is `v1.<payload>.<mac>` (base64url): the payload names the user, the role
//! at login, when it was issued and when it expires. A token is honoured only while the
//! user is still configured with the same role, so removing an account or changing its
//! role ends its sessions at the next restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::{Role, UserConfig};

type HmacSha256 = Hmac<Sha256>;

/// The file the generated secret is kept in, inside the data folder.
pub const SECRET_FILE: &str = "auth.secret";
/// Failed logins of one name within [`WINDOW`] before it is locked for the rest of it.
pub const MAX_FAILS_PER_NAME: u32 = 5;
/// Failed logins from one client address within [`WINDOW`].
pub const MAX_FAILS_PER_CLIENT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most names and addresses the limiter remembers.
const MAX_TRACKED: usize = 10_000;

/// Why the daemon cannot have a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("auth secret file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("auth secret file {path}: {reason}")]
    Bad { path: PathBuf, reason: String },
}

/// The configured secret, else the one kept in `data_dir` (created, random, mode 0600,
/// on first start). Config validation already refused a short or default one.
pub fn load_or_create_secret(configured: &str, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    let io = |source| SecretError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim();
            if s.len() < 32 {
                return Err(SecretError::Bad {
                    path: path.clone(),
                    reason: "shorter than 32 bytes; delete it to have a new one made".into(),
                });
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(SecretError::Bad {
                        path: path.clone(),
                        reason: format!(
                            "mode {:o}: readable by others, must be 0600",
                            mode & 0o777
                        ),
                    });
                }
            }
            Ok(s.as_bytes().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| io(std::io::Error::other(e.to_string())))?;
            let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write;
            let mut f = opts.open(&path).map_err(io)?;
            f.write_all(format!("{secret}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "auth: generated a new secret");
            Ok(secret.into_bytes())
        }
        Err(e) => Err(io(e)),
    }
}

/// Art. 100: no initial or simple passwords. At least 10 characters and three kinds
/// (lower case, upper case, digits, others), or 16 characters of any kind; never a
/// well-known one.
pub fn check_password_policy(pw: &str) -> Result<(), &'static str> {
    const COMMON: &[&str] = &[
        "password",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty",
        "admin",
        "changeme",
        "callwatch",
        "welcome",
        "p@ssw0rd",
        "passw0rd",
        "000000",
        "111111",
        "abc123",
        "a123456",
        "iloveyou",
    ];
    let lower = pw.to_lowercase();
    if COMMON.iter().any(|c| lower.contains(c)) {
        return Err("contains a well-known password");
    }
    let n = pw.chars().count();
    if n < 10 {
        return Err("shorter than 10 characters");
    }
    let kinds = [
        pw.chars().any(|c| c.is_lowercase()),
        pw.chars().any(|c| c.is_uppercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds < 3 && n < 16 {
        return Err(
            "needs three of: lower case, upper case, digits, other characters (or 16 characters)",
        );
    }
    let distinct: std::collections::BTreeSet<char> = pw.chars().collect();
    if distinct.len() < 5 {
        return Err("too few distinct characters");
    }
    Ok(())
}

/// The Argon2id PHC string of `pw` (a random salt; the crate's default cost).
pub fn hash_password(pw: &str) -> Result<String, String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    pub role: Role,
    pub expires: i64,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iat: i64,
    exp: i64,
    nonce: String,
}

/// Why a login failed.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown name or wrong password (never said which).
    Invalid,
    /// Too many failures: try again after this many seconds.
    Limited(u64),
}

#[derive(Default)]
struct Fails {
    count: u32,
    since: i64,
}

/// Failed logins per name and per client, over a sliding window.
#[derive(Default)]
struct Limiter {
    names: HashMap<String, Fails>,
    clients: HashMap<IpAddr, Fails>,
}

fn window_us() -> i64 {
    WINDOW.as_micros() as i64
}

fn blocked(f: Option<&Fails>, max: u32, now: i64) -> Option<u64> {
    let f = f?;
    let end = f.since + window_us();
    (f.count >= max && now < end).then(|| ((end - now) / 1_000_000).max(1) as u64)
}

fn bump<K: std::hash::Hash + Eq + Clone>(m: &mut HashMap<K, Fails>, k: &K, now: i64) {
    if m.len() >= MAX_TRACKED && !m.contains_key(k) {
        m.retain(|_, f| now < f.since + window_us());
        if m.len() >= MAX_TRACKED {
            // Still full of live entries: forget the oldest.
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
    }
    let f = m.entry(k.clone()).or_default();
    if now >= f.since + window_us() {
        *f = Fails {
            count: 0,
            since: now,
        };
    }
    f.count += 1;
}

/// Accounts, the signing key and the login limiter.
pub struct Auth {
    secret: Vec<u8>,
    users: HashMap<String, UserConfig>,
    ttl_us: i64,
    limiter: Mutex<Limiter>,
    /// Verified against when the name is unknown, so both cases take as long.
    dummy_hash: String,
}

impl Auth {
    pub fn new(secret: Vec<u8>, users: &[UserConfig], session_minutes: u32) -> Auth {
        Auth {
            secret,
            users: users
                .iter()
                .map(|u| (u.name.to_lowercase(), u.clone()))
                .collect(),
            ttl_us: i64::from(session_minutes) * 60 * 1_000_000,
            limiter: Mutex::new(Limiter::default()),
            dummy_hash: hash_password("callwatch-dummy-password-for-timing").unwrap_or_default(),
        }
    }

    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(data);
        m
    }

    /// A signed token for `name` with `role`, valid from `now` (µs) for the session
    /// length; returns it with its expiry.
    pub fn issue(&self, name: &str, role: Role, now: i64) -> (String, i64) {
        let mut nonce = [0u8; 12];
        let _ = getrandom::fill(&mut nonce);
        let claims = Claims {
            sub: name.to_string(),
            role,
            iat: now,
            exp: now + self.ttl_us,
            nonce: B64.encode(nonce),
        };
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("v1.{payload}");
        let mac = B64.encode(self.mac(signed.as_bytes()).finalize().into_bytes());
        (format!("{signed}.{mac}"), claims.exp)
    }

    /// The session a token stands for at `now`, if it is genuine, unexpired and its user
    /// still has that role.
    pub fn verify(&self, token: &str, now: i64) -> Option<Session> {
        let (signed, mac) = token.rsplit_once('.')?;
        let payload = signed.strip_prefix("v1.")?;
        let mac = B64.decode(mac).ok()?;
        self.mac(signed.as_bytes()).verify_slice(&mac).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        if now >= claims.exp {
            return None;
        }
        let user = self.users.get(&claims.sub.to_lowercase())?;
        (user.role == claims.role && user.name == claims.sub).then(|| Session {
            name: user.name.clone(),
            role: user.role,
            expires: claims.exp,
        })
    }

    /// Checks a name and password (Argon2 on a blocking thread), with the limiter.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client: Option<IpAddr>,
        now: i64,
    ) -> Result<Session, LoginError> {
        let key = name.to_lowercase();
        if let Ok(l) = self.limiter.lock() {
            let by_name = blocked(l.names.get(&key), MAX_FAILS_PER_NAME, now);
            let by_client =
                client.and_then(|c| blocked(l.clients.get(&c), MAX_FAILS_PER_CLIENT, now));
            if let Some(wait) = by_name.max(by_client) {
                return Err(LoginError::Limited(wait));
            }
        }
        let user = self.users.get(&key).cloned();
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false);
        match user {
            Some(u) if ok => {
                if let Ok(mut l) = self.limiter.lock() {
                    l.names.remove(&key);
                }
                Ok(Session {
                    name: u.name,
                    role: u.role,
                    expires: now + self.ttl_us,
                })
            }
            _ => {
                if let Ok(mut l) = self.limiter.lock() {
                    bump(&mut l.names, &key, now);
                    if let Some(c) = client {
                        bump(&mut l.clients, &c, now);
                    }
                }
                Err(LoginError::Invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, pw: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            role,
            password_hash: hash_password(pw).unwrap(),
        }
    }

    #[test]
    fn tokens_are_signed_expire_and_follow_the_configured_role() {
        let users = [user("zhang", Role::Inspector, "Quality-2026!")];
        let a = Auth::new(vec![7; 32], &users, 60);
        let (t, exp) = a.issue("zhang", Role::Inspector, 1_000);
        assert_eq!(exp, 1_000 + 3_600_000_000);
        assert_eq!(a.verify(&t, 2_000).unwrap().role, Role::Inspector);
        assert!(a.verify(&t, exp).is_none(), "expired");
        // Another secret, a forged role, a tampered payload.
        assert!(Auth::new(vec![8; 32], &users, 60)
            .verify(&t, 2_000)
            .is_none());
        let (forged, _) = a.issue("zhang", Role::Admin, 1_000);
        assert!(
            a.verify(&forged, 2_000).is_none(),
            "role differs from the config"
        );
        let mut bad = t.clone().into_bytes();
        bad[5] ^= 1;
        assert!(a.verify(&String::from_utf8(bad).unwrap(), 2_000).is_none());
        assert!(a.verify("garbage", 2_000).is_none());
    }

    #[tokio::test]
    async fn failed_logins_lock_the_name_for_the_window() {
        let a = Auth::new(
            vec![7; 32],
            &[user("li", Role::Viewer, "Quality-2026!")],
            60,
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(a.login("li", "Quality-2026!", Some(ip), 0).await.is_ok());
        for _ in 0..MAX_FAILS_PER_NAME {
            assert_eq!(
                a.login("li", "wrong", Some(ip), 10).await,
                Err(LoginError::Invalid)
            );
        }
        assert!(matches!(
            a.login("li", "Quality-2026!", Some(ip), 20).await,
            Err(LoginError::Limited(_))
        ));
        let later = window_us() + 100;
        assert!(a
            .login("LI", "Quality-2026!", Some(ip), later)
            .await
            .is_ok());
    }

    #[test]
    fn simple_passwords_are_refused() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("password2026!").is_err());
        assert!(check_password_policy("aaaaaaaaaaaaaaaaaa").is_err());
        assert!(check_password_policy("alllowercaseletters").is_ok());
        assert!(check_password_policy("Quality-2026!").is_ok());
    }

    #[test]
    fn a_generated_secret_is_private_and_reused() {
        let d = std::env::temp_dir().join(format!("cw-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s1 = load_or_create_secret("", &d).unwrap();
        assert_eq!(s1.len(), 64);
        let s2 = load_or_create_secret("", &d).unwrap();
        assert_eq!(s1, s2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(d.join(SECRET_FILE), std::fs::Permissions::from_mode(0o644))
                .unwrap();
            assert!(
                load_or_create_secret("", &d).is_err(),
                "a readable secret is refused"
            );
        }
        let configured = "k".repeat(40);
        assert_eq!(
            load_or_create_secret(&configured, &d).unwrap(),
            configured.as_bytes()
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
