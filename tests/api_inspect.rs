//! The inspectors' API, route by route, with its refusals: no token, a bad or expired
//! token, the wrong role, a bad filter, an unknown id, an oversized body, too many failed
//! logins; masking of customer numbers and the audit of every full view and verdict; the
//! scorecards and the CSV exports read back with Chinese names intact; the pages.
//! Served in-process (tower `oneshot`) on a SQLite store filled with known legs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use callwatch::api::inspect::auth::{hash_password, Auth};
use callwatch::api::inspect::{router, Inspect, MAX_BODY};
use callwatch::config::{Role, UserConfig};
use callwatch::store::Store;
use common::store_db::{sqlite_db, SqliteDb};
use common::store_rows::{leg, write};
use common::temp_dir::TempDir;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const PW: &str = "Quality-2026!";

struct App {
    router: Router,
    store: Store,
    /// The database's folder, removed when the test is done with the app.
    _db: SqliteDb,
}

fn points() -> BTreeMap<String, u32> {
    [
        ("late_answer", 1),
        ("survey_missing", 2),
        ("personal_call", 2),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect()
}

async fn app_with(users: &[(&str, Role)]) -> App {
    let db = sqlite_db("api");
    let store = Store::open(&db.url).await.unwrap();
    let mut l2 = leg("L2", "8002", 3600, &["agent_hangup_first"]);
    l2.agent_name = Some("王芳".into());
    l2.team = Some("二组".into());
    store
        .write_batch(&[
            write(leg("L1", "8001", 0, &["late_answer", "survey_missing"])),
            write(l2),
            write(leg("L3", "8001", 7200, &[])),
        ])
        .await
        .unwrap();
    let hash = hash_password(PW).unwrap();
    let users: Vec<UserConfig> = users
        .iter()
        .map(|(n, r)| UserConfig {
            name: n.to_string(),
            role: *r,
            password_hash: hash.clone(),
        })
        .collect();
    let inspect = Inspect {
        store: store.clone(),
        auth: Auth::new(vec![42; 32], &users, 60),
        zone: chrono_tz::Asia::Shanghai,
        points: points(),
        late_answer_ms: 10_000,
    };
    App {
        router: router(Arc::new(inspect)),
        store,
        _db: db,
    }
}

async fn app() -> App {
    app_with(&[
        ("viewer1", Role::Viewer),
        ("inspector1", Role::Inspector),
        ("admin1", Role::Admin),
    ])
    .await
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

impl App {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(body) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call("GET", uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", uri, token, Some(body.to_string().into_bytes()))
            .await
    }

    async fn login(&self, name: &str) -> String {
        let r = self
            .post("/api/login", None, json!({"name": name, "password": PW}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }
}

/// Every protected route, as (method, path, body).
fn protected() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/api/me", None),
        ("GET", "/api/legs", None),
        ("GET", "/api/legs.csv", None),
        ("GET", "/api/legs/L1", None),
        (
            "POST",
            "/api/legs/L1/verdict",
            Some(json!({"verdict": "confirmed"})),
        ),
        ("GET", "/api/audit", None),
        ("GET", "/api/scorecards", None),
        ("GET", "/api/scorecards.csv", None),
        ("GET", "/api/no-such-route", None),
    ]
}

#[tokio::test]
async fn openapi_is_public_and_describes_every_route() {
    let a = app().await;
    let r = a.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/login",
        "/api/me",
        "/api/legs",
        "/api/legs.csv",
        "/api/legs/{leg_id}",
        "/api/legs/{leg_id}/verdict",
        "/api/audit",
        "/api/scorecards",
        "/api/scorecards.csv",
        "/api/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} not described");
    }
}

