//! Notifications through the real server to real peers, over real sockets:
//! radclient accounting for IMSIs that are not in the inventory raises one
//! `unprovisioned` alert each, the store routes them to subscriptions, and
//! the server's delivery worker hands them to
//!
//! - a real SMTP server (aiosmtpd running
//!   `crates/notify/tests/peers/smtp_sink.py`, which parses every message
//!   with Python's own MIME implementation): one message per subscription
//!   recipient, with the subject, both bodies and the console link;
//! - a real SMSC (node-smpp running `crates/notify/tests/peers/smsc/smsc.js`,
//!   which answers every submit_sm with a delivery receipt): the submit_sm
//!   text and destination, and the receipt matched back to its notification
//!   (`receipt` = DELIVRD, `reference` = the SMSC's message ids);
//! - nobody, during quiet hours: below the quiet severity the notification
//!   is folded into a digest due when the quiet hours end.
//!
//! Needs a Python with `aiosmtpd` (`SIMGUARD_PYTHON`, else `python3`, else
//! `/usr/bin/python3`), and `node` with the SMSC's modules (`npm ci` in
//! `crates/notify/tests/peers/smsc`). Without them a test is skipped, unless
//! `SIMGUARD_REQUIRE_PEERS` is set, when it fails.

mod flows_support;

use flows_support::{config_with, now_ms, start_with, unprovisioned, ADMIN};
use serde_json::Value;
use simguard_testkit::{
    need_peer,
    peers::{free_port, python_with, read_jsonl},
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the links in messages point; not the server's own address, so the
/// test sees the configured value come through.
const CONSOLE: &str = "https://console.simguard.test";
const SMSC_SYSTEM_ID: &str = "simguard";
const SMSC_PASSWORD: &str = "secret";

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notify/tests/peers")
}

// ------------------------------------------------------------------ SMTP --

