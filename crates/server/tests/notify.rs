//! Notifications end to end, over real sockets: accounting from radclient
//! raises alerts (unprovisioned SIMs), the store routes them to a webhook
//! subscription, and the delivery worker posts them to a real HTTP receiver
//! (`crates/notify/tests/peers/webhook_receiver.py`) that checks the
//! Standard Webhooks signature with Python's own hmac, not our code.
//!
//! - An outage: the receiver answers 503 while 200 alerts are raised, then
//!   recovers. Every alert is delivered, each retry carries the webhook-id
//!   of its first attempt, the breaker spares the dead endpoint, and every
//!   attempt is visible in the API.
//! - Caps: over the cap, one digest at the window's end; a person's clear
//!   is notified.

mod flows_support;

use flows_support::{config_with, now_ms, start_with, unprovisioned, ADMIN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn receiver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notify/tests/peers/webhook_receiver.py")
}

/// The webhook receiver on `port`, logging to `out`; `extra` are its flags.
struct Receiver {
    child: Child,
    out: PathBuf,
}

impl Receiver {
    fn start(port: u16, out: &Path, extra: &[&str]) -> Receiver {
        let mut child = Command::new("/usr/bin/python3")
            .arg(receiver_script())
            .args(["--port", &port.to_string(), "--secret", SECRET, "--out"])
            .arg(out)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("READY"), "receiver said {line:?}");
        Receiver {
            child,
            out: out.to_path_buf(),
        }
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn notify_config(port: u16, extra: &str) -> String {
    format!(
        r#"
[notify]
retry_min_secs = 1
retry_max_secs = 2
breaker_failures = 3
breaker_open_secs = 1
{extra}
[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "{SECRET}"
timeout_ms = 2000
"#
    )
}

struct Http {
    base: String,
    c: reqwest::Client,
}

impl Http {
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

    async fn alert_ids(&self, want: usize) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let v = self.get("/api/v1/alerts?limit=1000").await;
            let ids: Vec<String> = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            if ids.len() >= want {
                return ids;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{} of {want} alerts",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn outbox(db: &Path) -> Vec<simguard_store::Notification> {
    simguard_store::Store::open_reader(db)
        .unwrap()
        .outbox(None)
        .unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_loses_nothing_and_every_retry_carries_the_same_webhook_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let down = Receiver::start(port, &dir.path().join("down.jsonl"), &["--status", "503"]);
    let cfg = config_with(
        dir.path(),
        &(notify_config(port, "")
            + "\n[[notify.subscriptions]]\nname = \"soc\"\nchannel = \"siem\"\n"),
    );
    let server = start_with(cfg).await;
    let http = Http {
        base: format!("http://{}", server.http_addr),
        c: reqwest::Client::new(),
    };
    let db = dir.path().join("simguard.db");

    unprovisioned(&server, dir.path(), 0, 200).await;
    let alerts = http.alert_ids(200).await;
    assert_eq!(alerts.len(), 200);
    // The outage lasts a few breaker periods.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = down.requests();
    assert!(!during.is_empty(), "the worker tried the endpoint");
    assert!(during.iter().all(|r| r["status"] == 503));
    // The breaker: a handful of probes, not 200 requests per retry round.
    assert!(
        during.len() < 40,
        "{} requests hit the dead endpoint",
        during.len()
    );
    let ob = outbox(&db);
    assert_eq!(ob.len(), 200);
    assert!(ob
        .iter()
        .all(|n| n.status == "pending" || n.status == "retrying"));
    let ready = http.get("/readyz").await;
    assert_eq!(
        ready["notifications"]["channels"]["siem"]["healthy"], false,
        "{ready}"
    );
    let ids_down: BTreeSet<String> = during
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap().to_string())
        .collect();
    down.stop();

    // Recovery.
    let up = Receiver::start(port, &dir.path().join("up.jsonl"), &[]);
    wait_for("every notification sent", Duration::from_secs(60), || {
        outbox(&db).iter().all(|n| n.status == "sent")
    })
    .await;
    let got = up.requests();
    assert!(
        got.iter().all(|r| r["verified"] == true),
        "signatures verify"
    );
    let ids_up: BTreeSet<String> = got
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = alerts.iter().map(|a| format!("{a}.raised")).collect();
    assert_eq!(ids_up, want, "every alert delivered, under its own id");
    assert!(got.len() >= 200);
    // What failed during the outage was retried under the same webhook-id.
    assert!(!ids_down.is_empty() && ids_down.is_subset(&ids_up));
    // The body is the versioned event.
    let body: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "alert.raised.v1");
    assert_eq!(body["data"]["alert"]["type"], "unprovisioned");

    // Every attempt is visible per notification.
    let retried = ids_down.iter().next().unwrap();
    let alert = retried.split('.').next().unwrap();
    let n = http
        .get(&format!("/api/v1/alerts/{alert}/notifications"))
        .await;
    let attempts = n[0]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{n}");
    assert_eq!(attempts[0]["result"], "retry");
    assert!(attempts[0]["detail"].as_str().unwrap().contains("503"));
    assert_eq!(attempts.last().unwrap()["result"], "delivered");
    assert_eq!(n[0]["status"], "sent");
    assert_eq!(n[0]["message_id"], format!("{alert}.raised"));

    let ch = http.get("/api/v1/notify/channels").await;
    assert_eq!(ch[0]["name"], "siem");
    assert_eq!(ch[0]["sent"], 200);
    assert!(ch[0]["attempts_retry"].as_u64().unwrap() >= 1);
    let ready = http.get("/readyz").await;
    assert_eq!(
        ready["notifications"]["channels"]["siem"]["healthy"], true,
        "{ready}"
    );
    let metrics = reqwest::get(format!("{}/metrics", http.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("simguard_notify_attempts_total"),
        "metrics"
    );
    server.shutdown().await;
    up.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_cap_comes_one_digest_and_a_clear_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let rx = Receiver::start(port, &dir.path().join("rx.jsonl"), &[]);
    let cfg = config_with(
        dir.path(),
        &(notify_config(port, "cap_window_secs = 4")
            + "\n[[notify.subscriptions]]\nname = \"soc\"\nchannel = \"siem\"\ncap = 3\n"),
    );
    let server = start_with(cfg).await;
    let http = Http {
        base: format!("http://{}", server.http_addr),
        c: reqwest::Client::new(),
    };
    // Caps count per fixed window (multiples of cap_window_secs): start the
    // ten just after a boundary, so that a slow machine cannot spread them
    // over two windows (two digests, or more than three sent at once).
    let into = now_ms().rem_euclid(4_000);
    if into > 250 {
        tokio::time::sleep(Duration::from_millis((4_050 - into) as u64)).await;
    }
    unprovisioned(&server, dir.path(), 500, 10).await;
    let alerts = http.alert_ids(10).await;
    let kinds = |rx: &Receiver| -> Vec<String> {
        rx.requests()
            .iter()
            .map(|r| {
                let b: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
                b["type"].as_str().unwrap().to_string()
            })
            .collect()
    };
    // Three go at once; the digest of the other seven at the window's end
    // (at most 4 s later).
    wait_for("the digest", Duration::from_secs(15), || {
        kinds(&rx).iter().any(|k| k == "alert.digest.v1")
    })
    .await;
    let k = kinds(&rx);
    assert_eq!(
        k.iter().filter(|k| *k == "alert.raised.v1").count(),
        3,
        "{k:?}"
    );
    assert_eq!(
        k.iter().filter(|k| *k == "alert.digest.v1").count(),
        1,
        "{k:?}"
    );
    let digest = rx
        .requests()
        .into_iter()
        .find(|r| r["body"].as_str().unwrap().contains("alert.digest.v1"))
        .unwrap();
    let b: Value = serde_json::from_str(digest["body"].as_str().unwrap()).unwrap();
    assert_eq!(b["data"]["count"], 7);
    let in_digest: BTreeSet<String> = b["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["alert"]["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| i["alert"]["id"].to_string())
        })
        .collect();
    assert_eq!(in_digest.len(), 7);
    assert_eq!(digest["verified"], true);
    let d = http
        .get(&format!(
            "/api/v1/notifications/{}",
            digest["headers"]["webhook-id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(d["members"].as_array().unwrap().len(), 7);
    assert!(d["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "digested"));

    // A person's clear in the next window goes straight out.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = http
        .c
        .post(format!("{}/api/v1/alerts/{}/clear", http.base, alerts[0]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    wait_for("the cleared notification", Duration::from_secs(10), || {
        rx.requests()
            .iter()
            .any(|r| r["headers"]["webhook-id"].as_str() == Some(&format!("{}.cleared", alerts[0])))
    })
    .await;
    server.shutdown().await;
    rx.stop();
}
