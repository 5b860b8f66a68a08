//! kill -9 while notifications are being delivered, then a restart on the
//! same data directory: nothing is lost, and what is sent twice is only
//! what could have been in flight, under the same webhook-id.
//!
//! The real binary (`simguard serve --config FILE`) posts to a slow webhook
//! receiver (`crates/notify/tests/peers/webhook_receiver.py --delay-ms 200`,
//! on a fixed port so the restarted server finds it). It logs each request
//! as it arrives, before answering, so a request the server sent just before
//! dying is in its log while the server never learnt the answer.

mod common;

use common::*;
use serde_json::Value;
use simguard_testkit::peers::python_with;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Alerts raised (one `unprovisioned` per IMSI not in the inventory).
const ALERTS: usize = 100;
/// `[notify] max_in_flight`: at most this many deliveries can be under way
/// (or answered but not yet recorded) when the server dies.
const MAX_IN_FLIGHT: usize = 16;
/// The receiver answers after this long, so deliveries are in flight.
const DELAY_MS: u64 = 200;
/// Kill once this many requests reached the receiver (of ALERTS; at
/// MAX_IN_FLIGHT / DELAY_MS = 80 a second the rest take about a second
/// more).
const KILL_AFTER: usize = 30;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn receiver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notify/tests/peers/webhook_receiver.py")
}

/// webhook_receiver.py on `port`, logging every request to `out`.
struct Receiver {
    child: Child,
    out: PathBuf,
}

impl Receiver {
    fn start(python: &str, port: u16, out: &Path) -> Receiver {
        let mut child = Command::new(python)
            .arg(receiver_script())
            .args(["--port", &port.to_string(), "--secret", WEBHOOK_SECRET])
            .args(["--delay-ms", &DELAY_MS.to_string(), "--out"])
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn webhook_receiver.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        if !line.starts_with("READY") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("webhook receiver said {line:?}");
        }
        Receiver {
            child,
            out: out.to_path_buf(),
        }
    }

    /// Every request so far, in arrival order.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn webhook_id(r: &Value) -> String {
    r["headers"]["webhook-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook-id: {r}"))
        .to_string()
}

