//! Configuration: TOML files read with the `config` crate, each key overridable by
//! `CALLWATCH__SECTION__KEY` environment variables (SPEC §4), deserialised into serde
//! structs that refuse unknown keys, then checked into a [`Config`] before anything
//! starts. Every default here is the documented default of SPEC §4, so `callwatch run`
//! starts with no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::agents::{ExtensionSet, Roster};

/// A configuration that cannot be used, with the key at fault and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub agents: AgentsConfig,
    pub rules: RulesConfig,
    pub engine: EngineConfig,
    pub scorecard: ScorecardConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub time: TimeConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    pub hep_listen: String,
    pub hep_auth_key: String,
    pub interfaces: Vec<String>,
    pub bpf: String,
    /// How far each live source's clock runs behind "latest capture timestamp + wall time
    /// since" (SPEC §1): a packet captured just before a deadline but still in flight
    /// arrives before the deadline fires. Also the floor of how late a live deadline
    /// (`late_answer` while ringing) is raised. 50 ms suits a LAN; raise it for capture
    /// agents across a WAN.
    pub clock_grace_ms: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            hep_listen: "0.0.0.0:9060".into(),
            hep_auth_key: String::new(),
            interfaces: Vec::new(),
            bpf: "udp or (tcp and port 5060)".into(),
            clock_grace_ms: 50,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// Ranges (`8001-8099`) or exact user parts.
    pub extensions: Vec<String>,
    /// Optional CSV `extension,agent_id,name,team` (UTF-8 with or without BOM, or GB18030).
    pub roster: String,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            extensions: vec!["8001-8099".into()],
            roster: String::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub late_answer: LateAnswerConfig,
    pub survey: SurveyConfig,
    pub long_hold: LongHoldConfig,
    pub audio: AudioConfig,
    pub one_way_audio: OneWayAudioConfig,
    pub personal_call: PersonalCallConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateAnswerConfig {
    pub threshold_ms: u64,
}
impl Default for LateAnswerConfig {
    fn default() -> Self {
        LateAnswerConfig {
            threshold_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyConfig {
    pub uris: Vec<String>,
    pub min_talk_ms: u64,
}
impl Default for SurveyConfig {
    fn default() -> Self {
        SurveyConfig {
            uris: vec!["96000".into()],
            min_talk_ms: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongHoldConfig {
    pub threshold_ms: u64,
}
impl Default for LongHoldConfig {
    fn default() -> Self {
        LongHoldConfig {
            threshold_ms: 60_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub min_mos: f64,
    pub max_loss_pct: f64,
    /// E-model constants per codec, overriding the G.113 defaults
    /// (`[rules.audio.codecs.G729] ie = 11.0, bpl = 19.0, delay_ms = 25.0`).
    pub codecs: BTreeMap<String, CodecConstants>,
}
impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            min_mos: 3.6,
            max_loss_pct: 3.0,
            codecs: BTreeMap::new(),
        }
    }
}

/// ITU-T G.107 equipment impairment `ie`, packet-loss robustness `bpl`, and the delay
/// the codec adds (`delay_ms`), for one codec named as SDP names it (`PCMU`, `G729`,
/// `opus`...).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CodecConstants {
    pub ie: f64,
    pub bpl: f64,
    #[serde(default = "default_codec_delay_ms")]
    pub delay_ms: f64,
}

fn default_codec_delay_ms() -> f64 {
    20.0
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneWayAudioConfig {
    pub min_ms: u64,
}
impl Default for OneWayAudioConfig {
    fn default() -> Self {
        OneWayAudioConfig { min_ms: 5000 }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonalCallConfig {
    pub enabled: bool,
    pub allow: Vec<String>,
    pub queue_users: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub max_leg_ms: u64,
    pub media_timeout_ms: u64,
    pub ring_timeout_ms: u64,
    pub correlation_header: String,
}
impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_leg_ms: 14_400_000,
            media_timeout_ms: 60_000,
            ring_timeout_ms: 180_000,
            correlation_header: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScorecardConfig {
    /// Points per confirmed violation, by rule id.
    pub points: BTreeMap<String, u32>,
}
impl Default for ScorecardConfig {
    fn default() -> Self {
        let points = crate::engine::rules::RuleId::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), r.default_points()))
            .collect();
        ScorecardConfig { points }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub secret: String,
    /// How long an inspector's login lasts.
    pub session_minutes: u32,
    /// Accounts of the inspectors' API (`[[auth.users]]`, docs/inspectors.md). With
    /// none, every `/api/` route but login and `openapi.json` answers 401.
    pub users: Vec<UserConfig>,
}
impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            session_minutes: 480,
            users: Vec::new(),
        }
    }
}

/// One named account (Art. 100: no shared logins): `password_hash` is an Argon2id PHC
/// string as `callwatch hash-password` prints it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// What an account may do: viewers read masked data and scorecards, inspectors also
/// give verdicts and may see full customer numbers (audited), admins also read the
/// audit trail.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Inspector,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Inspector => "inspector",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
}
impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub url: String,
    pub retention_days: u32,
    /// The daemon's own files (store spool, generated auth secret); empty: the SQLite
    /// file's folder, else `data`.
    pub data_dir: String,
}
impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://data/callwatch.db".into(),
            retention_days: 365,
            data_dir: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    pub zone: String,
}
impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            zone: "Asia/Shanghai".into(),
        }
    }
}

