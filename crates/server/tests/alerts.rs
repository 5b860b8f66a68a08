//! Alerts over real HTTP: repeats deduplicated into one active alert with a
//! count and the highest severity; acknowledge, comment and clear through
//! the API (who and when recorded); auto-clear of a `silent` alert when its
//! device comes online again; alerts from `notify` actions; tenant scoping;
//! replay and restart idempotency; the outbox written with every raise and
//! clear; alert changes on the live stream.

mod flows_support;

use flows_support::{start_server, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simguard_engine::rules::{Action, ActionKind, RuleMode};
use simguard_engine::{
    Digits, Engine, EngineOptions, Evidence, Finding, FindingKind, Output, Severity, Subject,
};
use simguard_server::pipeline::SinkState;
use simguard_server::Server;
use simguard_store::{Role, Store};
use std::path::Path;
use std::time::Duration;

/// 2026-11-22T00:00:00Z
const T0: i64 = 1_795_305_600_000;
const ACME_OP: &str = "acme-operator-token";
const ACME_VIEW: &str = "acme-viewer-token";
const GLOBEX_OP: &str = "globex-operator-token";
const DEV_A: &str = "901700000000001";
const DEV_B: &str = "901700000000002";
const DEV_G: &str = "901700000000009";

fn finding(seq: u64, kind: FindingKind, imsi: &str, tenant: &str, sev: Severity) -> Finding {
    Finding {
        id: Finding::make_id(seq, 0),
        kind,
        subject: Subject::Device(Digits::parse(imsi).unwrap()),
        tenant: Some(tenant.into()),
        group: Some(format!("{tenant}-meters")),
        severity: sev,
        time: T0 + seq as i64 * 1000,
        onset: T0,
        confidence: 80,
        evidence: Evidence {
            summary: format!("{kind} #{seq}"),
            ..Evidence::default()
        },
    }
}

fn notify(seq: u64, imsi: &str, tenant: &str, finding: Option<u64>, mode: RuleMode) -> Action {
    Action {
        id: Finding::make_id(seq, 0),
        time: T0 + seq as i64 * 1000,
        imsi: Digits::parse(imsi).unwrap(),
        tenant: Some(tenant.into()),
        group: Some(format!("{tenant}-meters")),
        actor: "rule:r1".into(),
        rule: Some("r1".into()),
        kind: ActionKind::Notify,
        mode,
        reason: format!("rule r1 on #{seq}"),
        finding,
        from: None,
        to: None,
        expires: None,
        step: 0,
        enforce: false,
    }
}

fn online(imsi: &str, seq: u64) -> Output {
    Output::CameOnline {
        imsi: Digits::parse(imsi).unwrap(),
        time: T0 + seq as i64 * 1000,
    }
}

/// The journal the tests write, as (seq, output) in order.
fn journal() -> Vec<(u64, Output)> {
    use FindingKind::*;
    use Severity::*;
    let f = |seq, k, imsi, t, s| (seq, Output::Finding(Box::new(finding(seq, k, imsi, t, s))));
    vec![
        // Three scans of A: one alert, count 3, critical (the highest).
        f(1, Scanning, DEV_A, "acme", Minor),
        f(2, Scanning, DEV_A, "acme", Critical),
        f(3, Scanning, DEV_A, "acme", Major),
        // B goes silent, reports again (clears), goes silent again (a new alert).
        f(4, Silent, DEV_B, "acme", Major),
        (5, online(DEV_B, 5)),
        f(6, Silent, DEV_B, "acme", Minor),
        // A notify action on the scan of seq 2: alert "rule:r1", critical.
        (
            7,
            Output::Action(Box::new(notify(
                7,
                DEV_A,
                "acme",
                Some(Finding::make_id(2, 0)),
                RuleMode::Enforce,
            ))),
        ),
        // A dry-run notify tells nobody.
        (
            8,
            Output::Action(Box::new(notify(8, DEV_B, "acme", None, RuleMode::DryRun))),
        ),
        // A scan of globex's device.
        f(9, Scanning, DEV_G, "globex", Warning),
        // A coming online clears nothing: its alert is not `silent`.
        (10, online(DEV_A, 10)),
    ]
}

/// Writes outputs through the sink path, one flush per `per_batch` outputs.
fn feed(dir: &Path, outputs: &[(u64, Output)], per_batch: usize) {
    let mut store = Store::open(dir.join("simguard.db")).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let mut sink = SinkState::new(store.applied_seq().unwrap());
    for chunk in outputs.chunks(per_batch.max(1)) {
        for (seq, o) in chunk {
            sink.absorb(*seq, o);
            sink.advance(*seq);
        }
        sink.flush(&mut store, &engine).unwrap();
    }
}

fn keys(dir: &Path) {
    let mut s = Store::open(dir.join("simguard.db")).unwrap();
    s.add_api_key("alice", ACME_OP, Role::Operator, Some("acme"), 0)
        .unwrap();
    s.add_api_key("victor", ACME_VIEW, Role::Viewer, Some("acme"), 0)
        .unwrap();
    s.add_api_key("gus", GLOBEX_OP, Role::Operator, Some("globex"), 0)
        .unwrap();
}

/// Raised and cleared notifications in the outbox (unrouted: no subscription
/// is configured here), against alerts and
/// cleared alerts: every raise and every clear queued exactly one.
fn outbox_matches(dir: &Path) -> (usize, usize) {
    let r = Store::open_reader(dir.join("simguard.db")).unwrap();
    let all = r
        .alerts(&simguard_store::AlertFilter::default(), None, 1000)
        .unwrap();
    let cleared = all
        .iter()
        .filter(|a| a.state == simguard_store::AlertState::Cleared)
        .count();
    let ob = r.outbox(None).unwrap();
    let raised = ob.iter().filter(|o| o.event == "raised").count();
    let clears = ob.iter().filter(|o| o.event == "cleared").count();
    assert_eq!(
        raised,
        all.len(),
        "one raised notification per alert: {ob:?}"
    );
    assert_eq!(
        clears, cleared,
        "one cleared notification per cleared alert"
    );
    assert!(ob
        .iter()
        .all(|o| o.status == "unrouted" && o.channel == "unrouted"));
    for a in &all {
        assert!(
            ob.iter()
                .any(|o| o.id == format!("{}.raised", a.id) && o.alert == Some(a.id)),
            "no raised notification for alert {}",
            a.id
        );
    }
    (all.len(), cleared)
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn of(server: &Server) -> Client {
        Client {
            base: format!("http://{}", server.http_addr),
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, token: &str, path: &str) -> Value {
        let (s, v) = self.get(token, path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn items(&self, token: &str, query: &str) -> Vec<Value> {
        self.ok(token, &format!("/api/v1/alerts{query}")).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn one<'a>(items: &'a [Value], kind: &str, imsi: &str, state: &str) -> &'a Value {
    let found: Vec<&Value> = items
        .iter()
        .filter(|a| a["type"] == kind && a["imsi"] == imsi && a["state"] == state)
        .collect();
    assert_eq!(found.len(), 1, "{kind} {imsi} {state} in {items:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn repeats_dedup_and_silent_alerts_clear_when_the_device_reports() {
    let dir = tempfile::tempdir().unwrap();
    // Two outputs per transaction: repeats and clears cross batches.
    feed(dir.path(), &journal(), 2);
    assert_eq!(outbox_matches(dir.path()), (5, 1));
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let all = c.items(ADMIN, "").await;
    assert_eq!(all.len(), 5, "{all:?}");

    let scan = one(&all, "scanning", DEV_A, "active");
    assert_eq!(scan["count"], 3);
    assert_eq!(scan["severity"], "critical");
    assert_eq!(scan["start_ms"], T0 + 1000);
    assert_eq!(scan["last_ms"], T0 + 3000);
    assert_eq!(scan["summary"], "scanning #3");
    assert_eq!(scan["finding"], Finding::make_id(3, 0).to_string());
    assert_eq!(scan["acknowledged"], false);

    let cleared = one(&all, "silent", DEV_B, "cleared");
    assert_eq!(cleared["count"], 1);
    assert_eq!(cleared["end_ms"], T0 + 5000);
    assert_eq!(cleared["cleared_by"], "auto: the device reported again");
    let again = one(&all, "silent", DEV_B, "active");
    assert_eq!(again["start_ms"], T0 + 6000);
    assert_eq!(again["severity"], "minor");

    let rule = one(&all, "rule:r1", DEV_A, "active");
    assert_eq!(rule["severity"], "critical", "the severity of its finding");
    assert_eq!(rule["summary"], "rule r1 on #7");
    assert!(all
        .iter()
        .all(|a| a["imsi"] != DEV_B || a["type"] != "rule:r1"));

    // Filters.
    let ids = |v: Vec<Value>| v.iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(c.items(ADMIN, "?state=cleared").await.len(), 1);
    assert_eq!(c.items(ADMIN, "?state=active").await.len(), 4);
    assert_eq!(c.items(ADMIN, "?severity=critical").await.len(), 2);
    assert_eq!(c.items(ADMIN, "?severity=minor").await.len(), 4);
    assert_eq!(c.items(ADMIN, "?type=silent").await.len(), 2);
    assert_eq!(c.items(ADMIN, "?type=silent,rule:r1").await.len(), 3);
    assert_eq!(c.items(ADMIN, &format!("?imsi={DEV_A}")).await.len(), 2);
    assert_eq!(c.items(ADMIN, "?tenant=globex").await.len(), 1);
    assert_eq!(c.items(ADMIN, "?group=acme-meters").await.len(), 4);
    assert_eq!(c.items(ADMIN, "?acknowledged=true").await.len(), 0);
    let (s, _) = c.get(ADMIN, "/api/v1/alerts?state=open").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Pages: newest first, the cursor continues without gaps or repeats.
    let mut paged = Vec::new();
    let mut q = "?limit=4".to_string();
    loop {
        let p = c.ok(ADMIN, &format!("/api/v1/alerts{q}")).await;
        paged.extend(p["items"].as_array().unwrap().clone());
        match p["next_cursor"].as_str() {
            Some(cur) => q = format!("?limit=4&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(ids(paged.clone()), ids(all.clone()));
    let starts: Vec<i64> = paged
        .iter()
        .map(|a| a["start_ms"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ack_comment_and_clear_record_who_and_when_within_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    feed(dir.path(), &journal(), 100);
    keys(dir.path());
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let all = c.items(ADMIN, "").await;
    let id = one(&all, "scanning", DEV_A, "active")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex_id = one(&all, "scanning", DEV_G, "active")["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Scoping: each tenant lists only its own; another tenant's is not found.
    let acme = c.items(ACME_OP, "").await;
    assert_eq!(acme.len(), 4);
    assert!(acme.iter().all(|a| a["tenant"] == "acme"));
    assert!(c.items(ACME_OP, "?tenant=globex").await.is_empty());
    assert_eq!(c.items(GLOBEX_OP, "").await.len(), 1);
    for path in [
        format!("/api/v1/alerts/{id}/ack"),
        format!("/api/v1/alerts/{id}/clear"),
        format!("/api/v1/alerts/{id}/comments"),
    ] {
        let (s, _) = c.post(GLOBEX_OP, &path, json!({"text": "mine"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _) = c.get(GLOBEX_OP, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c.get(ACME_OP, &format!("/api/v1/alerts/{globex_id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A viewer reads but changes nothing.
    let (s, _) = c
        .post(ACME_VIEW, &format!("/api/v1/alerts/{id}/ack"), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = c.post(ADMIN, "/api/v1/alerts/12345/ack", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (s, v) = c
        .post(ACME_OP, &format!("/api/v1/alerts/{id}/ack"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["alert"]["acknowledged"], true);
    assert_eq!(v["alert"]["acknowledged_by"], "alice");
    let at = v["alert"]["acknowledged_at_ms"].as_i64().unwrap();
    assert!(at >= before && at < before + 60_000, "{at} vs {before}");
    let (_, v) = c
        .post(ACME_OP, &format!("/api/v1/alerts/{id}/ack"), json!({}))
        .await;
    assert_eq!(v["changed"], false);
    assert_eq!(v["alert"]["acknowledged_at_ms"], at);

    let (s, v) = c
        .post(
            ACME_OP,
            &format!("/api/v1/alerts/{id}/comments"),
            json!({"text": "  truck in depot  "}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["author"], "alice");
    assert_eq!(v["text"], "truck in depot");
    let (s, _) = c
        .post(
            ACME_OP,
            &format!("/api/v1/alerts/{id}/comments"),
            json!({"text": " "}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = c
        .post(
            ACME_OP,
            &format!("/api/v1/alerts/{id}/comments"),
            json!({"note": "x"}),
        )
        .await;
    assert!(s.is_client_error());

    let (s, v) = c
        .post(ACME_OP, &format!("/api/v1/alerts/{id}/clear"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["alert"]["state"], "cleared");
    assert_eq!(v["alert"]["cleared_by"], "user:alice");
    assert!(v["alert"]["end_ms"].as_i64().unwrap() >= before);
    let (_, v) = c
        .post(ACME_OP, &format!("/api/v1/alerts/{id}/clear"), json!({}))
        .await;
    assert_eq!(v["changed"], false);

    let d = c.ok(ACME_OP, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(d["alert"]["state"], "cleared");
    assert_eq!(d["alert"]["acknowledged_by"], "alice");
    assert_eq!(d["comments"].as_array().unwrap().len(), 1);
    assert_eq!(d["comments"][0]["author"], "alice");
    assert_eq!(c.items(ADMIN, "?acknowledged=true").await.len(), 1);
    assert_eq!(
        c.items(ADMIN, "?acknowledged=false&state=active")
            .await
            .len(),
        3
    );
    server.shutdown().await;
    // The clear queued its notification with the change.
    assert_eq!(outbox_matches(dir.path()), (5, 2));

    // A new scan of A after the clear opens a new alert.
    feed(
        dir.path(),
        &[(
            20,
            Output::Finding(Box::new(finding(
                20,
                FindingKind::Scanning,
                DEV_A,
                "acme",
                Minor,
            ))),
        )],
        1,
    );
    assert_eq!(outbox_matches(dir.path()), (6, 2));
}

use Severity::Minor;

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_or_a_restart_changes_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    feed(dir.path(), &journal(), 3);
    let path = dir.path().join("simguard.db");
    let snapshot = |p: &Path| {
        let r = Store::open_reader(p).unwrap();
        (
            r.alerts(&simguard_store::AlertFilter::default(), None, 1000)
                .unwrap(),
            r.outbox(None).unwrap(),
        )
    };
    let before = snapshot(&path);
    assert_eq!(before.0.len(), 5);

    // The same journal again, under the sink's replay guard: skipped.
    feed(dir.path(), &journal(), 1);
    assert_eq!(snapshot(&path), before);
    // The same outputs in a batch past applied_seq (what a replay over a
    // store that already has them amounts to): each occurrence is known, so
    // no count moves, no alert opens and no clear repeats.
    let mut store = Store::open(&path).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let mut sink = SinkState::new(0);
    for (seq, o) in journal() {
        sink.absorb(seq, &o);
    }
    sink.advance(store.applied_seq().unwrap() + 1);
    sink.flush(&mut store, &engine).unwrap();
    drop(store);
    assert_eq!(snapshot(&path), before);

    // A restart of the server (recovery replays its journal) changes nothing either.
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    assert_eq!(c.items(ADMIN, "").await.len(), 5);
    server.shutdown().await;
    assert_eq!(snapshot(&path), before);
    outbox_matches(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_changes_go_on_the_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    feed(dir.path(), &journal(), 100);
    keys(dir.path());
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let all = c.items(ADMIN, "").await;
    let acme_id = one(&all, "silent", DEV_B, "active")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex_id = one(&all, "scanning", DEV_G, "active")["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut stream = c
        .http
        .get(format!("{}/api/v1/events", c.base))
        .bearer_auth(ACME_OP)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut text = String::new();
    // Wait for `ready` before changing anything.
    while !text.contains("event: ready") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("ready in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // globex's change first: acme's subscriber must not see it.
    let (s, _) = c
        .post(
            GLOBEX_OP,
            &format!("/api/v1/alerts/{globex_id}/ack"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = c
        .post(ACME_OP, &format!("/api/v1/alerts/{acme_id}/ack"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    while !text.contains("event: alert")
        || !text[text.find("event: alert").unwrap()..].contains("\n\n")
    {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("alert event in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let at = text.find("event: alert").unwrap();
    let block = &text[at..at + text[at..].find("\n\n").unwrap()];
    let data: Value = serde_json::from_str(
        block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data line"),
    )
    .unwrap();
    assert_eq!(
        data["id"],
        acme_id.as_str(),
        "the first alert event is acme's: {block}"
    );
    assert_eq!(data["acknowledged"], true);
    assert_eq!(data["acknowledged_by"], "alice");
    assert!(!block.lines().any(|l| l.starts_with("id:")), "{block}");
    assert!(!text.contains(&format!("\"id\":\"{globex_id}\"")));
    drop(stream);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_documents_the_alert_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let doc = c.ok(ADMIN, "/api/v1/openapi.json").await;
    for p in [
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/alerts/{id}/clear",
        "/api/v1/alerts/{id}/comments",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    assert!(doc["components"]["schemas"]["AlertView"].is_object());
    server.shutdown().await;
}
