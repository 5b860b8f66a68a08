//! The SMS channel against a real SMSC: node-smpp's server, driven by
//! `tests/peers/smsc/smsc.js` (install with `npm ci` in that directory).
//! Without node or its modules the tests are skipped, unless
//! SIMGUARD_REQUIRE_PEERS is set, when they fail.

use simguard_testkit::peers::free_port;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use simguard_notify::sms::{gsm, SmsChannel, SmsConfig};
use simguard_notify::{Message, Outcome};

const SYSTEM_ID: &str = "simguard";
const PASSWORD: &str = "secret";

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smsc")
}

/// Whether the SMSC can run here; skips (or fails, when peers are
/// required) otherwise.
fn peers_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = peer_dir().join("node_modules/smpp").is_dir();
    if node && modules {
        return true;
    }
    let why = if node {
        "node_modules missing: run `npm ci` in crates/notify/tests/peers/smsc"
    } else {
        "node not found"
    };
    if std::env::var_os("SIMGUARD_REQUIRE_PEERS").is_some() {
        panic!("SIMGUARD_REQUIRE_PEERS is set but the SMSC peer cannot run: {why}");
    }
    eprintln!("skipping SMPP peer test: {why}");
    false
}

/// The node SMSC and the JSON lines it printed.
struct Smsc {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Smsc {
    fn start(port: u16) -> Smsc {
        Self::start_logging_to(port, Arc::new(Mutex::new(Vec::new())))
    }

