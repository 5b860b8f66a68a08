//! The webhook channel against a real HTTP receiver:
//! `tests/peers/webhook_receiver.py` (Python's http.server), which checks
//! the Standard Webhooks signature with its own hmac/hashlib/base64 code and
//! records every request.
//!
//! Needs a `python3` (`SIMGUARD_PYTHON`, else `python3`, else
//! `/usr/bin/python3`); without one the tests are skipped, unless
//! `SIMGUARD_REQUIRE_PEERS` is set.

use simguard_testkit::{
    need_peer,
    peers::{free_port, python_with, read_jsonl},
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use simguard_notify::webhook::{retry_after, WebhookChannel, WebhookConfig, USER_AGENT};
use simguard_notify::{Message, Outcome};

const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/peers/webhook_receiver.py"
);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// A receiver that knows `secret`, with extra arguments (see the
    /// script's docstring).
    fn start(python: &str, secret: &str, args: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("requests.jsonl");
        let mut child = Command::new(python)
            .arg(RECEIVER)
            .arg("--out")
            .arg(&out)
            .arg("--secret")
            .arg(secret)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("webhook_receiver.py did not start");
            }
        };
        let port = match line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        {
            Some(port) => port,
            None => {
                let _ = child.kill();
                panic!("webhook_receiver.py said {line:?}");
            }
        };
        Receiver {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Value> {
        read_jsonl(&self.out)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn channel(url: String) -> WebhookChannel {
    WebhookChannel::new(WebhookConfig {
        url,
        secret: SECRET.into(),
        timeout_ms: 5_000,
        headers: BTreeMap::new(),
    })
    .unwrap()
}

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        event_type: "alert.raised.v1".into(),
        time: 1_700_000_000_000,
        title: "[MAJOR] scanning on 901700000000001 (meters/acme)".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
        sms: "sms".into(),
        payload: json!({
            "type": "alert.raised.v1",
            "timestamp": "2023-11-14T22:13:20Z",
            "data": {
                "alert": "a1b2c3",
                "severity": "major",
                "subject": {"imsi": "901700000000001", "group": "meters/acme"},
                "title": "scanning – Zürich \"cell\" 4021",
                "evidence": [412, 0.93, null, true],
            }
        }),
        recipients: Vec::new(),
    }
}

#[tokio::test]
async fn a_delivered_webhook_verifies_and_carries_the_payload_exactly() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    let rx = Receiver::start(&py, SECRET, &[]);
    let ch = WebhookChannel::new(WebhookConfig {
        url: rx.url("/hooks/simguard?tenant=acme"),
        secret: SECRET.into(),
        timeout_ms: 5_000,
        headers: BTreeMap::from([("Authorization".into(), "Bearer gw-token".into())]),
    })
    .unwrap();
    let msg = message("a1b2c3.raised");

    let outcome = ch.send(&msg).await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            detail: "HTTP 200".into(),
            reference: None
        }
    );
    assert!(ch.is_healthy());
    assert_eq!(ch.last_retry_after(), None);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(r["timestamp_fresh"], true, "{r}");
    assert_eq!(r["path"], "/hooks/simguard?tenant=acme");
    let h = &r["headers"];
    assert_eq!(h["webhook-id"], "a1b2c3.raised");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["user-agent"], USER_AGENT);
    assert!(USER_AGENT.starts_with("simguard/"));
    assert_eq!(h["authorization"], "Bearer gw-token");
    assert!(h["webhook-signature"].as_str().unwrap().starts_with("v1,"));
    let ts: i64 = h["webhook-timestamp"].as_str().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() <= 5, "{ts} vs {now}");

    // Byte for byte the payload as serialized, and the same JSON value.
    let body = r["body"].as_str().unwrap();
    assert_eq!(body, serde_json::to_string(&msg.payload).unwrap());
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), msg.payload);
}

#[tokio::test]
async fn a_503_means_retry_and_the_retry_carries_the_same_webhook_id() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    let rx = Receiver::start(&py, SECRET, &["--fail-first", "1", "--retry-after", "7"]);
    let ch = channel(rx.url("/hook"));
    let msg = message("a1b2c3.raised");

    let first = ch.send(&msg).await;
    let Outcome::Retry { detail } = &first else {
        panic!("{first:?}");
    };
    assert!(detail.starts_with("HTTP 503"), "{detail}");
    assert_eq!(
        retry_after(detail),
        Some(Duration::from_secs(7)),
        "{detail}"
    );
    assert_eq!(ch.last_retry_after(), Some(Duration::from_secs(7)));
    assert!(!ch.is_healthy());

    let second = ch.send(&msg).await;
    assert!(matches!(second, Outcome::Delivered { .. }), "{second:?}");
    assert_eq!(ch.last_retry_after(), None);
    assert!(ch.is_healthy());

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0]["status"], 503);
    assert_eq!(reqs[1]["status"], 200);
    assert_eq!(reqs[0]["headers"]["webhook-id"], "a1b2c3.raised");
    assert_eq!(reqs[1]["headers"]["webhook-id"], "a1b2c3.raised");
    assert_eq!(reqs[0]["body"], reqs[1]["body"]);
    assert_eq!(reqs[0]["verified"], true);
    assert_eq!(reqs[1]["verified"], true);
}

