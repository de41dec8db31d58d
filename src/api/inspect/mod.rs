//! The quality inspectors' side of the HTTP server (SPEC §7): the REST API under `/api/`
//! (described by `/api/openapi.json`), its authentication ([`auth`]), the CSV exports
//! ([`csv`]) and the embedded inspector pages under `/inspect/` ([`pages`]).
//!
//! Input: requests, and the store ([`crate::store`]) the store sink fills. Every `/api/`
//! route but `POST /api/login` and `GET /api/openapi.json` needs a bearer token from
//! login; without configured users none can be had, so they all answer 401. Viewers read
//! masked data and scorecards; inspectors also give verdicts and may ask for full
//! customer numbers (each such view is written to the audit trail); admins also read the
//! audit trail. Request bodies are capped at [`MAX_BODY`].

pub mod auth;
pub mod csv;
pub mod pages;
pub mod view;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, TimeZone};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{Role, Validated};
use crate::engine::rules::RuleId;
use crate::store::query::{
    AuditFilter, AuditNew, Cursor, LegFilter, Verdict, VerdictFilter, COUNT_CAP,
};
use crate::store::{wall_micros, Store, StoreError};
use auth::{Auth, LoginError, Session};
use view::LegView;

/// Largest request body accepted (a verdict with its reason, a login).
pub const MAX_BODY: usize = 16 * 1024;
/// Most list items per page.
pub const MAX_PER_PAGE: i64 = 500;
/// Longest verdict reason, in characters.
pub const MAX_REASON: usize = 2000;

/// The OpenAPI 3.1 description served at `/api/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// What the handlers share.
pub struct Inspect {
    pub store: Store,
    pub auth: Auth,
    pub zone: chrono_tz::Tz,
    /// `scorecard.points`: points per confirmed violation, by rule id.
    pub points: BTreeMap<String, u32>,
    /// `rules.late_answer.threshold_ms`, for the service level.
    pub late_answer_ms: u64,
}

impl Inspect {
    /// From the configuration: the secret is the configured one or the one kept in the
    /// data folder (made on first start).
    pub fn from_config(cfg: &Validated, store: Store) -> Result<Inspect, auth::SecretError> {
        let data = crate::sinks::store::data_dir(cfg);
        let secret = auth::load_or_create_secret(&cfg.raw.auth.secret, &data)?;
        if cfg.raw.auth.users.is_empty() {
            tracing::warn!(
                "auth: no [[auth.users]] configured: every /api/ route answers 401 \
                 (see docs/inspectors.md)"
            );
        }
        Ok(Inspect {
            store,
            auth: Auth::new(secret, &cfg.raw.auth.users, cfg.raw.auth.session_minutes),
            zone: cfg.zone,
            points: cfg.raw.scorecard.points.clone(),
            late_answer_ms: cfg.raw.rules.late_answer.threshold_ms,
        })
    }

    fn points_of(&self, rule: &str) -> i64 {
        self.points.get(rule).copied().map_or_else(
            || RuleId::from_str(rule).map_or(1, |r| i64::from(r.default_points())),
            i64::from,
        )
    }
}

type Shared = Arc<Inspect>;

/// The inspectors' routes, to merge into the daemon's router. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so failed logins are limited
/// per client address too.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/login", post(login))
        .route("/api/me", get(me))
        .route("/api/legs", get(list_legs))
        .route("/api/legs.csv", get(legs_csv))
        .route("/api/legs/{leg_id}", get(get_leg))
        .route("/api/legs/{leg_id}/verdict", post(post_verdict))
        .route("/api/audit", get(list_audit))
        .route("/api/scorecards", get(scorecards))
        .route("/api/scorecards.csv", get(scorecards_csv))
        .route("/api/{*rest}", axum::routing::any(unknown_api))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    api.merge(pages::router())
}

/// An API error: a status and a JSON `{"error": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")
    }
    fn forbidden(need: Role) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("needs the {} role", need.as_str()),
        )
    }
    fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::not_found("leg"),
            StoreError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            e => {
                tracing::warn!("api: store error: {e}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": self.message}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

impl FromRequestParts<Shared> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Session, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        s.auth
            .verify(token, wall_micros())
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The client's address, when the server was started with connection info.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn require(s: &Session, role: Role) -> Result<(), ApiError> {
    if s.role >= role {
        Ok(())
    } else {
        Err(ApiError::forbidden(role))
    }
}

/// Query values as strings, so a bad one gets our message rather than axum's.
type Params = Query<BTreeMap<String, String>>;

fn param<'a>(q: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn known_params(q: &BTreeMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(format!("unknown parameter {k:?}"))),
        None => Ok(()),
    }
}

fn flag(q: &BTreeMap<String, String>, k: &str) -> Result<bool, ApiError> {
    match param(q, k) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(v) => Err(ApiError::bad(format!("{k}: {v:?} is not true or false"))),
    }
}