#[tokio::test]
async fn without_a_valid_token_every_api_route_answers_401() {
    let a = app().await;
    let (forged, _) = Auth::new(vec![1; 32], &[], 60).issue("admin1", Role::Admin, 0);
    for (method, path, body) in protected() {
        for token in [None, Some("garbage"), Some(forged.as_str())] {
            let r = a
                .call(
                    method,
                    path,
                    token,
                    body.as_ref().map(|b| b.to_string().into_bytes()),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
            assert!(r.json()["error"].is_string());
        }
    }
    // An expired token: issued long ago by the right key.
    let (old, _) = Auth::new(vec![42; 32], &[], 60).issue("admin1", Role::Admin, 0);
    assert_eq!(
        a.get("/api/me", &old).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_no_users_configured_nobody_gets_in() {
    let a = app_with(&[]).await;
    let r = a
        .post("/api/login", None, json!({"name": "admin", "password": PW}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for (method, path, _) in protected() {
        assert_eq!(
            a.call(method, path, None, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let r = a.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn logins_are_checked_limited_and_audited() {
    let a = app().await;
    let r = a
        .post(
            "/api/login",
            None,
            json!({"name": "inspector1", "password": "wrong"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = a
        .post(
            "/api/login",
            None,
            json!({"name": "nobody", "password": PW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid name or password");
    // Malformed bodies.
    let r = a
        .call("POST", "/api/login", None, Some(b"{".to_vec()))
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = a
        .post(
            "/api/login",
            None,
            json!({"name": "x", "password": "y", "extra": 1}),
        )
        .await;
    assert!(r.status.is_client_error());

    let token = a.login("inspector1").await;
    let me = a.get("/api/me", &token).await.json();
    assert_eq!(me["role"], "inspector");
    assert_eq!(me["can_review"], true);
    assert_eq!(me["can_read_audit"], false);

    // Five failures lock the name (even with the right password), with Retry-After.
    for _ in 0..5 {
        let r = a
            .post(
                "/api/login",
                None,
                json!({"name": "viewer1", "password": "bad"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = a
        .post(
            "/api/login",
            None,
            json!({"name": "viewer1", "password": PW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // Other accounts still log in.
    a.login("admin1").await;

    let admin = a.login("admin1").await;
    let audit = a.get("/api/audit?action=login_failed", &admin).await.json();
    assert_eq!(audit["total"], 7);
}

#[tokio::test]
async fn flagged_legs_are_listed_by_filter_and_page_with_numbers_masked() {
    let a = app().await;
    let v = a.login("viewer1").await;
    let r = a.get("/api/legs", &v).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["total"], 2, "flagged only");
    assert_eq!(j["items"][0]["leg_id"], "L2", "newest first");
    assert_eq!(j["items"][1]["customer"], "138****5678");
    assert!(!r.text().contains("13812345678"));
    assert_eq!(j["items"][1]["invite_at"], "2026-11-26T09:00:00.000+08:00");
    assert_eq!(j["items"][1]["review"], "pending");

    let count = |q: &str| {
        let a = &a;
        let v = v.clone();
        let q = q.to_string();
        async move {
            let r = a.get(&format!("/api/legs?{q}"), &v).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
            r.json()["total"].as_i64().unwrap()
        }
    };
    assert_eq!(count("rule=late_answer").await, 1);
    assert_eq!(count("agent=8002").await, 1);
    assert_eq!(count("agent=A8001").await, 1);
    assert_eq!(count("team=%E4%BA%8C%E7%BB%84").await, 1);
    assert_eq!(count("from=2026-11-26T09:30:00%2B08:00").await, 1);
    assert_eq!(count("from=2026-11-26&to=2026-11-27").await, 2);
    assert_eq!(count("to=2026-11-26").await, 0);
    assert_eq!(count("verdict=pending").await, 2);
    assert_eq!(count("verdict=confirmed").await, 0);
    assert_eq!(count("all=true").await, 3);
    assert_eq!(count("call_id=call-L2").await, 1);
    let p2 = a.get("/api/legs?per_page=1&page=2", &v).await.json();
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0]["leg_id"], "L1");
    assert_eq!(p2["next"], Value::Null, "the last page has no next");

    // The count is exact below its cap, and says so; pages chain by cursor.
    assert_eq!(j["total_exact"], true);
    assert_eq!(j["total_capped_at"], 10_000);
    assert_eq!(j["order"], "desc");
    let p1 = a.get("/api/legs?per_page=1", &v).await.json();
    assert_eq!(p1["items"][0]["leg_id"], "L2");
    let next = p1["next"].as_str().expect("a next token").to_string();
    let r = a
        .get(&format!("/api/legs?per_page=1&cursor={next}"), &v)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c2 = r.json();
    assert_eq!(c2["items"][0]["leg_id"], "L1", "the cursor's page");
    assert_eq!(c2["next"], Value::Null);
    let oldest = a.get("/api/legs?per_page=1&order=asc", &v).await.json();
    assert_eq!(oldest["items"][0]["leg_id"], "L1", "oldest first");
    assert_eq!(oldest["order"], "asc");
    // A cursor of the other order, with a page, or not ours: 400 naming the parameter.
    for (bad, what) in [
        (format!("order=asc&cursor={next}"), "cursor"),
        (format!("page=2&cursor={next}"), "cursor"),
        ("cursor=bm90LWEtY3Vyc29y".to_string(), "cursor"),
        ("cursor=%25%25".to_string(), "cursor"),
        ("order=sideways".to_string(), "order"),
        ("page=202".to_string(), "page"),
        ("page=22&per_page=500".to_string(), "page"),
    ] {
        let r = a.get(&format!("/api/legs?{bad}"), &v).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(e.starts_with(what), "{bad}: {e}");
    }
    // Offset pages up to 10,000 legs deep still answer.
    let r = a.get("/api/legs?page=201", &v).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["error"].is_null());

    for bad in [
        "rule=nope",
        "verdict=maybe",
        "from=yesterday",
        "from=2026-11-27&to=2026-11-26",
        "per_page=0",
        "per_page=501",
        "page=0",
        "page=x",
        "all=perhaps",
        "colour=red",
    ] {
        let r = a.get(&format!("/api/legs?{bad}"), &v).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["error"].is_string());
    }
}

#[tokio::test]
async fn one_leg_shows_timeline_ladder_and_media_and_full_numbers_are_audited() {
    let a = app().await;
    let v = a.login("viewer1").await;
    let r = a.get("/api/legs/L1", &v).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["numbers_shown"], false);
    assert_eq!(j["customer"], "138****5678");
    let text = r.text();
    assert!(!text.contains("13812345678"), "no full number for a viewer");
    assert!(!text.contains("客户"), "no display name for a viewer");
    let sip = &j["sip"];
    assert_eq!(sip["hosts"], json!(["10.1.0.10:5060", "10.1.9.1:5060"]));
    assert_eq!(sip["messages"].as_array().unwrap().len(), 6);
    assert_eq!(sip["messages"][1]["first_line"], "SIP/2.0 180 Ringing");
    assert_eq!(sip["messages"][2]["offset_ms"], 4000);
    let kinds: Vec<&str> = j["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "invite",
            "ringing",
            "answered",
            "violation",
            "violation",
            "hold",
            "resume",
            "ended"
        ]
    );
    let phases = &j["timeline"]["phases"];
    assert_eq!(phases[0]["kind"], "ring");
    assert_eq!(
        phases[1],
        json!({"kind": "talk", "from_ms": 4000, "to_ms": 60000})
    );
    assert_eq!(j["media"][0]["codec"], "PCMU");
    assert_eq!(j["violations"][0]["article"], "Art. 60");

    // Viewers may not see numbers; inspectors may, and it is audited.
    let r = a.get("/api/legs/L1?show_numbers=true", &v).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let i = a.login("inspector1").await;
    let r = a.get("/api/legs/L1?show_numbers=true", &i).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["customer"], "13812345678");
    assert!(j["sip"]["messages"][0]["text"]
        .as_str()
        .unwrap()
        .contains("\"客户\" <sip:13812345678@"));
    let admin = a.login("admin1").await;
    let audit = a.get("/api/audit?action=view_numbers", &admin).await.json();
    assert_eq!(audit["total"], 1);
    assert_eq!(audit["items"][0]["user"], "inspector1");
    assert_eq!(audit["items"][0]["leg_id"], "L1");

    assert_eq!(
        a.get("/api/legs/nope", &v).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.get("/api/legs/L1?show_numbers=maybe", &i).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        a.get("/api/legs/L1?format=xml", &i).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn verdicts_need_an_inspector_a_reason_to_dismiss_and_are_audited() {
    let a = app().await;
    let v = a.login("viewer1").await;
    let i = a.login("inspector1").await;
    let url = "/api/legs/L1/verdict";
    let r = a.post(url, Some(&v), json!({"verdict": "confirmed"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = a.post(url, Some(&i), json!({"verdict": "dismissed"})).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a dismissal needs a reason"
    );
    let r = a.post(url, Some(&i), json!({"verdict": "maybe"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = a
        .post(
            url,
            Some(&i),
            json!({"verdict": "confirmed", "rule": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = a
        .post(
            url,
            Some(&i),
            json!({"verdict": "confirmed", "rule": "long_hold"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let r = a
        .post(url, Some(&i), json!({"verdict": "confirmed", "why": "x"}))
        .await;
    assert!(r.status.is_client_error());
    let r = a
        .post(
            url,
            Some(&i),
            json!({"verdict": "dismissed", "reason": "x".repeat(2001)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = a
        .post(
            "/api/legs/nope/verdict",
            Some(&i),
            json!({"verdict": "confirmed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let big = format!(
        r#"{{"verdict":"dismissed","reason":"{}"}}"#,
        "x".repeat(MAX_BODY)
    );
    let r = a.call("POST", url, Some(&i), Some(big.into_bytes())).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    let r = a
        .post(
            url,
            Some(&i),
            json!({"verdict": "confirmed", "rule": "late_answer", "reason": "rang 13 s"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["reviews"][0]["points"], 1);
    let r = a
        .post(
            url,
            Some(&i),
            json!({"verdict": "dismissed", "rule": "survey_missing", "reason": "第65条 骚扰电话"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let stored = a.store.get_leg("L1").await.unwrap().unwrap();
    assert_eq!(stored.reviews.len(), 2);
    assert_eq!(stored.reviews[0].points, 1, "late_answer: scorecard.points");
    let leg = a.get("/api/legs/L1", &v).await.json();
    assert_eq!(leg["review"], "mixed");
    assert_eq!(leg["violations"][1]["reason"], "第65条 骚扰电话");
    assert_eq!(leg["violations"][1]["reviewer"], "inspector1");

    // The audit trail is for admins.
    assert_eq!(a.get("/api/audit", &i).await.status, StatusCode::FORBIDDEN);
    let admin = a.login("admin1").await;
    let audit = a.get("/api/audit?action=verdict", &admin).await.json();
    assert_eq!(audit["total"], 2);
    assert_eq!(audit["items"][0]["verdict"], "dismissed");
    assert_eq!(audit["items"][0]["user"], "inspector1");
    assert_eq!(
        a.get("/api/audit?page=-1", &admin).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        a.get("/api/nothing", &admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn scorecards_count_confirmed_violations_in_the_quarter_and_export_to_excel() {
    let a = app().await;
    let i = a.login("inspector1").await;
    for (leg, verdict) in [("L1", "confirmed"), ("L2", "confirmed")] {
        let r = a
            .post(
                &format!("/api/legs/{leg}/verdict"),
                Some(&i),
                json!({"verdict": verdict}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let v = a.login("viewer1").await;
    let r = a.get("/api/scorecards?quarter=2026Q4", &v).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["quarter"], "2026Q4");
    assert_eq!(j["from"], "2026-10-01T00:00:00.000+08:00");
    assert_eq!(j["to"], "2027-01-01T00:00:00.000+08:00");
    let agents = j["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0]["agent_id"], "A8001");
    assert_eq!(agents[0]["agent_name"], "李娜8001");
    assert_eq!(agents[0]["answered"], 2);
    assert_eq!(agents[0]["service_level"], 1.0);
    assert_eq!(
        agents[0]["confirmed"],
        json!({"late_answer": 1, "survey_missing": 1})
    );
    assert_eq!(agents[0]["points"], 3);
    assert_eq!(
        agents[1]["points"], 1,
        "agent_hangup_first: default 1 point"
    );
    let empty = a.get("/api/scorecards?quarter=2026Q3", &v).await.json();
    assert_eq!(empty["agents"], json!([]));
    let team = a
        .get("/api/scorecards?quarter=2026q4&team=%E4%BA%8C%E7%BB%84", &v)
        .await
        .json();
    assert_eq!(team["agents"].as_array().unwrap().len(), 1);
    for bad in ["quarter=2026Q5", "quarter=Q4", "quarter=abc", "week=1"] {
        assert_eq!(
            a.get(&format!("/api/scorecards?{bad}"), &v).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // CSV: BOM, CRLF, Chinese intact, read back field by field.
    let r = a.get("/api/scorecards.csv?quarter=2026Q4", &v).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(r.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("scorecards-2026Q4.csv"));
    assert_eq!(&r.body[..3], b"\xEF\xBB\xBF", "UTF-8 BOM for Excel");
    let text = r.text();
    let rows: Vec<Vec<String>> = parse_csv(text.trim_start_matches('\u{feff}'));
    assert_eq!(rows[0][1], "工号 agent_id");
    assert_eq!(rows[1][1], "A8001");
    assert_eq!(rows[1][2], "李娜8001");
    assert_eq!(rows[1][3], "一组");
    assert_eq!(rows[2][2], "王芳");
    assert_eq!(rows[2][3], "二组");
    let total = rows[0]
        .iter()
        .position(|h| h.contains("points_total"))
        .unwrap();
    assert_eq!(rows[1][total], "3");
    assert!(text.contains("\r\n"));

    let r = a.get("/api/legs.csv?all=true", &v).await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = parse_csv(r.text().trim_start_matches('\u{feff}'));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][3], "李娜8001", "newest first: L3");
    assert_eq!(rows[2][3], "王芳");
    assert_eq!(rows[2][4], "二组");
    assert_eq!(rows[2][6], "138****5678");
    assert!(!r.text().contains("13812345678"));
    assert_eq!(
        a.get("/api/legs.csv?rule=nope", &v).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// A small RFC 4180 reader: quoted fields, doubled quotes, CRLF.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[tokio::test]
async fn the_inspector_page_is_served_self_contained_in_two_languages() {
    let a = app().await;
    let r = a.call("GET", "/inspect/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = r.text();
    for s in [
        "待审队列",
        "Review queue",
        "SIP 信令图",
        "SIP ladder",
        "/api/login",
        "季度考核",
        "/api/audit?leg_id=",
        "驳回需要填写理由",
        "A dismissal needs a reason",
        "aria-pressed",
    ] {
        assert!(html.contains(s), "{s}");
    }
    assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
    assert!(!html.contains("https://"), "nothing loaded from elsewhere");
    let r = a.call("GET", "/inspect", None, None).await;
    assert!(r.status.is_redirection());
}

#[test]
fn accounts_are_checked_before_the_daemon_starts() {
    use callwatch::config::Config;
    let good = hash_password(PW).unwrap();
    let user = |name: &str, hash: &str| UserConfig {
        name: name.into(),
        role: Role::Inspector,
        password_hash: hash.into(),
    };
    let check = |users: Vec<UserConfig>| {
        let mut c = Config::default();
        c.auth.users = users;
        c.validate(None).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(check(vec![user("zhang", &good), user("li", &good)]).is_ok());
    let e = check(vec![user("zhang", &good), user("Zhang", &good)]).unwrap_err();
    assert!(e.contains("auth.users[1].name"), "{e}");
    let e = check(vec![user("zhang", "plaintext")]).unwrap_err();
    assert!(e.contains("auth.users[0].password_hash"), "{e}");
    // Argon2i or bcrypt are not Argon2id.
    let e = check(vec![user("zhang", &good.replace("argon2id", "argon2i"))]).unwrap_err();
    assert!(e.contains("password_hash"), "{e}");
    let e = check(vec![user("two words", &good)]).unwrap_err();
    assert!(e.contains("name"), "{e}");
    let mut c = Config::default();
    c.auth.session_minutes = 0;
    assert!(c.validate(None).is_err());
    // From TOML, unknown keys of an account are refused with their name.
    let dir = TempDir::new("cfg");
    let f = dir.join("c.toml");
    std::fs::write(
        &f,
        format!(
            "[[auth.users]]\nname = \"zhang\"\nrole = \"inspector\"\npassword_hash = \"{good}\"\n"
        ),
    )
    .unwrap();
    let c = Config::load_with_env(Some(&f), Vec::new()).unwrap();
    assert_eq!(c.auth.users[0].role, Role::Inspector);
    std::fs::write(
        &f,
        format!("[[auth.users]]\nname = \"zhang\"\nrole = \"boss\"\npassword_hash = \"{good}\"\n"),
    )
    .unwrap();
    assert!(Config::load_with_env(Some(&f), Vec::new()).is_err());
    std::fs::write(
        &f,
        format!(
            "[[auth.users]]\nname = \"zhang\"\nrole = \"admin\"\npassword = \"x\"\npassword_hash = \"{good}\"\n"
        ),
    )
    .unwrap();
    let e = Config::load_with_env(Some(&f), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("password"), "{e}");
}

/// The routes are mounted in the daemon, served with the client address, and the
/// secret is generated into the data folder with mode 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_api_and_keeps_a_generated_secret_private() {
    use callwatch::config::Config;
    use callwatch::daemon::Options;
    use common::daemon_task::DaemonTask;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = TempDir::new("daemon-api");
    let mut c = Config::default();
    c.store.url = format!("sqlite://{}/callwatch.db", dir.display());
    c.auth.users = vec![UserConfig {
        name: "admin1".into(),
        role: Role::Admin,
        password_hash: hash_password(PW).unwrap(),
    }];
    let daemon = DaemonTask::start(c.validate(None).unwrap(), Options::default()).await;
    let http = daemon.http;
    let request = |raw: String| async move {
        for _ in 0..100 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(http).await {
                s.write_all(raw.as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                return out;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no HTTP");
    };
    let out =
        request("GET /api/legs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    let body = format!(r#"{{"name":"admin1","password":"{PW}"}}"#);
    let out = request(format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let token = out
        .split("\"token\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let out = request(format!(
        "GET /api/audit?action=login HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("client 127.0.0.1"),
        "the client address is known: {out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("auth.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    daemon.stop().await;
}

#[test]
fn a_secret_set_but_empty_or_blank_is_refused() {
    use callwatch::config::Config;
    let env = |v: &str| vec![("CALLWATCH__AUTH__SECRET".to_string(), v.to_string())];
    let e = Config::load_with_env(None, env(""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("auth.secret"), "{e}");
    let mut c = Config::default();
    c.auth.secret = " ".repeat(40);
    let e = c.validate(None).unwrap_err().to_string();
    assert!(e.contains("auth.secret"), "{e}");
    // Unset (or empty in the file): one is generated at start.
    assert!(Config::load_with_env(None, Vec::new())
        .unwrap()
        .validate(None)
        .is_ok());
}