fn config(data: &Path, port: u16) -> String {
    format!(
        r#"
data_dir = {data:?}

[http]
bind = "127.0.0.1:0"

[radius]
accounting_bind = "127.0.0.1:0"
auth_bind = "127.0.0.1:0"
clients = [{{ name = "pgw-test", address = "127.0.0.1/32", secret = "{SECRET}", require_message_authenticator = true }}]

[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"

[engine]
tick_ms = 100

[notify]
max_in_flight = {MAX_IN_FLIGHT}
retry_min_secs = 1
retry_max_secs = 2

[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "{WEBHOOK_SECRET}"
timeout_ms = 10000

[[notify.subscriptions]]
name = "soc"
channel = "siem"
"#,
        data = data.display().to_string()
    )
}

/// Accounting Starts for IMSIs not in the inventory, one per alert.
fn write_starts(path: &Path) -> Vec<String> {
    let imsis: Vec<String> = (0..ALERTS).map(|i| format!("9017066{i:08}")).collect();
    let packets: Vec<String> = imsis
        .iter()
        .enumerate()
        .map(|(i, imsi)| {
            packet(&[
                ("Acct-Status-Type", "Start".into()),
                ("Acct-Session-Id", q(&format!("nc-{imsi}"))),
                ("3GPP-IMSI", q(imsi)),
                ("3GPP-RAT-Type", "6".into()),
                (
                    "Framed-IP-Address",
                    format!("10.66.{}.{}", i / 250, i % 250 + 1),
                ),
                ("Message-Authenticator", "0x00".into()),
            ])
        })
        .collect();
    write_packets(path, &packets);
    imsis
}

/// Alert id → IMSI.
fn alerts(srv: &Server) -> BTreeMap<String, String> {
    let v = srv.get_json("/api/v1/alerts?limit=1000");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "unprovisioned", "{a}");
            (
                a["id"].as_str().unwrap().to_string(),
                a["imsi"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn siem(srv: &Server) -> Value {
    let ch = srv.get_json("/api/v1/notify/channels");
    ch.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "siem")
        .cloned()
        .unwrap_or_else(|| panic!("no siem channel: {ch}"))
}

fn time_of(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    simguard_engine::time::parse_rfc3339(s).unwrap_or_else(|| panic!("not RFC 3339: {s}"))
}

#[test]
fn kill_9_during_deliveries_loses_no_notification_and_resends_only_what_was_in_flight() {
    let Some(python) = python_with("http.server, hmac") else {
        if std::env::var_os("SIMGUARD_REQUIRE_PEERS").is_some() {
            panic!("python3 is missing and SIMGUARD_REQUIRE_PEERS is set");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED notify_crash: python3 is missing (set SIMGUARD_REQUIRE_PEERS to fail instead)"
        );
        return;
    };
    let tmp = tempdir("notify-crash");
    let data = tmp.path().join("data");
    let port = free_tcp_port();
    let rx = Receiver::start(&python, port, &tmp.path().join("webhooks.jsonl"));
    let file = tmp.path().join("simguard.toml");
    std::fs::write(&file, config(&data, port)).unwrap();
    let mut o = ServerOpts::new(&data);
    o.config = Some(file);
    // Ticks come from the file; only the token from the environment.
    o.env.clear();
    let mut srv = Server::start(&o);

    // ---- ALERTS alerts, delivered MAX_IN_FLIGHT at a time, slowly.
    let starts = tmp.path().join("starts.txt");
    let imsis = write_starts(&starts);
    let t_acct = Instant::now();
    let run = radclient(
        &starts,
        srv.acct,
        SECRET,
        &["-p", "25", "-r", "3", "-t", "2"],
    );
    assert_eq!(run.answered(), ALERTS, "{}\n{}", run.stdout, run.stderr);
    let acct_time = t_acct.elapsed();
    let t0 = Instant::now();
    loop {
        if rx.requests().len() >= KILL_AFTER {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "only {} webhooks arrived",
            rx.requests().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill_ms = now_ms();
    srv.kill9();
    // A request written just before the kill is still read and logged by
    // the receiver; nothing new can come.
    std::thread::sleep(Duration::from_millis(DELAY_MS + 500));
    let before = rx.requests();
    let before_ids: Vec<String> = before.iter().map(webhook_id).collect();
    assert!(
        before.len() < ALERTS,
        "the kill came too late: {} of {ALERTS} webhooks already arrived \
         (radclient took {acct_time:?})",
        before.len()
    );
    let before_set: BTreeSet<String> = before_ids.iter().cloned().collect();
    assert_eq!(
        before_set.len(),
        before_ids.len(),
        "a webhook sent twice before the kill: {before_ids:?}"
    );

    // ---- Restart on the same data directory; the outbox goes on.
    let restart_ms = now_ms();
    let srv = Server::start(&o);
    let t0 = Instant::now();
    let stats = loop {
        let s = siem(&srv);
        if s["sent"] == ALERTS && s["pending"] == 0 && s["retrying"] == 0 && s["failed"] == 0 {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "not every notification sent after the restart: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Nothing more arrives once all is recorded as sent.
    std::thread::sleep(Duration::from_millis(DELAY_MS + 500));
    let all = rx.requests();
    let after_ids: Vec<String> = all[before.len()..].iter().map(webhook_id).collect();

    // Every alert (the recovered store has all of them) was received under
    // its own webhook-id, signed, and acknowledged by the receiver.
    let alerts = alerts(&srv);
    assert_eq!(alerts.len(), ALERTS);
    assert_eq!(
        alerts.values().cloned().collect::<BTreeSet<_>>(),
        imsis.iter().cloned().collect::<BTreeSet<_>>()
    );
    let want: BTreeSet<String> = alerts.keys().map(|a| format!("{a}.raised")).collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in &all {
        assert_eq!(r["verified"], true, "signature: {r}");
        assert_eq!(r["status"], 200, "{r}");
        let id = webhook_id(r);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["id"], id.as_str(), "payload id = webhook-id: {r}");
        assert_eq!(body["type"], "alert.raised.v1", "{r}");
        // The payload's alert id is a JSON number.
        let alert = &body["data"]["alert"]["id"];
        assert!(alert.is_u64(), "{r}");
        assert_eq!(format!("{alert}.raised"), id, "{r}");
        *count.entry(id).or_default() += 1;
    }
    let got: BTreeSet<String> = count.keys().cloned().collect();
    assert_eq!(got, want, "every alert received, under its own id");

    // Duplicates: received before the kill and again after the restart,
    // never more often; at most what could have been in flight.
    let dups: BTreeSet<String> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &dups {
        assert_eq!(count[id], 2, "{id} received {} times", count[id]);
        assert!(before_set.contains(id), "{id}: twice after the restart");
        assert_eq!(
            after_ids.iter().filter(|a| *a == id).count(),
            1,
            "{id}: resent once, under the same webhook-id"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "notify_crash: {} webhooks before the kill, {} after the restart, {} received in all \
         for {ALERTS} alerts, {} duplicates (max_in_flight {MAX_IN_FLIGHT}; radclient took \
         {acct_time:?})",
        before.len(),
        after_ids.len(),
        all.len(),
        dups.len()
    );
    assert!(
        dups.len() <= MAX_IN_FLIGHT,
        "{} duplicates, more than the {MAX_IN_FLIGHT} deliveries that can be in flight: {dups:?}",
        dups.len()
    );
    assert!(
        !dups.is_empty(),
        "no delivery was in flight at the kill (receiver delay {DELAY_MS} ms)"
    );
    assert_eq!(all.len(), ALERTS + dups.len());

    // The attempts in the API agree: one delivered attempt per
    // notification; a duplicate's is after the restart (its first delivery
    // was never recorded), and what was recorded before the kill was not
    // sent again.
    let mut recorded_before = BTreeSet::new();
    for id in alerts.keys() {
        let ns = srv.get_json(&format!("/api/v1/alerts/{id}/notifications"));
        let ns = ns.as_array().unwrap();
        assert_eq!(ns.len(), 1, "one subscription: {ns:?}");
        let n = &ns[0];
        let wid = format!("{id}.raised");
        assert_eq!(n["message_id"], wid.as_str(), "{n}");
        assert_eq!(n["status"], "sent", "{n}");
        let attempts = n["attempts"].as_array().unwrap();
        let delivered: Vec<&Value> = attempts
            .iter()
            .filter(|a| a["result"] == "delivered")
            .collect();
        assert_eq!(delivered.len(), 1, "one delivered attempt: {n}");
        assert_eq!(
            attempts.len(),
            1,
            "the receiver never failed, so no other attempt: {n}"
        );
        let at = time_of(&delivered[0]["time"]);
        if dups.contains(&wid) {
            assert!(
                at >= restart_ms,
                "{wid} was received twice, its delivered attempt is from before the restart: {n}"
            );
        } else if at < kill_ms {
            assert!(
                before_set.contains(&wid),
                "{wid}: recorded delivered before the kill, not received before it: {n}"
            );
            recorded_before.insert(wid.clone());
        } else {
            assert!(at >= restart_ms, "{n}");
            assert!(
                !before_set.contains(&wid),
                "{wid} was received before the kill, once only, but recorded after the restart: {n}"
            );
        }
    }
    // Before the kill the receiver got exactly what was recorded as
    // delivered, plus what was lost in flight (and sent again).
    assert_eq!(
        before_set,
        recorded_before
            .union(&dups)
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(stats["attempts_retry"], 0, "{stats}");
    assert_eq!(stats["attempts_failed"], 0, "{stats}");
    // This run delivered what was not recorded before the kill.
    assert_eq!(
        stats["attempts_delivered"],
        ALERTS - recorded_before.len(),
        "{stats}"
    );
}