fn paging(q: &BTreeMap<String, String>) -> Result<(i64, i64, i64), ApiError> {
    let num = |k: &str, d: i64| -> Result<i64, ApiError> {
        match param(q, k) {
            None => Ok(d),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| ApiError::bad(format!("{k}: {v:?} is not a number"))),
        }
    };
    let page = num("page", 1)?;
    let per_page = num("per_page", 50)?;
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::bad("page: must be 1 or more"));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad(format!(
            "per_page: must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    Ok((page, per_page, (page - 1) * per_page))
}

/// An RFC 3339 time, or a date (midnight in `zone`), as capture microseconds.
fn parse_time(zone: chrono_tz::Tz, k: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(t) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|n| zone.from_local_datetime(&n).earliest())
        {
            return Ok(t.timestamp_micros());
        }
    }
    Err(ApiError::bad(format!(
        "{k}: {v:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"
    )))
}

fn leg_filter(s: &Inspect, q: &BTreeMap<String, String>) -> Result<LegFilter, ApiError> {
    let rule = match param(q, "rule") {
        Some(r) if RuleId::from_str(r).is_none() => {
            return Err(ApiError::bad(format!("rule: unknown rule id {r:?}")))
        }
        r => r.map(String::from),
    };
    let verdict = match param(q, "verdict") {
        None => None,
        Some("pending") => Some(VerdictFilter::Pending),
        Some(v) => Some(VerdictFilter::Is(Verdict::parse(v).ok_or_else(|| {
            ApiError::bad(format!(
                "verdict: {v:?} is not pending, confirmed or dismissed"
            ))
        })?)),
    };
    let from = param(q, "from")
        .map(|v| parse_time(s.zone, "from", v))
        .transpose()?;
    let to = param(q, "to")
        .map(|v| parse_time(s.zone, "to", v))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::bad("from: must be before to"));
        }
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match param(q, k) {
            Some(v) if v.chars().count() > 256 => Err(ApiError::bad(format!("{k}: too long"))),
            v => Ok(v.map(String::from)),
        }
    };
    let (page, per_page, offset) = paging(q)?;
    if offset > MAX_LIST_OFFSET {
        return Err(ApiError::bad(format!(
            "page: {page} × per_page {per_page} skips more than {MAX_LIST_OFFSET} legs; \
             follow the response's `next` with cursor= for deeper pages, or order=asc \
             for the oldest"
        )));
    }
    let asc = match param(q, "order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(v) => return Err(ApiError::bad(format!("order: {v:?} is not asc or desc"))),
    };
    let after = match param(q, "cursor") {
        None => None,
        Some(c) => {
            let c = Cursor::decode(c)
                .ok_or_else(|| ApiError::bad("cursor: not a token from a `next` of this list"))?;
            if c.asc != asc {
                return Err(ApiError::bad(
                    "cursor: made for the other order; send the same order= as its list",
                ));
            }
            if page != 1 {
                return Err(ApiError::bad(
                    "cursor: not with page (the cursor is the page)",
                ));
            }
            Some(c)
        }
    };
    Ok(LegFilter {
        asc,
        after,
        rule,
        agent: text("agent")?,
        team: text("team")?,
        from,
        to,
        verdict,
        call_id: text("call_id")?,
        all: flag(q, "all")?,
        offset,
        limit: per_page,
    })
}

const LEG_PARAMS: &[&str] = &[
    "rule", "agent", "team", "from", "to", "verdict", "call_id", "all", "page", "per_page",
    "cursor", "order",
];

/// Most legs `page` may skip (offset pages scan what they skip); deeper pages follow
/// the keyset `next` cursor.
const MAX_LIST_OFFSET: i64 = 10_000;

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    name: String,
    password: String,
}

async fn login(
    State(s): State<Shared>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let now = wall_micros();
    // Names are printed into logs: keep them short and printable.
    let shown: String = b
        .name
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let client_s = client.map_or("-".to_string(), |c| c.to_string());
    match s.auth.login(&b.name, &b.password, client, now).await {
        Ok(session) => {
            let (token, exp) = s.auth.issue(&session.name, session.role, now);
            tracing::info!(user = %session.name, client = %client_s, "login");
            let _ = s
                .store
                .audit(&AuditNew {
                    at: now,
                    username: session.name.clone(),
                    action: "login".into(),
                    detail: Some(format!("client {client_s}")),
                    ..AuditNew::default()
                })
                .await;
            Ok(Json(json!({
                "token": token,
                "expires_at": view::time(s.zone, exp),
                "name": session.name,
                "role": session.role.as_str(),
            })))
        }
        Err(LoginError::Invalid) => {
            tracing::warn!(user = %shown, client = %client_s, "failed login");
            let _ = s
                .store
                .audit(&AuditNew {
                    at: now,
                    username: shown,
                    action: "login_failed".into(),
                    detail: Some(format!("client {client_s}")),
                    ..AuditNew::default()
                })
                .await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid name or password",
            ))
        }
        Err(LoginError::Limited(wait)) => {
            tracing::warn!(user = %shown, client = %client_s, "login refused: too many failures");
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins; try again in {wait} s"),
            );
            e.retry_after = Some(wait);
            Err(e)
        }
    }
}

