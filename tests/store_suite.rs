//! The store test suite, run against SQLite and against a real PostgreSQL alike (SPEC §7:
//! the same migrations and the same tests on both): upsert dedup by `leg_id`, batch
//! writes, filters and paging, verdicts with their audit rows, scorecards and the
//! service level, the retention purge that keeps scorecards, two nodes writing at once,
//! and the spool + writer path replaying after a crash.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callwatch::sinks::store::{run_writer, spool, WriterStats};
use callwatch::store::query::{AuditFilter, Cursor, LegFilter, Verdict, VerdictFilter, COUNT_CAP};
use callwatch::store::{LegWrite, Store};
use common::store_rows::{leg, sip, write, SEC, T0};
use common::temp_dir::TempDir;

on_both_backends!(
    upsert_keeps_one_row_per_leg_and_merges_violations,
    batches_are_written_and_listed_by_filter_and_page,
    verdicts_are_audited_and_feed_scorecards_with_frozen_points,
    service_level_leaves_out_quick_cancels_and_lost_fork_branches,
    retention_purge_removes_sip_and_media_but_keeps_scorecards,
    two_nodes_writing_at_once_add_up_to_one_row_per_leg,
    spooled_legs_reach_the_store_once_after_a_crash,
    big_batches_stay_within_the_bound_parameters_and_the_count_stops_at_its_cap,
    cursor_pages_chain_without_gaps_or_repeats_across_equal_timestamps,
);

fn all() -> LegFilter {
    LegFilter {
        limit: 1000,
        ..LegFilter::default()
    }
}

async fn upsert_keeps_one_row_per_leg_and_merges_violations(url: String) {
    let s = Store::open(&url).await.unwrap();
    let first = leg("L1", "8001", 0, &["late_answer"]);
    s.write_batch(&[write(first.clone())]).await.unwrap();
    // The same leg again, from another node that also saw the hang-up.
    let mut again = leg("L1", "8001", 0, &["agent_hangup_first"]);
    again.node = "node-b".into();
    again.hangup_by = "agent".into();
    let mut w = write(again);
    w.sip.as_mut().unwrap().truncate(2);
    s.write_batch(&[w]).await.unwrap();
    // And an unflagged write of it (a replay without SIP): nothing is lost.
    let mut plain = leg("L1", "8001", 0, &[]);
    plain.hangup_by = "agent".into();
    s.write_batch(&[LegWrite {
        leg: plain,
        sip: None,
    }])
    .await
    .unwrap();

    assert_eq!(s.counts().await.unwrap(), (1, 1));
    let got = s.get_leg("L1").await.unwrap().expect("stored");
    assert_eq!(got.leg.hangup_by, "agent");
    assert_eq!(got.leg.node, "node-a");
    let rules: Vec<&str> = got.leg.violations.iter().map(|v| v.rule.as_str()).collect();
    assert_eq!(rules, vec!["agent_hangup_first", "late_answer"]);
    assert!(got.leg.media.is_some(), "media kept from the flagged write");
    let msgs = s.sip_messages("L1").await.unwrap();
    assert_eq!(msgs.len(), 2, "the last SIP set replaces the earlier one");
    assert_eq!(msgs[0].first_line, "INVITE sip:8001@10.1.9.1 SIP/2.0");
    assert!(String::from_utf8(msgs[0].raw.clone())
        .unwrap()
        .contains("\"客户\""));
    // Everything else round-trips.
    assert_eq!(got.leg.agent_name.as_deref(), Some("李娜8001"));
    assert_eq!(got.leg.holds, first.holds);
    assert_eq!(got.leg.invite_at, first.invite_at);
    assert!(s.get_leg("nope").await.unwrap().is_none());
}