    /// Starts on `port`, appending to `events` (shared across restarts).
    fn start_logging_to(port: u16, events: Arc<Mutex<Vec<Value>>>) -> Smsc {
        let mut child = Command::new("node")
            .arg(peer_dir().join("smsc.js"))
            .arg(port.to_string())
            .arg(SYSTEM_ID)
            .arg(PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node smsc.js");
        let stdout = child.stdout.take().unwrap();
        let sink = events.clone();
        let listening = Arc::new(Mutex::new(false));
        let flag = listening.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("smsc: {line}");
                    continue;
                };
                if v["event"] == "listening" {
                    *flag.lock().unwrap() = true;
                }
                sink.lock().unwrap().push(v);
            }
        });
        let smsc = Smsc { child, events };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !*listening.lock().unwrap() {
            assert!(Instant::now() < deadline, "node SMSC did not start");
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

    /// Waits until at least `n` events called `name` were printed.
    async fn wait_events(&self, name: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.events(name);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} {name} events, have {}: {:?}",
                got.len(),
                self.events.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(port: u16) -> SmsConfig {
    SmsConfig {
        host: "127.0.0.1".into(),
        port,
        system_id: SYSTEM_ID.into(),
        password: PASSWORD.into(),
        response_timeout_ms: 2_000,
        reconnect_min_ms: 100,
        reconnect_max_ms: 1_000,
        ..SmsConfig::default()
    }
}

fn message(sms: &str, recipients: &[&str]) -> Message {
    Message {
        id: "alert-1.raised".into(),
        event_type: "alert.raised.v1".into(),
        time: 0,
        title: "[MAJOR] scanning".into(),
        text: String::new(),
        html: String::new(),
        sms: sms.into(),
        payload: Value::Null,
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
    }
}

async fn wait_bound(ch: &SmsChannel, within: Duration) {
    let deadline = Instant::now() + within;
    while !ch.is_bound() {
        assert!(
            Instant::now() < deadline,
            "not bound within {within:?}: {:?}",
            ch.health()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn delivered_ids(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Delivered {
            reference: Some(r), ..
        } => r.split(',').map(str::to_string).collect(),
        other => panic!("expected Delivered with a reference, got {other:?}"),
    }
}

#[tokio::test]
async fn submit_sm_addresses_and_text() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let (ch, _receipts) = SmsChannel::start(config(port)).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;
    let bind = &smsc.events("bind")[0];
    assert_eq!(bind["system_id"], SYSTEM_ID);
    assert_eq!(bind["interface_version"], 0x34);

    // GSM 7-bit, with extension-table characters and GSM-only letters.
    let text = "[MAJOR] scanning on 901700000000001 {acme} cost €5 ~ Grüße_@$";
    let outcome = ch
        .send(&message(text, &["+49 170 1234567", "+441234567890"]))
        .await;
    let ids = delivered_ids(&outcome);
    let subs = smsc.wait_events("submit_sm", 2).await;
    assert_eq!(ids.len(), 2);
    for (sub, (dest, id)) in subs
        .iter()
        .zip(["491701234567", "441234567890"].iter().zip(&ids))
    {
        assert_eq!(sub["source_addr"], "simguard");
        assert_eq!(sub["source_addr_ton"], 5);
        assert_eq!(sub["source_addr_npi"], 0);
        assert_eq!(sub["destination_addr"], *dest);
        assert_eq!(sub["dest_addr_ton"], 1);
        assert_eq!(sub["dest_addr_npi"], 1);
        assert_eq!(sub["esm_class"], 0);
        assert_eq!(sub["data_coding"], 0);
        assert_eq!(sub["registered_delivery"], 1);
        assert_eq!(sub["text"], text, "node-smpp's GSM decoding of our octets");
        assert_eq!(sub["short_message_hex"], hex(&gsm::encode(text).unwrap()));
        assert_eq!(sub["message_id"], id.as_str());
    }

    // Outside the GSM alphabet: UCS-2, surrogate pair included.
    let text = "Тревога: 🚨 SIM 901700000000001";
    let outcome = ch.send(&message(text, &["+491"])).await;
    assert_eq!(delivered_ids(&outcome).len(), 1);
    let sub = &smsc.wait_events("submit_sm", 3).await[2];
    assert_eq!(sub["data_coding"], 8);
    assert_eq!(sub["text"], text);
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(sub["short_message_hex"], hex(&utf16));
    ch.shutdown().await;
    smsc.wait_events("unbind", 1).await;
}

#[tokio::test]
async fn submit_sm_status_mapping() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let (ch, _receipts) = SmsChannel::start(config(port)).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;

    let failed = ch.send(&message("hi", &["+0000123"])).await;
    assert!(
        matches!(&failed, Outcome::Failed { detail } if detail.contains("ESME_RINVDSTADR")),
        "{failed:?}"
    );
    let throttled = ch.send(&message("hi", &["+9999123"])).await;
    assert!(
        matches!(&throttled, Outcome::Retry { detail } if detail.contains("ESME_RTHROTTLED")),
        "{throttled:?}"
    );
    let not_msisdn = ch.send(&message("hi", &["alice@example.com"])).await;
    assert!(
        matches!(not_msisdn, Outcome::Failed { .. }),
        "{not_msisdn:?}"
    );
    assert_eq!(smsc.wait_events("submit_sm", 2).await.len(), 2);
    ch.shutdown().await;
}

#[tokio::test]
async fn long_messages_are_concatenated() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let (ch, _receipts) = SmsChannel::start(config(port)).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;

    // 300 + 2 x 10 = 320 septets: 153 | 147 + 3 euros (6) | 7 euros (14).
    let gsm_text = format!("{}{}", "x".repeat(300), "€".repeat(10));
    let ids = delivered_ids(&ch.send(&message(&gsm_text, &["+491"])).await);
    let whole = &smsc.wait_events("reassembled", 1).await[0];
    assert_eq!(whole["total"], 3);
    assert_eq!(whole["data_coding"], 0);
    assert_eq!(whole["text"], gsm_text.as_str());
    assert_eq!(whole["part_lengths"], serde_json::json!([159, 159, 20]));
    assert_eq!(whole["message_ids"], serde_json::json!(ids));
    for sub in smsc.events("submit_sm") {
        assert_eq!(sub["esm_class"], 0x40);
    }
    let udhs: Vec<String> = smsc
        .events("submit_sm")
        .iter()
        .map(|s| s["udh"][0].as_str().unwrap().to_string())
        .collect();
    let reference = &udhs[0][4..6];
    assert_eq!(
        udhs,
        (1..=3)
            .map(|i| format!("0003{reference}03{i:02x}"))
            .collect::<Vec<_>>()
    );

    // UCS-2: 150 characters are 67 + 67 + 16.
    let ucs2_text = "Ж".repeat(150);
    let ids = delivered_ids(&ch.send(&message(&ucs2_text, &["+491"])).await);
    assert_eq!(ids.len(), 3);
    let whole = &smsc.wait_events("reassembled", 2).await[1];
    assert_eq!(whole["data_coding"], 8);
    assert_eq!(whole["text"], ucs2_text.as_str());
    assert_eq!(whole["part_lengths"], serde_json::json!([140, 140, 38]));
    assert_ne!(
        whole["ref"].as_u64().unwrap(),
        u64::from_str_radix(reference, 16).unwrap()
    );

    // Beyond max_parts (6): shortened, ending with an ellipsis.
    let huge = "abcd ".repeat(400);
    let ids = delivered_ids(&ch.send(&message(&huge, &["+491"])).await);
    assert_eq!(ids.len(), 6);
    let whole = &smsc.wait_events("reassembled", 3).await[2];
    let text = whole["text"].as_str().unwrap();
    assert!(text.ends_with("..."), "{text}");
    assert!(huge.starts_with(text.trim_end_matches("...")));
    assert!(
        text.len() > 6 * 153 - 8 && text.len() <= 6 * 153,
        "{}",
        text.len()
    );
    ch.shutdown().await;
}

