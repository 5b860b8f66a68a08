//! Findings over real HTTP on ephemeral ports: storage and the list, device,
//! one-finding and summary routes with their filters; tenant scoping through
//! every route and the live stream; the SSE stream read as raw text over a
//! real connection (ready, finding, Last-Event-ID resumption, shutdown with
//! a stream open); publication only after commit; idempotent replays; and
//! detectors' findings going through the whole server (RADIUS in, SSE out).

mod flows_support;

use flows_support::{config, now_ms, radclient, start_server, Acct, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simguard_engine::event::FlowRecord;
use simguard_engine::{
    Digits, Engine, EngineOptions, Evidence, Fact, Finding, FindingKind, Output, RecordRef,
    Severity, Subject,
};
use simguard_server::pipeline::SinkState;
use simguard_server::{EventHub, LiveEvent, Server};
use simguard_store::{FindingFilter, Role, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const HOUR: i64 = 3_600_000;
/// 2026-11-22T00:00:00Z
const T0: i64 = 1_795_305_600_000;
const ACME: &str = "acme-viewer-token";
const GLOBEX: &str = "globex-viewer-token";

fn finding(
    seq: u64,
    kind: FindingKind,
    subject: Subject,
    tenant: Option<&str>,
    sev: Severity,
    time: i64,
) -> Finding {
    Finding {
        id: Finding::make_id(seq, 0),
        kind,
        subject,
        tenant: tenant.map(str::to_string),
        group: tenant.map(|t| format!("{t}-meters")),
        severity: sev,
        time,
        onset: time - 60_000,
        confidence: 87,
        evidence: Evidence {
            summary: format!("{kind} #{seq}"),
            facts: vec![Fact {
                name: "bytes_per_day".into(),
                observed: "5000000".into(),
                expected: Some("<= 1000000".into()),
            }],
            baseline: "declared profile of group meters".into(),
            records: vec![RecordRef {
                seq,
                time,
                what: "interim".into(),
                detail: "session s1".into(),
            }],
            flows: vec![FlowRecord {
                start: time - 1000,
                end: time,
                src: "10.0.0.1".parse().unwrap(),
                dst: "192.0.2.7".parse().unwrap(),
                src_port: 40000,
                dst_port: 23,
                proto: 6,
                tcp_flags: 2,
                bytes: 60,
                packets: 1,
                sampling: 1,
            }],
        },
    }
}

fn dev(imsi: &str) -> Subject {
    Subject::Device(Digits::parse(imsi).unwrap())
}

/// Seven findings: five of acme (two devices), one of globex, one about a
/// cell that belongs to no tenant. Seqs 1..=7, times T0 + 1..=5 h.
fn corpus() -> Vec<Finding> {
    use FindingKind::*;
    use Severity::*;
    vec![
        finding(
            1,
            DeclaredVolume,
            dev("901700000000001"),
            Some("acme"),
            Warning,
            T0 + HOUR,
        ),
        finding(
            2,
            Scanning,
            dev("901700000000001"),
            Some("acme"),
            Critical,
            T0 + 2 * HOUR,
        ),
        finding(
            3,
            Roaming,
            dev("901700000000002"),
            Some("acme"),
            Major,
            T0 + 3 * HOUR,
        ),
        finding(
            4,
            Scanning,
            dev("901700000000009"),
            Some("globex"),
            Minor,
            T0 + 3 * HOUR,
        ),
        finding(
            5,
            Overload,
            Subject::Cell("901-70-1234/5678".into()),
            None,
            Major,
            T0 + 4 * HOUR,
        ),
        finding(
            6,
            Silent,
            dev("901700000000002"),
            Some("acme"),
            Major,
            T0 + 5 * HOUR,
        ),
        finding(
            7,
            SimSwap,
            dev("901700000000001"),
            Some("acme"),
            Critical,
            T0 + 5 * HOUR,
        ),
    ]
}

/// Writes findings through the sink path (SinkState -> StoreBatch -> one
/// transaction), as the engine's outputs would be.
fn seed(dir: &Path, findings: &[Finding]) {
    let mut store = Store::open(dir.join("simguard.db")).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let mut sink = SinkState::new(store.applied_seq().unwrap());
    for f in findings {
        let seq = f.id >> 8;
        sink.absorb(seq, &Output::Finding(Box::new(f.clone())));
        sink.advance(seq);
    }
    sink.flush(&mut store, &engine).unwrap();
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

    async fn get_as(&self, token: &str, path: &str) -> (StatusCode, Value) {
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
        let (s, v) = self.get_as(token, path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// The seqs of a findings page, in order.
    async fn seqs(&self, token: &str, path: &str) -> Vec<u64> {
        seqs(&self.ok(token, path).await)
    }

    async fn put(&self, path: &str, body: Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "PUT {path}");
    }

    async fn post(&self, path: &str, body: Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "POST {path}");
    }

    /// Opens the live stream and waits for its `ready` event.
    async fn stream(&self, token: &str, query: &str, last_event_id: Option<u64>) -> Sse {
        let mut r = self
            .http
            .get(format!("{}/api/v1/events{query}", self.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            r = r.header("Last-Event-ID", id.to_string());
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut s = Sse {
            resp,
            buf: String::new(),
        };
        let ready = s.next(Duration::from_secs(10)).await.expect("ready event");
        assert_eq!(ready.event, "ready", "{ready:?}");
        assert_eq!(ready.data["version"], 1);
        s
    }
}

fn seqs(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap().parse::<u64>().unwrap() >> 8)
        .collect()
}

fn add_key(dir: &Path, token: &str, tenant: Option<&str>) {
    Store::open(dir.join("simguard.db"))
        .unwrap()
        .add_api_key("test", token, Role::Viewer, tenant, 0)
        .unwrap();
}

/// One server-sent event as parsed from the raw text.
#[derive(Debug, Default)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A raw SSE reader over a real HTTP connection (no SSE library: the test
/// checks the wire format itself).
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    /// The next event (comments and keep-alives skipped), or None when
    /// nothing comes within `wait` or the stream ends.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                let mut data = String::new();
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => ev.event = value.to_string(),
                        "id" => ev.id = Some(value.to_string()),
                        "data" => data.push_str(value),
                        _ => {} // "" = a comment (keep-alive)
                    }
                }
                if !ev.event.is_empty() {
                    ev.data = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("data of {block:?}: {e}"));
                    return Some(ev);
                }
            }
            // A timeout, the end of the body or a closed connection: no event.
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next `finding` event's finding seq.
    async fn next_finding(&mut self, wait: Duration) -> Option<u64> {
        let ev = self.next(wait).await?;
        assert_eq!(ev.event, "finding", "{ev:?}");
        let id = ev.id.as_deref().expect("finding events carry an id");
        assert_eq!(ev.data["id"], id, "SSE id is the finding id");
        Some(id.parse::<u64>().unwrap() >> 8)
    }
}