async fn batches_are_written_and_listed_by_filter_and_page(url: String) {
    let s = Store::open(&url).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..300 {
        let rules: &[&str] = match i % 3 {
            0 => &[],
            1 => &["late_answer"],
            _ => &["survey_missing", "agent_hangup_first"],
        };
        let agent = if i % 2 == 0 { "8001" } else { "8002" };
        let mut l = leg(&format!("B{i:03}"), agent, i * 60, rules);
        if i >= 150 {
            l.team = Some("二组".into());
        }
        batch.push(write(l));
        if batch.len() == 100 {
            s.write_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    assert_eq!(s.counts().await.unwrap(), (300, 200));

    let p = s.list_legs(&all()).await.unwrap();
    assert_eq!(p.total, 200, "flagged only by default");
    assert_eq!(p.items[0].leg.leg_id, "B299", "newest first");
    let every = s
        .list_legs(&LegFilter { all: true, ..all() })
        .await
        .unwrap();
    assert_eq!(every.total, 300);

    let late = s
        .list_legs(&LegFilter {
            rule: Some("late_answer".into()),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(late.total, 100);
    assert!(late
        .items
        .iter()
        .all(|l| l.leg.violations.iter().any(|v| v.rule == "late_answer")));

    let f = LegFilter {
        rule: Some("survey_missing".into()),
        agent: Some("A8001".into()),
        team: Some("二组".into()),
        from: Some(T0 + 200 * 60 * SEC),
        to: Some(T0 + 260 * 60 * SEC),
        limit: 7,
        ..LegFilter::default()
    };
    let p1 = s.list_legs(&f).await.unwrap();
    // i in [200, 260), i % 3 == 2, i even: 200, 206, ..., 254 → 10 legs.
    assert_eq!(p1.total, 10);
    assert_eq!(p1.items.len(), 7);
    let p2 = s.list_legs(&LegFilter { offset: 7, ..f }).await.unwrap();
    assert_eq!(p2.items.len(), 3);
    assert_eq!(p2.items[2].leg.leg_id, "B200");
    let by_ext = s
        .list_legs(&LegFilter {
            agent: Some("8002".into()),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(by_ext.total, 100);
    let by_call = s
        .list_legs(&LegFilter {
            call_id: Some("call-B004".into()),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(by_call.items.len(), 1);
}

async fn verdicts_are_audited_and_feed_scorecards_with_frozen_points(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.write_batch(&[
        write(leg("V1", "8001", 0, &["late_answer", "survey_missing"])),
        write(leg("V2", "8001", 60, &["late_answer"])),
        write(leg("V3", "8002", 120, &["personal_call"])),
        write(leg("V4", "8002", 180, &[])),
    ])
    .await
    .unwrap();
    let points = |r: &str| if r == "personal_call" { 2 } else { 1 };
    let now = T0 + 3600 * SEC;
    s.set_verdict(
        "V1",
        Some("late_answer"),
        Verdict::Confirmed,
        "rang 13 s",
        &points,
        "zhang",
        now,
    )
    .await
    .unwrap();
    s.set_verdict(
        "V1",
        Some("survey_missing"),
        Verdict::Dismissed,
        "Art. 65 骚扰电话",
        &points,
        "zhang",
        now,
    )
    .await
    .unwrap();
    let r = s
        .set_verdict("V3", None, Verdict::Confirmed, "", &points, "wang", now)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].points, 2);

    // Refusals: unknown leg, a rule the leg did not break, a leg with no violation.
    let e = s
        .set_verdict("nope", None, Verdict::Confirmed, "", &points, "x", now)
        .await
        .unwrap_err();
    assert!(matches!(e, callwatch::store::StoreError::NotFound), "{e}");
    assert!(s
        .set_verdict(
            "V2",
            Some("long_hold"),
            Verdict::Confirmed,
            "",
            &points,
            "x",
            now
        )
        .await
        .is_err());
    assert!(s
        .set_verdict("V4", None, Verdict::Confirmed, "", &points, "x", now)
        .await
        .is_err());

    let pending = s
        .list_legs(&LegFilter {
            verdict: Some(VerdictFilter::Pending),
            ..all()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = pending
        .items
        .iter()
        .map(|l| l.leg.leg_id.as_str())
        .collect();
    assert_eq!(ids, vec!["V2"]);
    let dismissed = s
        .list_legs(&LegFilter {
            verdict: Some(VerdictFilter::Is(Verdict::Dismissed)),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(dismissed.items.len(), 1);
    assert_eq!(dismissed.items[0].reviews.len(), 2);
    let confirmed_late = s
        .list_legs(&LegFilter {
            verdict: Some(VerdictFilter::Is(Verdict::Confirmed)),
            rule: Some("survey_missing".into()),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(confirmed_late.total, 0);

    let audit = s
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.total, 3);
    assert_eq!(audit.items[0].username, "wang", "newest first");
    assert_eq!(audit.items[1].reason.as_deref(), Some("Art. 65 骚扰电话"));

    let cards = s
        .scorecards(T0, T0 + 86_400 * SEC, 10_000, None, None)
        .await
        .unwrap();
    assert_eq!(cards.len(), 2);
    let a = &cards[0];
    assert_eq!(a.agent_id, "A8001");
    assert_eq!(a.confirmed.get("late_answer"), Some(&(1, 1)));
    assert_eq!(a.dismissed, 1);
    assert_eq!(a.pending, 1);
    assert_eq!(a.points(), 1);
    assert_eq!(cards[1].points(), 2);
    assert_eq!(cards[1].answered, 2);

    // The points table changes (5 for a late answer): the verdict given before keeps
    // its point, the one given now takes 5.
    let changed = |r: &str| if r == "late_answer" { 5 } else { 1 };
    s.set_verdict("V2", None, Verdict::Confirmed, "", &changed, "zhang", now)
        .await
        .unwrap();
    let after = s
        .scorecards(T0, T0 + 86_400 * SEC, 10_000, Some("8001"), None)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].confirmed.get("late_answer"), Some(&(2, 6)));
    assert_eq!(after[0].pending, 0);
}

async fn service_level_leaves_out_quick_cancels_and_lost_fork_branches(url: String) {
    let s = Store::open(&url).await.unwrap();
    let mut legs = Vec::new();
    // Answered within 10 s, answered late.
    legs.push(leg("S1", "8001", 0, &[]));
    let mut late = leg("S2", "8001", 60, &["late_answer"]);
    late.ring_ms = Some(13_000);
    legs.push(late);
    // Cancelled by the caller after 4 s: left out.
    let mut quick = leg("S3", "8001", 120, &[]);
    quick.outcome = Some("cancelled".into());
    quick.ring_ms = Some(4_000);
    quick.answered_at = None;
    legs.push(quick);
    // Cancelled after 15 s: counts against.
    let mut slow = leg("S4", "8001", 180, &["late_answer"]);
    slow.outcome = Some("cancelled".into());
    slow.ring_ms = Some(15_000);
    slow.answered_at = None;
    legs.push(slow);
    // A fork: 8002 answered, 8001's branch cancelled at 12 s: left out.
    let mut won = leg("S5b", "8002", 240, &[]);
    won.call_id = "fork".into();
    let mut lost = leg("S5a", "8001", 240, &[]);
    lost.call_id = "fork".into();
    lost.outcome = Some("cancelled".into());
    lost.ring_ms = Some(12_000);
    lost.answered_at = None;
    legs.push(won);
    legs.push(lost);
    // Outbound legs do not count.
    let mut out = leg("S6", "8001", 300, &[]);
    out.direction = "outbound".into();
    legs.push(out);
    let writes: Vec<LegWrite> = legs.into_iter().map(write).collect();
    s.write_batch(&writes).await.unwrap();
    let cards = s
        .scorecards(T0, T0 + 86_400 * SEC, 10_000, Some("A8001"), None)
        .await
        .unwrap();
    let c = &cards[0];
    assert_eq!(c.inbound, 5);
    assert_eq!(c.answered, 2);
    assert_eq!((c.sl_within, c.sl_total), (1, 3));
    assert_eq!(c.service_level(), Some(1.0 / 3.0));
    // Nothing in another range.
    assert!(s
        .scorecards(T0 - 86_400 * SEC, T0, 10_000, None, None)
        .await
        .unwrap()
        .is_empty());
}

async fn retention_purge_removes_sip_and_media_but_keeps_scorecards(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.write_batch(&[
        write(leg("P1", "8001", 0, &["late_answer"])),
        write(leg("P2", "8001", 86_400 * 100, &["late_answer"])),
    ])
    .await
    .unwrap();
    let points = |_: &str| 3;
    for id in ["P1", "P2"] {
        s.set_verdict(id, None, Verdict::Confirmed, "ok", &points, "li", T0)
            .await
            .unwrap();
    }
    let range = (T0 - SEC, T0 + 86_400 * 200 * SEC);
    let before = s
        .scorecards(range.0, range.1, 10_000, None, None)
        .await
        .unwrap();

    let r = s.purge(T0 + 86_400 * 50 * SEC).await.unwrap();
    assert_eq!(r.legs, 1);
    assert_eq!(r.sip_messages, 6);
    assert!(s.sip_messages("P1").await.unwrap().is_empty());
    assert_eq!(s.sip_messages("P2").await.unwrap().len(), 6);
    let p1 = s.get_leg("P1").await.unwrap().unwrap();
    assert!(p1.leg.media.is_none());
    assert!(p1.purged_at.is_some());
    assert_eq!(p1.leg.violations.len(), 1);
    assert_eq!(p1.reviews.len(), 1);
    assert!(s.get_leg("P2").await.unwrap().unwrap().leg.media.is_some());

    let after = s
        .scorecards(range.0, range.1, 10_000, None, None)
        .await
        .unwrap();
    assert_eq!(before, after, "the purge never changes a scorecard");
    assert_eq!(after[0].points(), 6);

    // A replay of the purged leg (spool after a crash) does not bring its text back.
    s.write_batch(&[write(leg("P1", "8001", 0, &["late_answer"]))])
        .await
        .unwrap();
    assert!(s.sip_messages("P1").await.unwrap().is_empty());
    assert!(s.get_leg("P1").await.unwrap().unwrap().leg.media.is_none());
    // Purging again finds nothing new.
    assert_eq!(s.purge(T0 + 86_400 * 50 * SEC).await.unwrap().legs, 0);
}

async fn two_nodes_writing_at_once_add_up_to_one_row_per_leg(url: String) {
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    // Both nodes see legs 0..400 (proxy copies); each also sees 100 of its own.
    let node = |s: Store, name: &'static str, own: i64| async move {
        let mut ids: Vec<i64> = (0..400).chain(own..own + 100).collect();
        if name == "node-b" {
            ids.reverse();
        }
        for chunk in ids.chunks(50) {
            let batch: Vec<LegWrite> = chunk
                .iter()
                .map(|i| {
                    let rules: &[&str] = if i % 4 == 0 { &["late_answer"] } else { &[] };
                    let mut l = leg(&format!("N{i:04}"), "8001", *i, rules);
                    l.node = name.into();
                    write(l)
                })
                .collect();
            let mut tries = 0;
            loop {
                match s.write_batch(&batch).await {
                    Ok(()) => break,
                    Err(e) if e.is_transient() && tries < 20 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }
    };
    let (ra, rb) = tokio::join!(
        tokio::spawn(node(a.clone(), "node-a", 1000)),
        tokio::spawn(node(b.clone(), "node-b", 2000))
    );
    ra.unwrap();
    rb.unwrap();
    let (n, flagged) = a.counts().await.unwrap();
    assert_eq!(n, 600);
    assert_eq!(flagged, 150);
    let sip = a.sip_messages("N0000").await.unwrap();
    assert_eq!(sip.len(), 6, "one SIP set, not two interleaved");
}

async fn spooled_legs_reach_the_store_once_after_a_crash(url: String) {
    let store = Store::open(&url).await.unwrap();
    let dir = TempDir::new("spool");
    let (mut w, r) = spool::open(&dir, 64 << 20, 64 << 10).unwrap();
    // The writer commits some batches, then "dies" (is aborted) while more arrive.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(WriterStats::default());
    let task = tokio::spawn(run_writer(store.clone(), r, 16, stop_rx, stats.clone()));
    for i in 0..200 {
        let l = leg(&format!("K{i:03}"), "8001", i, &["late_answer"]);
        w.append(&serde_json::to_vec(&write(l)).unwrap()).unwrap();
        if i == 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    task.abort();
    let _ = task.await;
    drop(stop_tx);
    drop(w);
    // Restart: the writer replays from its checkpoint and finishes.
    let (_w, r) = spool::open(&dir, 64 << 20, 64 << 10).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(WriterStats::default());
    let task = tokio::spawn(run_writer(store.clone(), r, 64, stop_rx, stats));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if store.counts().await.unwrap().0 == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not all legs stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), (200, 200));
    assert_eq!(
        store.sip_messages("K000").await.unwrap(),
        sip("call-K000", T0)
    );
}

/// 10,020 flagged legs in batches of 3,340 (87,000 leg parameters and 160,000 SIP
/// message parameters a batch: over SQLite's 32,766 and PostgreSQL's 65,535, so the
/// writer must split its statements), one leg written twice in a batch; then counts
/// exact up to 10,000 matches and "more than 10,000" above.
async fn big_batches_stay_within_the_bound_parameters_and_the_count_stops_at_its_cap(url: String) {
    let s = Store::open(&url).await.unwrap();
    let n = 10_020i64;
    let mut batch = Vec::new();
    for i in 0..n {
        let rules: &[&str] = if i % 501 == 0 {
            &["late_answer", "survey_missing"]
        } else {
            &["late_answer"]
        };
        batch.push(write(leg(&format!("N{i:05}"), "8001", i, rules)));
        if i == 7 {
            // The same leg again in the batch, seen by another node with one more rule.
            let mut again = leg("N00007", "8001", 7, &["late_answer", "long_hold"]);
            again.node = "node-b".into();
            batch.push(write(again));
        }
        if batch.len() >= 3_340 {
            s.write_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    s.write_batch(&batch).await.unwrap();
    assert_eq!(s.counts().await.unwrap(), (n, n));
    for id in ["N00000", "N05000", "N10019"] {
        let l = s.get_leg(id).await.unwrap().unwrap();
        assert_eq!(
            s.sip_messages(id).await.unwrap(),
            sip(&l.leg.call_id, l.leg.invite_at),
            "{id}: its SIP messages"
        );
    }
    let twice = s.get_leg("N00007").await.unwrap().unwrap();
    let mut rules: Vec<&str> = twice
        .leg
        .violations
        .iter()
        .map(|v| v.rule.as_str())
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        ["late_answer", "long_hold"],
        "the second write merged"
    );
    assert_eq!(twice.leg.node, "node-b", "the later write wins");

    let page = |f: LegFilter| LegFilter { limit: 50, ..f };
    let capped = s.list_legs(&page(LegFilter::default())).await.unwrap();
    assert_eq!(
        (capped.total, capped.total_exact, capped.items.len()),
        (COUNT_CAP, false, 50),
        "10,020 matches: more than 10,000"
    );
    let rule = s
        .list_legs(&page(LegFilter {
            rule: Some("survey_missing".into()),
            ..LegFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!((rule.total, rule.total_exact), (20, true));
    let rule_capped = s
        .list_legs(&page(LegFilter {
            rule: Some("late_answer".into()),
            ..LegFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        (rule_capped.total, rule_capped.total_exact),
        (COUNT_CAP, false)
    );
    // Exactly 10,000 matches is exact; 10,001 is not.
    let range = |to_s: i64| {
        page(LegFilter {
            from: Some(T0),
            to: Some(T0 + to_s * SEC),
            ..LegFilter::default()
        })
    };
    let exact = s.list_legs(&range(10_000)).await.unwrap();
    assert_eq!((exact.total, exact.total_exact), (10_000, true));
    let over = s.list_legs(&range(10_001)).await.unwrap();
    assert_eq!((over.total, over.total_exact), (10_000, false));
    let all = s
        .list_legs(&page(LegFilter {
            all: true,
            ..LegFilter::default()
        }))
        .await
        .unwrap();
    assert!(!all.total_exact);
}

/// Follows `next` from `f` until the list ends: the leg ids in the order met.
async fn chain(s: &Store, f: &LegFilter) -> Vec<String> {
    let mut ids = Vec::new();
    let mut f = f.clone();
    for _ in 0..1_000 {
        let p = s.list_legs(&f).await.unwrap();
        assert!(p.items.len() as i64 <= f.limit);
        ids.extend(p.items.iter().map(|l| l.leg.leg_id.clone()));
        match p.next {
            Some(c) => {
                assert_eq!(
                    p.items.len() as i64,
                    f.limit,
                    "a next after a full page only"
                );
                let token = c.encode();
                let back = Cursor::decode(&token).expect("a token decodes");
                assert_eq!(back, c);
                f.after = Some(back);
                f.offset = 0;
            }
            None => return ids,
        }
    }
    panic!("the chain did not end");
}

/// 137 flagged legs, ten to an invite time (and ids not in time order): pages of 7
/// chained by the keyset cursor list every leg once in list order, newest first and
/// oldest first, with and without filters; an offset page then its cursor continue.
async fn cursor_pages_chain_without_gaps_or_repeats_across_equal_timestamps(url: String) {
    let s = Store::open(&url).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..137i64 {
        // Ids run against time within a timestamp: C136 .. C000 scrambled by 7.
        let id = format!("C{:03}", (i * 7) % 137);
        let rules: &[&str] = if i % 3 == 0 {
            &["late_answer"]
        } else {
            &["survey_missing"]
        };
        batch.push(write(leg(&id, "8001", i / 10, rules)));
    }
    // One unflagged leg at a shared instant: only in all=true.
    batch.push(write(leg("C999", "8001", 5, &[])));
    s.write_batch(&batch).await.unwrap();

    for (name, base) in [
        ("flagged", LegFilter::default()),
        (
            "rule",
            LegFilter {
                rule: Some("late_answer".into()),
                ..LegFilter::default()
            },
        ),
        (
            "all",
            LegFilter {
                all: true,
                ..LegFilter::default()
            },
        ),
    ] {
        for asc in [false, true] {
            let whole = s
                .list_legs(&LegFilter {
                    asc,
                    limit: 1_000,
                    ..base.clone()
                })
                .await
                .unwrap();
            assert!(whole.next.is_none());
            let want: Vec<String> = whole.items.iter().map(|l| l.leg.leg_id.clone()).collect();
            assert_eq!(want.len() as i64, whole.total, "{name}");
            let mut sorted = want.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), want.len(), "{name}: no leg twice");
            // The list order: invite time, then leg_id (reversed for oldest first).
            let keys: Vec<(i64, String)> = whole
                .items
                .iter()
                .map(|l| (l.leg.invite_at, l.leg.leg_id.clone()))
                .collect();
            for w in keys.windows(2) {
                let ok = if asc {
                    w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 > w[1].1)
                } else {
                    w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)
                };
                assert!(ok, "{name} asc={asc}: {:?} before {:?}", w[0], w[1]);
            }
            let got = chain(
                &s,
                &LegFilter {
                    asc,
                    limit: 7,
                    ..base.clone()
                },
            )
            .await;
            assert_eq!(got, want, "{name} asc={asc}: pages of 7 by cursor");
            // Oldest first is newest first reversed.
            if asc {
                let desc = s
                    .list_legs(&LegFilter {
                        limit: 1_000,
                        ..base.clone()
                    })
                    .await
                    .unwrap();
                let mut rev: Vec<String> =
                    desc.items.iter().map(|l| l.leg.leg_id.clone()).collect();
                rev.reverse();
                assert_eq!(got, rev, "{name}: asc is desc reversed");
            }
        }
    }
    // An offset page, then its cursor: the same legs as one longer page.
    let f = LegFilter {
        limit: 10,
        offset: 20,
        ..LegFilter::default()
    };
    let p = s.list_legs(&f).await.unwrap();
    let q = s
        .list_legs(&LegFilter {
            after: p.next.clone(),
            offset: 0,
            ..f.clone()
        })
        .await
        .unwrap();
    let long = s
        .list_legs(&LegFilter {
            limit: 20,
            ..f.clone()
        })
        .await
        .unwrap();
    let ids = |v: &[callwatch::store::query::StoredLeg]| -> Vec<String> {
        v.iter().map(|l| l.leg.leg_id.clone()).collect()
    };
    assert_eq!([ids(&p.items), ids(&q.items)].concat(), ids(&long.items));
    // Tokens that are not ours decode to nothing.
    for bad in ["", "x", "!!!", "ZHwxfA", "eHwxfGE", "ZHx4fEM"] {
        assert_eq!(Cursor::decode(bad), None, "{bad:?}");
    }
}