#[tokio::test]
async fn delivery_receipt_carries_the_message_id() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let (ch, mut receipts) = SmsChannel::start(config(port)).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;

    let ids = delivered_ids(&ch.send(&message("receipt please", &["+491"])).await);
    let receipt = tokio::time::timeout(Duration::from_secs(5), receipts.recv())
        .await
        .expect("a receipt within 5 s")
        .expect("receipt channel open");
    assert_eq!(receipt.message_id, ids[0]);
    assert_eq!(receipt.state, "DELIVRD");
    assert_eq!(receipt.error.as_deref(), Some("000"));
    let resp = &smsc.wait_events("deliver_sm_resp", 1).await[0];
    assert_eq!(resp["command_status"], 0);
    assert_eq!(resp["message_id"], ids[0].as_str());

    // Two parts, two ids, a receipt for each.
    let ids = delivered_ids(&ch.send(&message(&"y".repeat(200), &["+491"])).await);
    assert_eq!(ids.len(), 2);
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(5), receipts.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(r.message_id);
    }
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    ch.shutdown().await;
}

#[tokio::test]
async fn reconnects_after_the_smsc_restarts() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut smsc = Smsc::start_logging_to(port, events.clone());
    let (ch, _receipts) = SmsChannel::start(config(port)).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;
    delivered_ids(&ch.send(&message("before", &["+491"])).await);

    smsc.kill();
    let deadline = Instant::now() + Duration::from_secs(3);
    while ch.is_bound() {
        assert!(Instant::now() < deadline, "still bound after the SMSC died");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let down = ch.send(&message("while down", &["+491"])).await;
    assert!(matches!(down, Outcome::Retry { .. }), "{down:?}");
    // Let a few reconnection attempts fail.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let down = ch.send(&message("still down", &["+491"])).await;
    assert!(
        matches!(&down, Outcome::Retry { detail } if detail.contains("127.0.0.1")),
        "{down:?}"
    );

    let smsc = Smsc::start_logging_to(port, events);
    // reconnect_max_ms is 1 s: bound again within one back-off step.
    wait_bound(&ch, Duration::from_secs(3)).await;
    let ids = delivered_ids(&ch.send(&message("after", &["+491"])).await);
    assert_eq!(ids.len(), 1);
    assert_eq!(ch.health().binds, 2);
    // The SMSC prints its log line asynchronously from its answer, so wait
    // for it. A message buffered while down would be sent on the new bind
    // before "after", so the order still shows one.
    let texts: Vec<Value> = smsc
        .wait_events("submit_sm", 2)
        .await
        .iter()
        .map(|s| s["text"].clone())
        .collect();
    assert_eq!(texts, vec!["before", "after"], "nothing sent while down");
    ch.shutdown().await;
}

#[tokio::test]
async fn enquire_link_on_the_configured_interval() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let cfg = SmsConfig {
        enquire_link_interval_ms: 200,
        ..config(port)
    };
    let (ch, _receipts) = SmsChannel::start(cfg).unwrap();
    wait_bound(&ch, Duration::from_secs(5)).await;
    let links = smsc.wait_events("enquire_link", 6).await;
    let at: Vec<i64> = links.iter().map(|e| e["at_ms"].as_i64().unwrap()).collect();
    let mut gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!((150..=300).contains(&median), "gaps {gaps:?}");
    assert!(ch.is_bound(), "answered enquire_links keep the session");
    ch.shutdown().await;
}

#[tokio::test]
async fn wrong_password_fails_the_bind() {
    if !peers_available() {
        return;
    }
    let port = free_port();
    let smsc = Smsc::start(port);
    let cfg = SmsConfig {
        password: "wrong".into(),
        ..config(port)
    };
    let (ch, _receipts) = SmsChannel::start(cfg).unwrap();
    let binds = smsc.wait_events("bind", 1).await;
    assert_eq!(binds[0]["ok"], false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ch.health().last_error.is_none() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!ch.is_bound());
    let outcome = ch.send(&message("hi", &["+491"])).await;
    assert!(
        matches!(&outcome, Outcome::Retry { detail }
            if detail.contains("bind_transceiver rejected: ESME_RBINDFAIL")),
        "{outcome:?}"
    );
    // It keeps trying, with back-off.
    smsc.wait_events("bind", 3).await;
    assert!(smsc.events("submit_sm").is_empty());
    ch.shutdown().await;
}