#[tokio::test]
async fn a_429_with_an_http_date_retry_after() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let rx = Receiver::start(&py, SECRET, &["--status", "429", "--retry-after", &at]);
    let ch = channel(rx.url("/hook"));
    let outcome = ch.send(&message("x.1")).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.starts_with("HTTP 429"), "{detail}");
    let wait = retry_after(detail).unwrap();
    assert!(
        wait >= Duration::from_secs(100) && wait <= Duration::from_secs(121),
        "{wait:?}"
    );
}

#[tokio::test]
async fn status_codes_map_to_outcomes() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    for (status, retry) in [
        (400, false),
        (404, false),
        (410, false),
        (301, false),
        (408, true),
        (429, true),
        (500, true),
        (502, true),
        (503, true),
    ] {
        let rx = Receiver::start(&py, SECRET, &["--status", &status.to_string()]);
        let ch = channel(rx.url("/hook"));
        let outcome = ch.send(&message("x.1")).await;
        let detail = outcome.detail().to_owned();
        assert!(
            detail.starts_with(&format!("HTTP {status}")),
            "{status}: {detail}"
        );
        // The receiver's explanation is kept for whoever reads the failure.
        assert!(
            detail.contains(&format!("configured status {status}")),
            "{status}: {detail}"
        );
        match (retry, &outcome) {
            (true, Outcome::Retry { .. }) | (false, Outcome::Failed { .. }) => {}
            _ => panic!("{status}: {outcome:?}"),
        }
        // Exactly one request: redirects are not followed and nothing is
        // retried inside the channel.
        assert_eq!(rx.requests().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_means_retry() {
    let ch = channel(format!("http://127.0.0.1:{}/hook", free_port()));
    let outcome = ch.send(&message("x.1")).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    assert!(!ch.is_healthy());
}

#[tokio::test]
async fn a_slow_receiver_times_out_into_retry() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    let rx = Receiver::start(&py, SECRET, &["--delay-ms", "3000"]);
    let ch = WebhookChannel::new(WebhookConfig {
        url: rx.url("/hook"),
        secret: SECRET.into(),
        timeout_ms: 300,
        headers: BTreeMap::new(),
    })
    .unwrap();
    let started = std::time::Instant::now();
    let outcome = ch.send(&message("x.1")).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("timed out"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_tampered_secret_fails_verification_at_the_receiver() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    let rx = Receiver::start(&py, SECRET, &[]);
    // One bit off in the key: the receiver's own check must notice.
    let ch = WebhookChannel::new(WebhookConfig {
        url: rx.url("/hook"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx".into(),
        timeout_ms: 5_000,
        headers: BTreeMap::new(),
    })
    .unwrap();
    let outcome = ch.send(&message("a1b2c3.raised")).await;
    let Outcome::Failed { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.starts_with("HTTP 401"), "{detail}");
    assert!(detail.contains("signature does not verify"), "{detail}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["verified"], false);

    // The same receiver accepts the right secret, so the failure above is
    // the signature and nothing else.
    let outcome = channel(rx.url("/hook"))
        .send(&message("a1b2c3.raised"))
        .await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert_eq!(rx.requests()[1]["verified"], true);
}

#[tokio::test]
async fn a_raw_text_secret_is_used_as_is() {
    let py = need_peer!(python_with("http.server, hmac, hashlib, base64"), "python3");
    // The receiver treats a secret without `whsec_` as raw bytes too.
    let rx = Receiver::start(&py, "correct horse battery staple", &[]);
    let ch = WebhookChannel::new(WebhookConfig {
        url: rx.url("/hook"),
        secret: "correct horse battery staple".into(),
        timeout_ms: 5_000,
        headers: BTreeMap::new(),
    })
    .unwrap();
    let outcome = ch.send(&message("x.1")).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert_eq!(rx.requests()[0]["verified"], true);
}