/// Secrets that ship in examples and tutorials; refused even when long enough.
const KNOWN_DEFAULT_SECRETS: &[&str] = &[
    "changeme",
    "change-me",
    "secret",
    "password",
    "callwatch",
    "0123456789abcdef0123456789abcdef",
    "changeme-changeme-changeme-changeme",
    "please-change-this-secret-in-production",
];

/// A configuration that passed every check, with its derived values.
#[derive(Clone, Debug)]
pub struct Validated {
    pub raw: Config,
    pub zone: chrono_tz::Tz,
    pub extensions: ExtensionSet,
    pub roster: Roster,
}

impl Config {
    /// Reads `file` (if any) over the embedded defaults, then the `CALLWATCH__...`
    /// environment, refusing unknown keys with their name.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut builder = ::config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "{}: no such file",
                    path.display()
                )));
            }
            builder = builder.add_source(
                ::config::File::from(path.to_path_buf()).format(::config::FileFormat::Toml),
            );
        }
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CALLWATCH__"))
            .collect();
        // Set but empty is a mistake (a secret lost on the way), not "generate one".
        if env
            .get("CALLWATCH__AUTH__SECRET")
            .is_some_and(|v| v.trim().is_empty())
        {
            return Err(invalid(
                "auth.secret",
                "CALLWATCH__AUTH__SECRET is set but empty; unset it to have a secret generated",
            ));
        }
        builder = builder.add_source(
            ::config::Environment::with_prefix("CALLWATCH")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("capture.interfaces")
                .with_list_parse_key("agents.extensions")
                .with_list_parse_key("rules.survey.uris")
                .with_list_parse_key("rules.personal_call.allow")
                .with_list_parse_key("rules.personal_call.queue_users")
                .source(Some(env)),
        );
        let built = builder
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        built
            .try_deserialize::<Config>()
            .map_err(|e| ConfigError::Load(e.to_string()))
    }

    /// Checks every value and derives the typed forms. `base_dir` resolves a relative
    /// roster path (the config file's folder).
    pub fn validate(self, base_dir: Option<&Path>) -> Result<Validated, ConfigError> {
        let zone: chrono_tz::Tz = self.time.zone.parse().map_err(|_| {
            invalid(
                "time.zone",
                format!("unknown time zone {:?}", self.time.zone),
            )
        })?;
        let extensions = ExtensionSet::parse(&self.agents.extensions)
            .map_err(|reason| invalid("agents.extensions", reason))?;
        if self.agents.extensions.is_empty() {
            return Err(invalid(
                "agents.extensions",
                "at least one extension or range is needed to tell agents apart",
            ));
        }
        for (key, v) in [
            (
                "rules.late_answer.threshold_ms",
                self.rules.late_answer.threshold_ms,
            ),
            (
                "rules.long_hold.threshold_ms",
                self.rules.long_hold.threshold_ms,
            ),
            ("engine.max_leg_ms", self.engine.max_leg_ms),
            ("engine.media_timeout_ms", self.engine.media_timeout_ms),
            ("engine.ring_timeout_ms", self.engine.ring_timeout_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if self.engine.ring_timeout_ms > self.engine.max_leg_ms {
            return Err(invalid(
                "engine.ring_timeout_ms",
                "must not exceed engine.max_leg_ms",
            ));
        }
        if !(1.0..=5.0).contains(&self.rules.audio.min_mos) {
            return Err(invalid(
                "rules.audio.min_mos",
                "must be between 1.0 and 5.0",
            ));
        }
        if !(0.0..=100.0).contains(&self.rules.audio.max_loss_pct) {
            return Err(invalid(
                "rules.audio.max_loss_pct",
                "must be between 0 and 100",
            ));
        }
        for (name, c) in &self.rules.audio.codecs {
            let key = format!("rules.audio.codecs.{name}");
            if crate::engine::media::CodecId::from_encoding_name(name)
                == crate::engine::media::CodecId::Other
            {
                return Err(invalid(&key, "unknown codec name"));
            }
            if !(0.0..=100.0).contains(&c.ie) || !(1.0..=100.0).contains(&c.bpl) {
                return Err(invalid(&key, "ie must be 0-100 and bpl 1-100"));
            }
            if !(0.0..=500.0).contains(&c.delay_ms) {
                return Err(invalid(&key, "delay_ms must be 0-500"));
            }
        }
        if self.rules.survey.uris.iter().any(|u| u.trim().is_empty()) {
            return Err(invalid("rules.survey.uris", "empty survey user"));
        }
        for rule in self.scorecard.points.keys() {
            if crate::engine::rules::RuleId::from_str(rule).is_none() {
                return Err(invalid(
                    &format!("scorecard.points.{rule}"),
                    "unknown rule id",
                ));
            }
        }
        let h = &self.engine.correlation_header;
        if !h.is_empty() && !h.bytes().all(is_token_char) {
            return Err(invalid(
                "engine.correlation_header",
                format!("{h:?} is not a SIP header name"),
            ));
        }
        parse_addr("capture.hep_listen", &self.capture.hep_listen)?;
        if self.capture.clock_grace_ms > 10_000 {
            return Err(invalid(
                "capture.clock_grace_ms",
                "must be at most 10000 (a clock that far behind delays every live rule)",
            ));
        }
        check_live_capture(&self.capture)?;
        parse_addr("http.listen", &self.http.listen)?;
        check_secret(&self.auth.secret)?;
        check_users(&self.auth.users)?;
        if !(1..=10_080).contains(&self.auth.session_minutes) {
            return Err(invalid(
                "auth.session_minutes",
                "must be between 1 and 10080 (a week)",
            ));
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.store.retention_days == 0 {
            return Err(invalid("store.retention_days", "must be at least 1"));
        }
        let roster = if self.agents.roster.is_empty() {
            Roster::default()
        } else {
            let mut path = PathBuf::from(&self.agents.roster);
            if path.is_relative() {
                if let Some(base) = base_dir {
                    path = base.join(path);
                }
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                invalid(
                    "agents.roster",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Roster::from_csv_bytes(&bytes).map_err(|reason| {
                invalid("agents.roster", format!("{}: {reason}", path.display()))
            })?
        };
        Ok(Validated {
            raw: self,
            zone,
            extensions,
            roster,
        })
    }

    /// Load and validate in one step, resolving relative paths from the file's folder.
    pub fn load_validated(file: Option<&Path>) -> Result<Validated, ConfigError> {
        let base = file.and_then(|f| f.parent()).map(Path::to_path_buf);
        Config::load(file)?.validate(base.as_deref())
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_addr(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| invalid(key, format!("{v:?} is not an address:port")))
}

/// `capture.interfaces` needs a build with libpcap; with it, the names and the filter
/// are checked here (opening the interfaces is the daemon's, at start).
#[cfg(not(feature = "live-capture"))]
fn check_live_capture(c: &CaptureConfig) -> Result<(), ConfigError> {
    if c.interfaces.is_empty() {
        return Ok(());
    }
    Err(invalid(
        "capture.interfaces",
        "this build has no live capture; rebuild with \
         `cargo build --release --features live-capture` (needs libpcap-dev), \
         or leave it empty and feed callwatch with HEP",
    ))
}

/// `capture.interfaces` needs a build with libpcap; with it, the names and the filter
/// are checked here (opening the interfaces is the daemon's, at start).
#[cfg(feature = "live-capture")]
fn check_live_capture(c: &CaptureConfig) -> Result<(), ConfigError> {
    if c.interfaces.is_empty() {
        return Ok(());
    }
    crate::sources::live::check_interfaces(&c.interfaces)
        .map_err(|r| invalid("capture.interfaces", r))?;
    crate::sources::live::check_filter(&c.bpf)
        .map_err(|r| invalid("capture.bpf", format!("{:?} does not compile: {r}", c.bpf)))
}

fn check_secret(secret: &str) -> Result<(), ConfigError> {
    if secret.is_empty() {
        return Ok(());
    }
    if secret.trim().is_empty() {
        return Err(invalid(
            "auth.secret",
            "is blank; leave it empty to have one generated",
        ));
    }
    if KNOWN_DEFAULT_SECRETS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(secret.trim()))
    {
        return Err(invalid(
            "auth.secret",
            "is a known default; set a random secret",
        ));
    }
    if secret.len() < 32 {
        return Err(invalid(
            "auth.secret",
            format!("is {} bytes; at least 32 are needed", secret.len()),
        ));
    }
    Ok(())
}

/// Names unique (case-insensitively: no two people share a login), each password an
/// Argon2id PHC string.
fn check_users(users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in users.iter().enumerate() {
        let key = format!("auth.users[{i}]");
        if u.name.is_empty()
            || u.name.chars().count() > 64
            || u.name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                &format!("{key}.name"),
                "must be 1 to 64 characters without spaces",
            ));
        }
        if !seen.insert(u.name.to_lowercase()) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("{:?} is listed twice", u.name),
            ));
        }
        let ok = argon2::PasswordHash::new(&u.password_hash)
            .is_ok_and(|h| h.algorithm.as_str() == "argon2id" && h.hash.is_some());
        if !ok {
            return Err(invalid(
                &format!("{key}.password_hash"),
                "must be an Argon2id PHC string ($argon2id$...), see `callwatch hash-password`",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.rules.late_answer.threshold_ms, 10_000);
        assert_eq!(c.rules.survey.uris, vec!["96000".to_string()]);
        let v = c.validate(None).unwrap();
        assert_eq!(v.zone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MS", "8000"),
                ("CALLWATCH__HTTP__LISTEN", "127.0.0.1:9999"),
                ("CALLWATCH__AGENTS__EXTENSIONS", "7001-7010,7100"),
            ]),
        )
        .unwrap();
        assert_eq!(c.rules.late_answer.threshold_ms, 8000);
        assert_eq!(c.http.listen, "127.0.0.1:9999");
        assert_eq!(c.agents.extensions, vec!["7001-7010", "7100"]);
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("cw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(&f, "[rules.late_answer]\nthreshold_msec = 5\n").unwrap();
        let err = Config::load_with_env(Some(&f), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("threshold_msec"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn short_or_default_secret_is_refused() {
        let mut c = Config::default();
        c.auth.secret = "short".into();
        let err = c.clone().validate(None).unwrap_err().to_string();
        assert!(err.contains("auth.secret"), "{err}");
        c.auth.secret = "changeme".into();
        assert!(c.clone().validate(None).is_err());
        c.auth.secret = "x".repeat(40);
        assert!(c.validate(None).is_ok());
    }

    #[test]
    fn codec_constants_are_checked() {
        let mut c = Config::default();
        c.rules.audio.codecs.insert(
            "NOTACODEC".into(),
            CodecConstants {
                ie: 1.0,
                bpl: 10.0,
                delay_ms: 20.0,
            },
        );
        let err = c.validate(None).unwrap_err().to_string();
        assert!(err.contains("rules.audio.codecs.NOTACODEC"), "{err}");
        let mut c = Config::default();
        c.rules.audio.codecs.insert(
            "G729".into(),
            CodecConstants {
                ie: 11.0,
                bpl: 0.0,
                delay_ms: 25.0,
            },
        );
        assert!(c.validate(None).is_err());
    }

    #[cfg(not(feature = "live-capture"))]
    #[test]
    fn interfaces_are_refused_by_a_build_without_live_capture() {
        let mut c = Config::default();
        c.capture.interfaces = vec!["eth1".into()];
        let err = c.validate(None).unwrap_err().to_string();
        assert!(err.contains("capture.interfaces"), "{err}");
        assert!(err.contains("--features live-capture"), "{err}");
        assert!(err.contains("libpcap-dev"), "{err}");
    }

    #[cfg(feature = "live-capture")]
    #[test]
    fn interface_names_and_the_filter_are_checked() {
        let mut c = Config::default();
        c.capture.interfaces = vec!["eth1".into(), "eth1".into()];
        let err = c.clone().validate(None).unwrap_err().to_string();
        assert!(
            err.contains("capture.interfaces") && err.contains("twice"),
            "{err}"
        );
        c.capture.interfaces = vec![" ".into()];
        let err = c.clone().validate(None).unwrap_err().to_string();
        assert!(err.contains("capture.interfaces"), "{err}");
        c.capture.interfaces = vec!["eth1".into()];
        c.capture.bpf = "udp and port".into();
        let err = c.clone().validate(None).unwrap_err().to_string();
        assert!(
            err.contains("capture.bpf") && err.contains("syntax error"),
            "{err}"
        );
        // Only compiled: the interface itself is opened by the daemon at start.
        c.capture.bpf = "udp or (tcp and port 5060)".into();
        assert!(c.validate(None).is_ok());
    }

    #[test]
    fn an_unused_filter_is_not_checked_without_interfaces() {
        let mut c = Config::default();
        c.capture.bpf = "not a filter (".into();
        assert!(c.validate(None).is_ok());
    }

    #[test]
    fn a_clock_grace_over_ten_seconds_is_refused_with_its_key() {
        let mut c = Config::default();
        assert_eq!(c.capture.clock_grace_ms, 50);
        c.capture.clock_grace_ms = 10_001;
        let err = c.clone().validate(None).unwrap_err().to_string();
        assert!(err.contains("capture.clock_grace_ms"), "{err}");
        c.capture.clock_grace_ms = 0;
        assert!(c.validate(None).is_ok());
    }

    #[test]
    fn bad_zone_and_zero_threshold_name_their_key() {
        let mut c = Config::default();
        c.time.zone = "Mars/Olympus".into();
        assert!(c
            .validate(None)
            .unwrap_err()
            .to_string()
            .contains("time.zone"));
        let mut c = Config::default();
        c.rules.long_hold.threshold_ms = 0;
        assert!(c
            .validate(None)
            .unwrap_err()
            .to_string()
            .contains("rules.long_hold.threshold_ms"));
    }
}