async fn me(session: Session, State(s): State<Shared>) -> Json<Value> {
    Json(json!({
        "name": session.name,
        "role": session.role.as_str(),
        "expires_at": view::time(s.zone, session.expires),
        "can_review": session.role >= Role::Inspector,
        "can_see_numbers": session.role >= Role::Inspector,
        "can_read_audit": session.role >= Role::Admin,
    }))
}

async fn list_legs(
    _session: Session,
    State(s): State<Shared>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    known_params(&q, LEG_PARAMS)?;
    let f = leg_filter(&s, &q)?;
    let (page, per_page, _) = paging(&q)?;
    let p = s.store.list_legs(&f).await?;
    let v = LegView {
        zone: s.zone,
        full: false,
    };
    Ok(Json(json!({
        "page": page,
        "per_page": per_page,
        "total": p.total,
        "total_exact": p.total_exact,
        "total_capped_at": COUNT_CAP,
        "order": if f.asc { "asc" } else { "desc" },
        "next": p.next.as_ref().map(Cursor::encode),
        "items": p.items.iter().map(|l| v.summary(l)).collect::<Vec<_>>(),
    })))
}

async fn get_leg(
    session: Session,
    State(s): State<Shared>,
    Path(leg_id): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    known_params(&q, &["show_numbers"])?;
    let full = flag(&q, "show_numbers")?;
    if full {
        require(&session, Role::Inspector)?;
    }
    let Some(leg) = s.store.get_leg(&leg_id).await? else {
        return Err(ApiError::not_found("leg"));
    };
    let sip = s.store.sip_messages(&leg_id).await?;
    if full {
        // Audited before anything is shown.
        s.store
            .audit(&AuditNew {
                at: wall_micros(),
                username: session.name.clone(),
                action: "view_numbers".into(),
                leg_id: Some(leg_id.clone()),
                ..AuditNew::default()
            })
            .await?;
    }
    let v = LegView { zone: s.zone, full };
    let mut out = v.summary(&leg);
    if let Value::Object(m) = &mut out {
        m.insert("timeline".into(), v.timeline(&leg));
        m.insert("sip".into(), v.ladder(&sip, leg.leg.invite_at));
        m.insert("numbers_shown".into(), json!(full));
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    rule: Option<String>,
}

async fn post_verdict(
    session: Session,
    State(s): State<Shared>,
    Path(leg_id): Path<String>,
    body: Result<Json<VerdictBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&session, Role::Inspector)?;
    let Json(b) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let verdict = Verdict::parse(&b.verdict).ok_or_else(|| {
        ApiError::bad(format!(
            "verdict: {:?} is not confirmed or dismissed",
            b.verdict
        ))
    })?;
    let reason = b.reason.trim();
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad(format!(
            "reason: at most {MAX_REASON} characters"
        )));
    }
    if verdict == Verdict::Dismissed && reason.is_empty() {
        return Err(ApiError::bad(
            "reason: a dismissal needs a reason (e.g. Art. 65 harassing caller)",
        ));
    }
    if let Some(r) = &b.rule {
        if RuleId::from_str(r).is_none() {
            return Err(ApiError::bad(format!("rule: unknown rule id {r:?}")));
        }
    }
    let points = |r: &str| s.points_of(r);
    let reviews = s
        .store
        .set_verdict(
            &leg_id,
            b.rule.as_deref(),
            verdict,
            reason,
            &points,
            &session.name,
            wall_micros(),
        )
        .await?;
    tracing::info!(user = %session.name, leg_id = %leg_id, verdict = verdict.as_str(), "verdict");
    Ok(Json(json!({
        "leg_id": leg_id,
        "reviews": reviews.iter().map(|r| json!({
            "rule": r.rule, "verdict": r.verdict, "reason": r.reason, "points": r.points,
            "reviewer": r.reviewer, "at": view::time(s.zone, r.at),
        })).collect::<Vec<_>>(),
    })))
}