/// aiosmtpd on an ephemeral port, recording every accepted message.
struct SmtpSink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpSink {
    fn start(python: &str, out: &Path) -> SmtpSink {
        let mut child = Command::new(python)
            .arg(peers_dir().join("smtp_sink.py"))
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smtp_sink.py did not start: {line:?}");
        };
        SmtpSink {
            child,
            port,
            out: out.to_path_buf(),
        }
    }

    fn received(&self) -> Vec<Value> {
        read_jsonl(&self.out)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mail_channel(port: u16) -> String {
    format!(
        r#"
[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = {port}
tls = "none"
from = "simguard alerts <alerts@simguard.test>"
hello_name = "simguard.test"
timeout_ms = 5000
"#
    )
}

/// The text/plain and text/html parts of a received message.
fn bodies(m: &Value) -> (String, String) {
    let part = |ty: &str| -> String {
        let parts: Vec<&Value> = m["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == ty)
            .collect();
        assert_eq!(parts.len(), 1, "one {ty} part: {m}");
        parts[0]["content"].as_str().unwrap().to_string()
    };
    (part("text/plain"), part("text/html"))
}

// ------------------------------------------------------------------ SMSC --

/// Whether the node SMSC can run here, or why not.
fn smsc_available() -> Option<()> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = peers_dir().join("smsc/node_modules/smpp").is_dir();
    (node && modules).then_some(())
}

/// node-smpp's server and the JSON lines it printed.
struct Smsc {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Smsc {
    fn start(port: u16) -> Smsc {
        let mut child = Command::new("node")
            .arg(peers_dir().join("smsc/smsc.js"))
            .arg(port.to_string())
            .arg(SMSC_SYSTEM_ID)
            .arg(SMSC_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node smsc.js");
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => sink.lock().unwrap().push(v),
                    Err(_) => eprintln!("smsc: {line}"),
                }
            }
        });
        let smsc = Smsc { child, events };
        let t0 = Instant::now();
        while smsc.events("listening").is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "node SMSC did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        smsc
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == name)
            .cloned()
            .collect()
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- server --

fn notify_config(extra: &str) -> String {
    format!(
        r#"
[notify]
console_url = "{CONSOLE}"
retry_min_secs = 1
retry_max_secs = 2
{extra}
"#
    )
}

struct Http {
    base: String,
    c: reqwest::Client,
}

impl Http {
    fn new(server: &simguard_server::Server) -> Http {
        Http {
            base: format!("http://{}", server.http_addr),
            c: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Alert id → IMSI, once `want` alerts exist.
    async fn alerts(&self, want: usize) -> BTreeMap<String, String> {
        let t0 = Instant::now();
        loop {
            let v = self.get("/api/v1/alerts?limit=1000").await;
            let items = v["items"].as_array().unwrap();
            if items.len() >= want {
                return items
                    .iter()
                    .map(|a| {
                        assert_eq!(a["type"], "unprovisioned", "{a}");
                        assert_eq!(a["severity"], "major", "{a}");
                        (
                            a["id"].as_str().unwrap().to_string(),
                            a["imsi"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{} of {want} alerts",
                items.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The notifications of every alert, once `done` holds for all of them.
    async fn wait_notifications(
        &self,
        what: &str,
        alerts: &BTreeMap<String, String>,
        done: impl Fn(&Value) -> bool,
    ) -> BTreeMap<String, Vec<Value>> {
        let t0 = Instant::now();
        loop {
            let mut all = BTreeMap::new();
            for id in alerts.keys() {
                let v = self
                    .get(&format!("/api/v1/alerts/{id}/notifications"))
                    .await;
                all.insert(id.clone(), v.as_array().unwrap().clone());
            }
            if all.values().flatten().all(&done) {
                return all;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Polls `f` every 100 ms for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A channel's entry in `/api/v1/notify/channels`.
fn channel<'a>(channels: &'a Value, name: &str) -> &'a Value {
    channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name}: {channels}"))
}

/// What every notification of an alert should say about it, whatever the
/// channel: the title, the evidence line and the console link.
fn title(imsi: &str) -> String {
    format!("[MAJOR] unprovisioned on device {imsi}")
}

fn link(alert: &str) -> String {
    format!("{CONSOLE}/alerts/{alert}")
}

// ----------------------------------------------------------------- tests --

#[tokio::test(flavor = "multi_thread")]
async fn email_one_message_per_recipient_with_subject_bodies_and_link() {
    let python = need_peer!(python_with("aiosmtpd"), "a Python with aiosmtpd");
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&python, &dir.path().join("mail.jsonl"));
    let rcpts = ["ops@example.com", "noc@example.com"];
    let cfg = config_with(
        dir.path(),
        &(notify_config("")
            + &mail_channel(sink.port)
            + "\n[[notify.subscriptions]]\nname = \"ops\"\nchannel = \"mail\"\n\
               recipients = [\"ops@example.com\", \"noc@example.com\"]\n"),
    );
    let server = start_with(cfg).await;
    let http = Http::new(&server);

    unprovisioned(&server, dir.path(), 0, 3).await;
    let alerts = http.alerts(3).await;
    assert_eq!(alerts.len(), 3);
    wait_for("6 messages", Duration::from_secs(30), || {
        sink.received().len() >= 6
    })
    .await;
    let all = http
        .wait_notifications("every notification sent", &alerts, |n| {
            n["status"] == "sent"
        })
        .await;

    let got = sink.received();
    assert_eq!(
        got.len(),
        6,
        "one message per alert and recipient: {got:#?}"
    );
    for (id, imsi) in &alerts {
        let mine: Vec<&Value> = got
            .iter()
            .filter(|m| m["message_id"] == format!("<{id}.raised@simguard>"))
            .collect();
        // Each recipient on its own message (a row per recipient), so a
        // refused address never holds back the others.
        let to: BTreeSet<String> = mine
            .iter()
            .map(|m| {
                let r = m["rcpt_tos"].as_array().unwrap();
                assert_eq!(r.len(), 1, "one recipient per message: {m}");
                let rcpt = r[0].as_str().unwrap();
                assert!(m["to"].as_str().unwrap().contains(rcpt), "{m}");
                rcpt.to_string()
            })
            .collect();
        assert_eq!(
            to,
            rcpts.iter().map(|r| r.to_string()).collect(),
            "alert {id}"
        );
        for m in mine {
            assert_eq!(m["mail_from"], "alerts@simguard.test");
            let from = m["from"].as_str().unwrap();
            assert!(
                from.contains("simguard alerts") && from.contains("<alerts@simguard.test>"),
                "{m}"
            );
            assert_eq!(m["event"], "alert.raised.v1");
            assert_eq!(m["type"], "multipart/alternative");
            let subject = m["subject"].as_str().unwrap();
            assert!(
                subject.contains("MAJOR")
                    && subject.contains("unprovisioned")
                    && subject.contains(imsi.as_str()),
                "subject: {subject}"
            );
            assert_eq!(subject, title(imsi));
            let (text, html) = bodies(m);
            // The device, what happened, the evidence and the link, each on
            // its line.
            let line = |prefix: &str| -> String {
                text.lines()
                    .find(|l| l.starts_with(prefix))
                    .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
                    .to_string()
            };
            assert_eq!(line("Device:"), format!("Device: device {imsi}"));
            assert!(
                line("What happened:").starts_with("What happened: unprovisioned raised at "),
                "{text}"
            );
            let evidence = line("Evidence:");
            assert!(
                evidence.contains(&format!("IMSI {imsi}"))
                    && evidence.contains("not provisioned")
                    && evidence.ends_with("(against inventory)"),
                "{evidence}"
            );
            assert_eq!(line("Severity:"), "Severity: major");
            assert_eq!(
                line("Open in the console:"),
                format!("Open in the console: {}", link(id))
            );
            // The HTML body says the same, and links the alert.
            assert!(
                html.contains(&format!("<h2>{}</h2>", title(imsi))),
                "{html}"
            );
            assert!(
                html.contains(&format!("<td>device {imsi}</td>")),
                "device in HTML: {html}"
            );
            assert!(html.contains("unprovisioned raised at"), "{html}");
            assert!(
                html.contains(&format!("IMSI {imsi}")) && html.contains("(against inventory)"),
                "evidence in HTML: {html}"
            );
            assert!(
                html.contains(&format!("<a href=\"{}\">", link(id))),
                "link in HTML: {html}"
            );
        }
        // The outbox: a row per recipient, each sent after one delivered
        // attempt.
        let rows = &all[id];
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let row_rcpts: BTreeSet<&str> = rows
            .iter()
            .map(|n| n["recipient"].as_str().unwrap())
            .collect();
        assert_eq!(row_rcpts, rcpts.into_iter().collect());
        for n in rows {
            assert_eq!(n["status"], "sent", "{n}");
            assert_eq!(n["channel"], "mail", "{n}");
            assert_eq!(n["subscription"], "ops", "{n}");
            assert_eq!(n["message_id"], format!("{id}.raised"), "{n}");
            assert!(n["done"].is_string(), "{n}");
            let attempts = n["attempts"].as_array().unwrap();
            assert_eq!(attempts.len(), 1, "{n}");
            assert_eq!(attempts[0]["result"], "delivered", "{n}");
            assert!(
                attempts[0]["detail"].as_str().unwrap().starts_with("250"),
                "the SMTP server's answer: {n}"
            );
        }
    }

    let ch = http.get("/api/v1/notify/channels").await;
    let mail = channel(&ch, "mail");
    assert_eq!(mail["type"], "email");
    assert_eq!(mail["sent"], 6, "{mail}");
    assert_eq!(mail["attempts_delivered"], 6, "{mail}");
    assert_eq!(mail["healthy"], true, "{mail}");
    let ready = http.get("/readyz").await;
    assert_eq!(
        ready["notifications"]["channels"]["mail"],
        serde_json::json!({"type": "email", "healthy": true, "circuit": "closed"}),
        "{ready}"
    );
    server.shutdown().await;
}

/// The SMS subscription's two recipients.
const SMS_RCPTS: [&str; 2] = ["+491701234567", "+447700900123"];

/// A server whose `oncall` subscription sends to [`SMS_RCPTS`] over the
/// SMSC on `port`.
async fn sms_server(dir: &Path, port: u16) -> simguard_server::Server {
    let cfg = config_with(
        dir,
        &(notify_config("")
            + &format!(
                r#"
[notify.channels.pager]
type = "sms"
host = "127.0.0.1"
port = {port}
system_id = "{SMSC_SYSTEM_ID}"
password = "{SMSC_PASSWORD}"
source_addr = "simguard"
response_timeout_ms = 5000
reconnect_min_ms = 100
reconnect_max_ms = 1000

[[notify.subscriptions]]
name = "oncall"
channel = "pager"
recipients = ["{}", "{}"]
"#,
                SMS_RCPTS[0], SMS_RCPTS[1]
            )),
    );
    start_with(cfg).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sms_reaches_the_smsc_and_its_delivery_receipt_comes_back_to_the_notification() {
    need_peer!(
        smsc_available(),
        "node or the SMSC's node_modules (`npm ci` in crates/notify/tests/peers/smsc)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smsc = Smsc::start(port);
    let server = sms_server(dir.path(), port).await;
    let http = Http::new(&server);

    unprovisioned(&server, dir.path(), 100, 2).await;
    let alerts = http.alerts(2).await;
    assert_eq!(alerts.len(), 2);
    // Sent, and the SMSC's receipt matched back to the row.
    let all = http
        .wait_notifications("every notification's delivery receipt", &alerts, |n| {
            n["status"] == "sent" && n["receipt"] == "DELIVRD"
        })
        .await;

    // The SMSC sends a receipt for every submit_sm it accepted, and we
    // acknowledge each.
    wait_for(
        "a receipt, acknowledged, for every submit_sm",
        Duration::from_secs(10),
        || {
            let n = smsc.events("submit_sm").len();
            smsc.events("receipt").len() == n && smsc.events("deliver_sm_resp").len() == n
        },
    )
    .await;
    let submits: BTreeMap<String, Value> = smsc
        .events("submit_sm")
        .into_iter()
        .map(|s| (s["message_id"].as_str().unwrap().to_string(), s))
        .collect();
    let receipts: BTreeSet<String> = smsc
        .events("receipt")
        .iter()
        .map(|r| r["message_id"].as_str().unwrap().to_string())
        .collect();
    let mut referenced = BTreeSet::new();
    for (id, imsi) in &alerts {
        let rows = &all[id];
        assert_eq!(rows.len(), 2, "a row per recipient: {rows:#?}");
        for n in rows {
            assert_eq!(n["status"], "sent", "{n}");
            assert_eq!(n["channel"], "pager", "{n}");
            assert_eq!(n["receipt"], "DELIVRD", "{n}");
            assert!(n["receipt_time"].is_string(), "{n}");
            let attempts = n["attempts"].as_array().unwrap();
            assert_eq!(attempts.last().unwrap()["result"], "delivered", "{n}");
            let rcpt = n["recipient"].as_str().unwrap();
            assert!(SMS_RCPTS.contains(&rcpt), "{n}");
            // `reference` holds the SMSC's message id of every part, in
            // order; their texts put together are the whole SMS.
            let ids: Vec<&str> = n["reference"]
                .as_str()
                .unwrap_or_else(|| panic!("no reference: {n}"))
                .split(',')
                .collect();
            assert!(!ids.is_empty(), "{n}");
            let mut text = String::new();
            for mid in &ids {
                let s = submits
                    .get(*mid)
                    .unwrap_or_else(|| panic!("{mid} of {n} is no submit_sm the SMSC took"));
                // International TON/NPI, the number without its '+'.
                assert_eq!(s["destination_addr"], rcpt.trim_start_matches('+'), "{s}");
                assert_eq!(s["dest_addr_ton"], 1, "{s}");
                assert_eq!(s["dest_addr_npi"], 1, "{s}");
                assert_eq!(s["source_addr"], "simguard", "{s}");
                assert_eq!(s["registered_delivery"], 1, "{s}");
                assert_eq!(s["command_status"], 0, "{s}");
                assert!(receipts.contains(*mid), "the SMSC sent a receipt for {mid}");
                text.push_str(s["text"].as_str().unwrap());
                assert!(referenced.insert(mid.to_string()), "{mid} referenced twice");
            }
            assert!(
                text.starts_with(&format!("{}: ", title(imsi))),
                "SMS text: {text:?}"
            );
            assert!(
                text.contains(&format!("IMSI {imsi}")) && text.contains("not provisioned"),
                "evidence in the SMS: {text:?}"
            );
            assert!(
                text.ends_with(&format!(" {}", link(id))),
                "link in the SMS: {text:?}"
            );
        }
    }
    // Every submit_sm belongs to exactly one notification: nothing was sent
    // twice or to anyone else.
    assert_eq!(
        referenced,
        submits.keys().cloned().collect::<BTreeSet<_>>(),
        "submit_sm events not referenced by any notification"
    );

    let ch = http.get("/api/v1/notify/channels").await;
    let pager = channel(&ch, "pager");
    let acked = smsc.events("deliver_sm_resp");
    assert!(acked.iter().all(|r| r["command_status"] == 0), "{acked:?}");
    assert_eq!(pager["type"], "sms", "{pager}");
    assert_eq!(pager["healthy"], true, "{pager}");
    assert_eq!(pager["circuit"], "closed", "{pager}");
    assert_eq!(pager["sent"], 4, "{pager}");
    // Each row's DELIVRD is a receipt matched to it (every receipt is
    // matched in time: see the test under load below).
    let matched = pager["receipts"].as_u64().unwrap();
    assert!(
        (4..=receipts.len() as u64).contains(&matched),
        "{} receipts sent: {pager}",
        receipts.len()
    );
    assert!(pager["endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&format!("smpp://{SMSC_SYSTEM_ID}@127.0.0.1:{port}")));
    let ready = http.get("/readyz").await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(
        ready["notifications"]["channels"]["pager"],
        serde_json::json!({"type": "sms", "healthy": true, "circuit": "closed"}),
        "{ready}"
    );
    assert_eq!(ready["notifications"]["healthy"], true, "{ready}");
    server.shutdown().await;
    // A clean stop unbinds from the SMSC.
    wait_for("the unbind", Duration::from_secs(10), || {
        !smsc.events("unbind").is_empty()
    })
    .await;
}

/// "HH:MM-HH:MM" (UTC) from an hour before now to two hours after.
fn quiet_hours_around_now() -> String {
    let m = (now_ms() / 60_000).rem_euclid(1440);
    let hm = |x: i64| {
        let x = x.rem_euclid(1440);
        format!("{:02}:{:02}", x / 60, x % 60)
    };
    format!("{}-{}", hm(m - 60), hm(m + 120))
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_an_alert_for_the_digest_and_nothing_reaches_that_recipient() {
    let python = need_peer!(python_with("aiosmtpd"), "a Python with aiosmtpd");
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&python, &dir.path().join("mail.jsonl"));
    let quiet = quiet_hours_around_now();
    // "day" is the control: same alerts, same channel, no quiet hours.
    // "night" is in its quiet hours, and a major alert is below its quiet
    // severity (critical by default).
    let cfg = config_with(
        dir.path(),
        &(notify_config("")
            + &mail_channel(sink.port)
            + &format!(
                r#"
[[notify.subscriptions]]
name = "day"
channel = "mail"
recipients = ["day@example.com"]

[[notify.subscriptions]]
name = "night"
channel = "mail"
recipients = ["night@example.com"]
min_severity = "minor"
quiet_hours = "{quiet}"
quiet_min_severity = "critical"
utc_offset_minutes = 0
"#
            )),
    );
    let server = start_with(cfg).await;
    let http = Http::new(&server);
    let t_raise = now_ms();

    unprovisioned(&server, dir.path(), 200, 2).await;
    let alerts = http.alerts(2).await;
    assert_eq!(alerts.len(), 2);
    let all = http
        .wait_notifications("day sent, night digested", &alerts, |n| {
            match n["subscription"].as_str() {
                Some("day") => n["status"] == "sent",
                _ => n["status"] == "digested",
            }
        })
        .await;
    // The control reached the SMTP server; give the worker a few more loops
    // (it looks at the outbox at least every 5 s) to send anything it
    // would wrongly send to the quiet recipient.
    wait_for("the control messages", Duration::from_secs(30), || {
        sink.received().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = sink.received();
    let to: Vec<&str> = got
        .iter()
        .flat_map(|m| m["rcpt_tos"].as_array().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        ["day@example.com", "day@example.com"],
        "only the control's messages went out: {got:#?}"
    );

    let mut digests = BTreeSet::new();
    for (id, rows) in &all {
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let night = rows
            .iter()
            .find(|n| n["subscription"] == "night")
            .unwrap_or_else(|| panic!("alert {id} not routed to night: {rows:#?}"));
        assert_eq!(night["status"], "digested", "{night}");
        assert_eq!(night["recipient"], "night@example.com", "{night}");
        assert!(
            night["attempts"].as_array().unwrap().is_empty(),
            "held, not tried: {night}"
        );
        digests.insert(night["digest"].as_str().unwrap().to_string());
    }
    // Both wait in one digest for the recipient, due when the quiet hours
    // end (one to two hours from now), untried.
    assert_eq!(digests.len(), 1, "{digests:?}");
    let digest = digests.into_iter().next().unwrap();
    assert!(
        digest.starts_with("digest.night:night@example.com."),
        "{digest}"
    );
    let d = http.get(&format!("/api/v1/notifications/{digest}")).await;
    let dn = &d["notification"];
    assert_eq!(dn["status"], "pending", "{d}");
    assert_eq!(dn["event"], "digest", "{d}");
    assert!(dn["attempts"].as_array().unwrap().is_empty(), "{d}");
    let due = simguard_engine::time::parse_rfc3339(dn["due"].as_str().unwrap()).unwrap();
    let two_hours = 7_200_000;
    assert!(
        due > t_raise + two_hours - 180_000 && due <= t_raise + two_hours + 60_000,
        "due {} (quiet hours {quiet}), raised at {t_raise}: {d}",
        dn["due"]
    );
    assert_eq!(
        due % 60_000,
        0,
        "quiet hours end on a whole minute: {}",
        dn["due"]
    );
    let members: BTreeSet<&str> = d["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["status"], "digested", "{m}");
            m["alert"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        members,
        alerts.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );

    let ch = http.get("/api/v1/notify/channels").await;
    let mail = channel(&ch, "mail");
    assert_eq!(mail["sent"], 2, "{mail}");
    assert_eq!(mail["digested"], 2, "{mail}");
    assert_eq!(mail["pending"], 1, "the digest: {mail}");
    assert_eq!(mail["attempts_delivered"], 2, "{mail}");
    server.shutdown().await;
}

/// Every receipt the SMSC sends belongs to a notification, so every one
/// must be matched, under some load (120 notifications, each SMS in two
/// parts, so 240 receipts). The test SMSC sends each receipt 20 ms after
/// its submit_sm_resp, so a receipt often reaches the worker before the
/// attempt that learnt its message id is recorded: the worker keeps such
/// receipts and matches them after the next records (it once dropped
/// them: 236 to 238 of 240 matched).
#[tokio::test(flavor = "multi_thread")]
async fn every_delivery_receipt_is_matched_under_load() {
    need_peer!(
        smsc_available(),
        "node or the SMSC's node_modules (`npm ci` in crates/notify/tests/peers/smsc)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smsc = Smsc::start(port);
    let server = sms_server(dir.path(), port).await;
    let http = Http::new(&server);

    const ALERTS: u64 = 60;
    unprovisioned(&server, dir.path(), 300, ALERTS).await;
    let alerts = http.alerts(ALERTS as usize).await;
    assert_eq!(alerts.len() as u64, ALERTS);
    let t0 = Instant::now();
    let (sent, receipts) = loop {
        let sent = channel(&http.get("/api/v1/notify/channels").await, "pager")["sent"]
            .as_u64()
            .unwrap();
        let n = smsc.events("submit_sm").len();
        let receipts = smsc.events("receipt").len();
        if sent == 2 * ALERTS && receipts == n && smsc.events("deliver_sm_resp").len() == n {
            break (sent, receipts as u64);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "sent {sent}, {n} submit_sm, {receipts} receipts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Give the worker ample time to handle what the SMSC sent.
    let t0 = Instant::now();
    loop {
        let pager = channel(&http.get("/api/v1/notify/channels").await, "pager").clone();
        if pager["receipts"] == receipts {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{sent} SMS sent, {receipts} receipts sent by the SMSC and acknowledged, \
             matched: {}",
            pager["receipts"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