async fn seeded_server() -> (tempfile::TempDir, Server, Client) {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), &corpus());
    add_key(dir.path(), ACME, Some("acme"));
    add_key(dir.path(), GLOBEX, Some("globex"));
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    (dir, server, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_are_listed_with_each_filter_and_paged() {
    let (_dir, server, c) = seeded_server().await;
    let all = c.ok(ADMIN, "/api/v1/findings").await;
    // Newest first; equal times by id, descending.
    assert_eq!(seqs(&all), vec![7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(all["next_cursor"], Value::Null);

    // The view: structured evidence, confidence 0..1, RFC 3339 and Unix ms.
    let f = &all["items"][6];
    assert_eq!(f["id"], Finding::make_id(1, 0).to_string());
    assert_eq!(f["type"], "declared_volume");
    assert_eq!(f["detector"], "declared");
    assert_eq!(
        f["subject"],
        json!({"type": "device", "id": "901700000000001"})
    );
    assert_eq!(f["imsi"], "901700000000001");
    assert_eq!(
        (&f["tenant"], &f["group"]),
        (&json!("acme"), &json!("acme-meters"))
    );
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["confidence"], 0.87);
    assert_eq!(f["time"], "2026-11-22T01:00:00.000Z");
    assert_eq!(f["time_ms"], T0 + HOUR);
    assert_eq!(f["onset_ms"], T0 + HOUR - 60_000);
    assert_eq!(f["summary"], "declared_volume #1");
    let e = &f["evidence"];
    assert_eq!(e["baseline"], "declared profile of group meters");
    assert_eq!(
        e["facts"][0],
        json!({"name": "bytes_per_day", "observed": "5000000", "expected": "<= 1000000"})
    );
    assert_eq!(e["records"][0]["seq"], 1);
    assert_eq!(e["records"][0]["what"], "interim");
    assert_eq!(e["flows"][0]["dst"], "192.0.2.7");
    assert_eq!(e["flows"][0]["dst_port"], 23);
    let cell = &all["items"][2];
    assert_eq!(
        cell["subject"],
        json!({"type": "cell", "id": "901-70-1234/5678"})
    );
    assert_eq!(cell["imsi"], Value::Null);
    assert_eq!(cell["tenant"], Value::Null);

    let q = |s: &'static str| c.seqs(ADMIN, s);
    assert_eq!(q("/api/v1/findings?type=scanning").await, vec![4, 2]);
    assert_eq!(
        q("/api/v1/findings?type=scanning,sim_swap").await,
        vec![7, 4, 2]
    );
    assert_eq!(
        q("/api/v1/findings?severity=major").await,
        vec![7, 6, 5, 3, 2]
    );
    assert_eq!(q("/api/v1/findings?severity=critical").await, vec![7, 2]);
    assert_eq!(q("/api/v1/findings?tenant=globex").await, vec![4]);
    assert_eq!(
        q("/api/v1/findings?group=acme-meters").await,
        vec![7, 6, 3, 2, 1]
    );
    assert_eq!(q("/api/v1/findings?imsi=901700000000002").await, vec![6, 3]);
    assert_eq!(
        q("/api/v1/findings?since=2026-11-22T03:00:00Z&until=2026-11-22T05:00:00Z").await,
        vec![5, 4, 3]
    );
    let ms = format!(
        "/api/v1/findings?since={}&until={}",
        T0 + 2 * HOUR,
        T0 + 3 * HOUR
    );
    assert_eq!(c.seqs(ADMIN, &ms).await, vec![2]);
    assert_eq!(
        q("/api/v1/findings?type=scanning&severity=major&tenant=acme").await,
        vec![2]
    );

    // Pages of 3 cover everything once, in order.
    let mut got = Vec::new();
    let mut path = "/api/v1/findings?limit=3".to_string();
    loop {
        let page = c.ok(ADMIN, &path).await;
        got.extend(seqs(&page));
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/findings?limit=3&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(got, vec![7, 6, 5, 4, 3, 2, 1]);

    // One finding, and the device route.
    let one = c
        .ok(
            ADMIN,
            &format!("/api/v1/findings/{}", Finding::make_id(3, 0)),
        )
        .await;
    assert_eq!(one["type"], "roaming");
    let (s, _) = c.get_as(ADMIN, "/api/v1/findings/999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad parameters are 400s that say what is wrong.
    for (bad, says) in [
        ("/api/v1/findings?type=nope", "unknown finding type"),
        ("/api/v1/findings?severity=huge", "severity"),
        ("/api/v1/findings?limit=0", "limit"),
        ("/api/v1/findings?cursor=zzz", "cursor"),
        ("/api/v1/findings?since=yesterday", "since"),
        (
            "/api/v1/findings?since=2026-11-23&until=2026-11-22",
            "before",
        ),
        ("/api/v1/findings?imsi=12", "imsi"),
    ] {
        let (s, v) = c.get_as(ADMIN, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{bad}: {msg}");
    }
    let (s, _) = c.get_as("not-a-token", "/api/v1/findings").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Summary: counts by type and severity, with the filters.
    let sum = c.ok(ADMIN, "/api/v1/findings/summary").await;
    assert_eq!(sum["total"], 7);
    assert_eq!(sum["by_type"]["scanning"], 2);
    assert_eq!(sum["by_type"]["ddos"], 0, "every type is listed");
    assert_eq!(
        sum["by_severity"],
        json!({"warning": 1, "minor": 1, "major": 3, "critical": 2})
    );
    assert!(sum["by_type_and_severity"]
        .as_array()
        .unwrap()
        .contains(&json!({"type": "scanning", "severity": "minor", "count": 1})));
    let sum = c
        .ok(ADMIN, "/api/v1/findings/summary?severity=critical")
        .await;
    assert_eq!(sum["total"], 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_key_sees_only_its_tenant_findings() {
    let (_dir, server, c) = seeded_server().await;
    let api = flows_support::Api::new(server.http_addr);
    api.send(
        reqwest::Method::POST,
        "/api/v1/devices",
        &json!({"devices": [
            {"imsi": "901700000000001", "tenant": "acme", "group": "acme-meters"},
            {"imsi": "901700000000009", "tenant": "globex", "group": "globex-meters"},
        ]}),
    )
    .await;

    assert_eq!(
        c.seqs(ACME, "/api/v1/findings").await,
        vec![7, 6, 3, 2, 1],
        "no globex finding and no tenantless one"
    );
    assert_eq!(c.seqs(GLOBEX, "/api/v1/findings").await, vec![4]);
    // Asking for another tenant never widens the scope.
    assert!(c
        .seqs(GLOBEX, "/api/v1/findings?tenant=acme")
        .await
        .is_empty());
    assert!(c
        .seqs(GLOBEX, "/api/v1/findings?imsi=901700000000001")
        .await
        .is_empty());
    let acme_one = format!("/api/v1/findings/{}", Finding::make_id(2, 0));
    assert_eq!(c.get_as(GLOBEX, &acme_one).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.get_as(ACME, &acme_one).await.0, StatusCode::OK);
    let cell = format!("/api/v1/findings/{}", Finding::make_id(5, 0));
    assert_eq!(c.get_as(ACME, &cell).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.get_as(ADMIN, &cell).await.0, StatusCode::OK);

    // The device route: another tenant's device does not exist for the caller.
    let acme_dev = "/api/v1/devices/901700000000001/findings";
    assert_eq!(c.get_as(GLOBEX, acme_dev).await.0, StatusCode::NOT_FOUND);
    assert_eq!(c.seqs(ACME, acme_dev).await, vec![7, 2, 1]);
    assert_eq!(
        c.seqs(ACME, &format!("{acme_dev}?type=scanning")).await,
        vec![2]
    );
    assert_eq!(
        c.seqs(
            GLOBEX,
            "/api/v1/devices/901700000000009/findings?severity=minor"
        )
        .await,
        vec![4]
    );
    let (s, _) = c
        .get_as(ADMIN, "/api/v1/devices/901799999999999/findings")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Summaries are scoped too.
    let sum = c.ok(GLOBEX, "/api/v1/findings/summary").await;
    assert_eq!(sum["total"], 1);
    assert_eq!(c.ok(ACME, "/api/v1/findings/summary").await["total"], 5);

    // And the stream: Last-Event-ID 0 replays all the caller may see.
    let mut g = c.stream(GLOBEX, "", Some(0)).await;
    assert_eq!(g.next_finding(Duration::from_secs(5)).await, Some(4));
    let mut a = c.stream(ACME, "", Some(0)).await;
    for want in [1, 2, 3, 6, 7] {
        assert_eq!(a.next_finding(Duration::from_secs(5)).await, Some(want));
    }
    // Live: an acme finding then a globex one; globex's first is its own.
    for f in [
        finding(
            20,
            FindingKind::Ddos,
            dev("901700000000001"),
            Some("acme"),
            Severity::Critical,
            T0 + 6 * HOUR,
        ),
        finding(
            21,
            FindingKind::Ddos,
            dev("901700000000009"),
            Some("globex"),
            Severity::Critical,
            T0 + 6 * HOUR,
        ),
    ] {
        server.events.publish(LiveEvent::Finding(Arc::new(f)));
    }
    assert_eq!(g.next_finding(Duration::from_secs(5)).await, Some(21));
    assert_eq!(a.next_finding(Duration::from_secs(5)).await, Some(20));
    assert!(
        a.next(Duration::from_millis(300)).await.is_none(),
        "acme never gets globex's finding"
    );
    drop((a, g));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_delivers_findings_published_after_subscribing() {
    let (_dir, server, c) = seeded_server().await;
    // Without Last-Event-ID the stream starts after the newest stored finding.
    let mut s = c.stream(ADMIN, "", None).await;
    let mut crit = c.stream(ADMIN, "?severity=critical&type=ddos", None).await;
    assert!(s.next(Duration::from_millis(200)).await.is_none());
    let f = finding(
        30,
        FindingKind::Ddos,
        dev("901700000000002"),
        Some("acme"),
        Severity::Major,
        T0 + 7 * HOUR,
    );
    let mut f2 = f.clone();
    f2.id = Finding::make_id(31, 0);
    f2.severity = Severity::Critical;
    server.events.publish(LiveEvent::Finding(Arc::new(f)));
    server.events.publish(LiveEvent::Finding(Arc::new(f2)));
    let ev = s
        .next(Duration::from_secs(5))
        .await
        .expect("a finding event");
    assert_eq!(ev.event, "finding");
    assert_eq!(ev.id, Some(Finding::make_id(30, 0).to_string()));
    assert_eq!(ev.data["type"], "ddos");
    assert_eq!(ev.data["imsi"], "901700000000002");
    assert_eq!(ev.data["confidence"], 0.87);
    assert_eq!(ev.data["evidence"]["facts"][0]["name"], "bytes_per_day");
    assert_eq!(s.next_finding(Duration::from_secs(5)).await, Some(31));
    // A filtered stream gets only what matches.
    assert_eq!(crit.next_finding(Duration::from_secs(5)).await, Some(31));

    // Resuming after 5 replays 6 and 7 from the store.
    let mut r = c.stream(ADMIN, "", Some(Finding::make_id(5, 0))).await;
    assert_eq!(r.next_finding(Duration::from_secs(5)).await, Some(6));
    assert_eq!(r.next_finding(Duration::from_secs(5)).await, Some(7));

    let (st, v) = c.get_as(ADMIN, "/api/v1/events?version=2").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = c.get_as(ADMIN, "/api/v1/events?type=nope").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Subscribers and events are on /metrics.
    let text = reqwest::get(format!("{}/metrics", c.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    };
    assert!(metric("simguard_events_subscribers") >= 3.0);
    assert!(metric("simguard_events_sent_total{type=\"finding\"}") >= 5.0);
    assert!(metric("simguard_events_replayed_total{type=\"finding\"}") >= 2.0);

    // Shutdown ends open streams instead of waiting for them forever.
    tokio::time::timeout(Duration::from_secs(20), server.shutdown())
        .await
        .expect("shutdown with open streams");
    for mut st in [s, crit, r] {
        assert!(st.next(Duration::from_secs(5)).await.is_none());
    }
}

#[tokio::test]
async fn findings_are_announced_only_after_their_commit_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("simguard.db");
    let mut store = Store::open(&path).unwrap();
    let reader = Store::open_reader(&path).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let hub = EventHub::new(16);
    let mut sub = hub.subscribe();
    let mut sink = SinkState::new(0).with_events(hub.clone());
    let f = corpus().remove(1);
    sink.absorb(2, &Output::Finding(Box::new(f.clone())));
    sink.advance(2);
    assert!(
        sub.rx.try_recv().is_err(),
        "nothing is announced before the commit"
    );
    sink.flush(&mut store, &engine).unwrap();
    match sub.rx.try_recv() {
        Ok(LiveEvent::Finding(got)) => {
            assert_eq!(*got, f);
            // Whoever sees the event can read the finding.
            assert_eq!(reader.finding(got.id).unwrap().as_ref(), Some(&f));
        }
        other => panic!("expected the finding, got {other:?}"),
    }
    // The same finding again in a later batch (a replay over a store that
    // had it): stored once, not announced again.
    // With it, a new one: only the new one is announced.
    let g = corpus().remove(2);
    sink.absorb(3, &Output::Finding(Box::new(f.clone())));
    sink.absorb(3, &Output::Finding(Box::new(g.clone())));
    sink.advance(3);
    sink.flush(&mut store, &engine).unwrap();
    match sub.rx.try_recv() {
        Ok(LiveEvent::Finding(got)) => assert_eq!(*got, g),
        other => panic!("expected the new finding, got {other:?}"),
    }
    assert!(sub.rx.try_recv().is_err(), "announced once");
    assert_eq!(
        reader
            .findings(&FindingFilter::default(), None, 10)
            .unwrap()
            .len(),
        2
    );
    // Outputs at or below what the store has are skipped altogether.
    let mut again = SinkState::new(store.applied_seq().unwrap()).with_events(hub.clone());
    again.absorb(2, &Output::Finding(Box::new(f)));
    again.advance(2);
    again.flush(&mut store, &engine).unwrap();
    assert!(sub.rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_stores_each_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), &corpus());
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let before = c.ok(ADMIN, "/api/v1/findings").await;
    server.shutdown().await;
    // The same findings written again under later sequences (what a replay
    // over a store that already has them amounts to): nothing doubles.
    let mut again = corpus();
    let mut store = Store::open(dir.path().join("simguard.db")).unwrap();
    let applied = store
        .apply_batch(&simguard_store::StoreBatch {
            seq: store.applied_seq().unwrap() + 1,
            findings: std::mem::take(&mut again),
            ..Default::default()
        })
        .unwrap();
    assert!(applied.written);
    assert!(applied.new_findings.is_empty());
    drop(store);
    let server = start_server(dir.path()).await;
    let c = Client::of(&server);
    let after = c.ok(ADMIN, "/api/v1/findings").await;
    assert_eq!(before, after);
    assert_eq!(c.ok(ADMIN, "/api/v1/findings/summary").await["total"], 7);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_documents_findings_and_the_stream() {
    let (_dir, server, c) = seeded_server().await;
    let doc = c.ok(ADMIN, "/api/v1/openapi.json").await;
    for p in [
        "/api/v1/findings",
        "/api/v1/findings/summary",
        "/api/v1/findings/{id}",
        "/api/v1/devices/{imsi}/findings",
        "/api/v1/events",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} documented");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/findings"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "type", "severity", "tenant", "group", "imsi", "since", "until", "cursor", "limit",
    ] {
        assert!(params.contains(&want), "{want} in {params:?}");
    }
    assert!(
        doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            .is_object()
    );
    assert!(doc["components"]["schemas"]["FindingView"].is_object());
    // The data of the `action_result` event (`action` is an ActionView).
    assert!(doc["components"]["schemas"]["ActionResultView"].is_object());
    server.shutdown().await;
}

/// Detectors' findings through the whole server: RADIUS accounting in, the
/// store, the list and the stream out, scoped by tenant.
#[tokio::test(flavor = "multi_thread")]
async fn detector_findings_flow_from_radius_to_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = flows_support::start_with(config(dir.path())).await;
    add_key(dir.path(), ACME, Some("acme"));
    add_key(dir.path(), GLOBEX, Some("globex"));
    let c = Client::of(&server);
    c.put("/api/v1/tenants/acme", json!({"name": "Acme"})).await;
    // NB-IoT only: the EUTRAN sessions below violate the declared profile.
    c.put(
        "/api/v1/groups/nbiot",
        json!({"tenant": "acme", "profile": {"allowed_rats": [8]}}),
    )
    .await;
    c.post(
        "/api/v1/devices",
        json!({"devices": [{"imsi": "901700000000101", "tenant": "acme", "group": "nbiot"}]}),
    )
    .await;
    let mut admin = c.stream(ADMIN, "", None).await;
    let mut acme = c.stream(ACME, "", None).await;
    let mut globex = c.stream(GLOBEX, "", None).await;

    let t = now_ms() / 1000;
    radclient(
        server.acct_addr,
        dir.path(),
        "findings",
        &[
            Acct {
                imsi: "901700000000101",
                ip: "10.1.0.1",
                status: "Start",
                session: "s-101",
                time: t,
                session_time: None,
            },
            Acct {
                imsi: "901709999999999",
                ip: "10.1.0.2",
                status: "Start",
                session: "s-999",
                time: t,
                session_time: None,
            },
        ],
    )
    .await;

    // The acme stream gets the device's finding, and the list has it at once.
    let ev = acme
        .next(Duration::from_secs(15))
        .await
        .expect("a finding for acme");
    assert_eq!(ev.event, "finding", "{ev:?}");
    assert_eq!(ev.data["type"], "disallowed_rat");
    assert_eq!(ev.data["tenant"], "acme");
    assert_eq!(ev.data["imsi"], "901700000000101");
    assert!(!ev.data["evidence"]["facts"].as_array().unwrap().is_empty());
    let id = ev.id.unwrap();
    let (s, one) = c.get_as(ACME, &format!("/api/v1/findings/{id}")).await;
    assert_eq!(s, StatusCode::OK, "published only once committed: {one}");

    // The operator sees both findings; the unprovisioned IMSI's belongs to no tenant.
    let mut kinds = BTreeMap::new();
    while kinds.len() < 2 {
        let ev = admin
            .next(Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("admin stream: only {kinds:?}"));
        if ev.event == "finding" {
            kinds.insert(
                ev.data["type"].as_str().unwrap().to_string(),
                ev.data["tenant"].clone(),
            );
        }
    }
    assert_eq!(kinds["disallowed_rat"], "acme");
    assert_eq!(kinds["unprovisioned"], Value::Null);
    assert!(
        globex.next(Duration::from_millis(500)).await.is_none(),
        "globex sees nothing"
    );
    let acme_types: Vec<Value> = c.ok(ACME, "/api/v1/findings").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].clone())
        .collect();
    assert!(acme_types.iter().all(|t| t != "unprovisioned"));
    assert!(acme_types.contains(&json!("disallowed_rat")));
    assert_eq!(
        seqs(&c.ok(ADMIN, "/api/v1/findings?type=unprovisioned").await).len(),
        1
    );
    drop((admin, acme, globex));
    server.shutdown().await;
}