async fn list_audit(
    session: Session,
    State(s): State<Shared>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    require(&session, Role::Admin)?;
    known_params(&q, &["leg_id", "user", "action", "page", "per_page"])?;
    let (page, per_page, offset) = paging(&q)?;
    let p = s
        .store
        .list_audit(&AuditFilter {
            leg_id: param(&q, "leg_id").map(String::from),
            username: param(&q, "user").map(String::from),
            action: param(&q, "action").map(String::from),
            offset,
            limit: per_page,
        })
        .await?;
    Ok(Json(json!({
        "page": page,
        "per_page": per_page,
        "total": p.total,
        "items": p.items.iter().map(|e| json!({
            "id": e.id, "at": view::time(s.zone, e.at), "user": e.username,
            "action": e.action, "leg_id": e.leg_id, "rule": e.rule, "verdict": e.verdict,
            "reason": e.reason, "detail": e.detail,
        })).collect::<Vec<_>>(),
    })))
}

/// A quarter of the calendar in `zone`: "2026Q4".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    pub q: u32,
}

impl Quarter {
    pub fn parse(s: &str) -> Option<Quarter> {
        let (y, q) = s.split_once(['Q', 'q'])?;
        let year: i32 = y.parse().ok()?;
        let q: u32 = q.parse().ok()?;
        ((1..=4).contains(&q) && (2000..=2200).contains(&year)).then_some(Quarter { year, q })
    }

    /// The quarter holding capture time `us` in `zone`.
    pub fn of(zone: chrono_tz::Tz, us: i64) -> Quarter {
        let utc = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
        let local = zone.from_utc_datetime(&utc.naive_utc());
        Quarter {
            year: local.year(),
            q: (local.month() - 1) / 3 + 1,
        }
    }

    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    /// Its first instant in `zone`, in capture microseconds.
    pub fn start(self, zone: chrono_tz::Tz) -> i64 {
        chrono::NaiveDate::from_ymd_opt(self.year, (self.q - 1) * 3 + 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|n| zone.from_local_datetime(&n).earliest())
            .map_or(0, |t| t.timestamp_micros())
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

/// The scorecards of a quarter, as JSON and as CSV rows.
pub struct Scorecards {
    pub quarter: Quarter,
    pub rows: Vec<crate::store::query::ScoreRow>,
}

async fn load_scorecards(
    s: &Inspect,
    q: &BTreeMap<String, String>,
) -> Result<Scorecards, ApiError> {
    known_params(q, &["quarter", "agent", "team"])?;
    let quarter = match param(q, "quarter") {
        Some(v) => Quarter::parse(v)
            .ok_or_else(|| ApiError::bad(format!("quarter: {v:?} is not like 2026Q4")))?,
        None => Quarter::of(s.zone, wall_micros()),
    };
    let rows = s
        .store
        .scorecards(
            quarter.start(s.zone),
            quarter.next().start(s.zone),
            s.late_answer_ms as i64,
            param(q, "agent"),
            param(q, "team"),
        )
        .await?;
    Ok(Scorecards { quarter, rows })
}

async fn scorecards(
    _session: Session,
    State(s): State<Shared>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let c = load_scorecards(&s, &q).await?;
    let agents: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            json!({
                "agent_id": r.agent_id,
                "agent_name": r.agent_name,
                "team": r.team,
                "inbound": r.inbound,
                "answered": r.answered,
                "service_level": r.service_level(),
                "sl_within": r.sl_within,
                "sl_total": r.sl_total,
                "confirmed": r.confirmed.iter().map(|(k, v)| (k.clone(), json!(v.0))).collect::<serde_json::Map<_, _>>(),
                "points_by_rule": r.confirmed.iter().map(|(k, v)| (k.clone(), json!(v.1))).collect::<serde_json::Map<_, _>>(),
                "points": r.points(),
                "dismissed": r.dismissed,
                "pending": r.pending,
            })
        })
        .collect();
    Ok(Json(json!({
        "quarter": c.quarter.to_string(),
        "from": view::time(s.zone, c.quarter.start(s.zone)),
        "to": view::time(s.zone, c.quarter.next().start(s.zone)),
        "zone": s.zone.name(),
        "late_answer_threshold_ms": s.late_answer_ms,
        "points": s.points,
        "agents": agents,
    })))
}

async fn scorecards_csv(
    _session: Session,
    State(s): State<Shared>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let c = load_scorecards(&s, &q).await?;
    let body = csv::scorecards(&c);
    Ok(csv::response(
        &format!("scorecards-{}.csv", c.quarter),
        body,
    ))
}

async fn legs_csv(
    _session: Session,
    State(s): State<Shared>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    known_params(&q, LEG_PARAMS)?;
    let mut f = leg_filter(&s, &q)?;
    if param(&q, "per_page").is_none() {
        f.limit = 10_000;
        f.offset = 0;
    }
    let p = s.store.list_legs(&f).await?;
    Ok(csv::response(
        "flagged-legs.csv",
        csv::legs(s.zone, &p.items),
    ))
}

async fn unknown_api(_session: Session) -> ApiError {
    ApiError::not_found("route")
}
