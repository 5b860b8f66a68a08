//! The email channel against a real SMTP server: aiosmtpd running
//! `tests/peers/smtp_sink.py`, which records every message it accepts and
//! parses it with Python's own MIME implementation.
//!
//! Needs a Python with `aiosmtpd` (`SIMGUARD_PYTHON`, else `python3`, else
//! `/usr/bin/python3`) and, for the TLS tests, the `openssl` CLI. Without
//! them the tests are skipped, unless `SIMGUARD_REQUIRE_PEERS` is set.

use simguard_testkit::{
    need_peer,
    peers::{free_port, python_with, read_jsonl},
};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use simguard_notify::email::{EmailChannel, EmailConfig, TlsMode};
use simguard_notify::{Message, Outcome};

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_sink.py");

struct Sink {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    fn start(python: &str, args: &[&str]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.jsonl");
        let mut child = Command::new(python)
            .arg(SINK)
            .arg("--out")
            .arg(&out)
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
                panic!("smtp_sink.py did not start");
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
                panic!("smtp_sink.py said {line:?}");
            }
        };
        Sink {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    fn received(&self) -> Vec<Value> {
        read_jsonl(&self.out)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: TlsMode::None,
        username: None,
        password: None,
        from: "simguard alerts <alerts@simguard.test>".into(),
        timeout_ms: 5_000,
        accept_invalid_certs: false,
        hello_name: Some("simguard.test".into()),
    }
}

fn message(recipients: &[&str]) -> Message {
    Message {
        id: "a1b2c3.raised".into(),
        event_type: "alert.raised.v1".into(),
        time: 1_700_000_000_000,
        title: "[MAJOR] scanning on 901700000000001 (meters/acme) – Zürich".into(),
        text: "Device 901700000000001 scanned 412 addresses in 5 minutes.\n\
               Evidence: 412 distinct destinations, TCP/23.\n\
               https://console.example/alerts/a1b2c3"
            .into(),
        html: "<p>Device <b>901700000000001</b> scanned 412 addresses in 5 minutes.</p>\n\
               <p><a href=\"https://console.example/alerts/a1b2c3\">Open</a></p>"
            .into(),
        sms: "MAJOR scanning 901700000000001".into(),
        payload: serde_json::json!({"alert": "a1b2c3"}),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost: (cert, key).
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some((cert, key))
}

fn normalize(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_owned()
}

#[tokio::test]
async fn delivers_one_message_to_all_recipients_with_both_bodies_and_ids() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let sink = Sink::start(&py, &[]);
    let ch = EmailChannel::new(config(sink.port)).unwrap();
    let msg = message(&["ops@acme.test", "Night Shift <night@acme.test>"]);

    let outcome = ch.send(&msg).await;
    let Outcome::Delivered { detail, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.starts_with("250"), "{detail}");
    assert!(detail.contains("queued as sink-1"), "{detail}");
    assert!(ch.is_healthy());
    assert_eq!(ch.health().attempts, 1);

    let got = sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["mail_from"], "alerts@simguard.test");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@acme.test", "night@acme.test"])
    );
    assert_eq!(m["subject"], msg.title.as_str());
    assert!(
        m["from"].as_str().unwrap().contains("simguard alerts"),
        "{m}"
    );
    assert!(m["to"].as_str().unwrap().contains("night@acme.test"), "{m}");
    assert_eq!(m["message_id"], "<a1b2c3.raised@simguard>");
    assert_eq!(m["event"], "alert.raised.v1");
    assert_eq!(m["type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(
        normalize(parts[0]["content"].as_str().unwrap()),
        normalize(&msg.text)
    );
    assert_eq!(parts[1]["type"], "text/html");
    assert_eq!(
        normalize(parts[1]["content"].as_str().unwrap()),
        normalize(&msg.html)
    );
    assert_eq!(m["tls"], false);
    assert_eq!(m["auth_user"], Value::Null);

    // A retry of the same notification (over the pooled connection) carries
    // the same Message-ID, so the receiving side can drop the duplicate.
    let again = ch.send(&msg).await;
    assert!(matches!(again, Outcome::Delivered { .. }), "{again:?}");
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["message_id"], got[0]["message_id"]);
}

#[tokio::test]
async fn a_5xx_recipient_rejection_fails_and_a_4xx_retries() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let sink = Sink::start(
        &py,
        &["--reject", "gone@acme.test", "--tempfail", "full@acme.test"],
    );
    let ch = EmailChannel::new(config(sink.port)).unwrap();

    let outcome = ch
        .send(&message(&["ops@acme.test", "gone@acme.test"]))
        .await;
    let Outcome::Failed { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("550"), "{detail}");
    assert!(detail.contains("gone@acme.test"), "{detail}");
    assert!(!ch.is_healthy());

    let outcome = ch.send(&message(&["full@acme.test"])).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("451"), "{detail}");

    // Nothing was accepted: a refused recipient stops the whole message.
    assert!(sink.received().is_empty());

    // The channel recovers on the same pool once a message goes through.
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert!(ch.is_healthy());
    let h = ch.health();
    assert_eq!(h.attempts, 3);
    assert_eq!(h.consecutive_failures, 0);
    assert!(h.last_error.unwrap().contains("451"));
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_server_that_is_down_means_retry() {
    let ch = EmailChannel::new(EmailConfig {
        timeout_ms: 2_000,
        ..config(free_port())
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    assert!(!ch.is_healthy());
}

#[tokio::test]
async fn auth_over_starttls_with_a_self_signed_certificate() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = need_peer!(self_signed(dir.path()), "openssl");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // The sink requires STARTTLS before anything else and AUTH over TLS
    // before MAIL.
    let sink = Sink::start(
        &py,
        &[
            "--cert",
            cert,
            "--key",
            key,
            "--auth",
            "notifier:s3cret",
            "--auth-require-tls",
        ],
    );
    let lab = EmailConfig {
        tls: TlsMode::Starttls,
        username: Some("notifier".into()),
        password: Some("s3cret".into()),
        accept_invalid_certs: true,
        ..config(sink.port)
    };

    let ch = EmailChannel::new(lab.clone()).unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["auth_user"], "notifier");

    // A wrong password is refused for good (535).
    let ch = EmailChannel::new(EmailConfig {
        password: Some("wrong".into()),
        ..lab.clone()
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    let Outcome::Failed { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("535"), "{detail}");

    // Without accept_invalid_certs the self-signed certificate is refused:
    // the certificate really is checked.
    let ch = EmailChannel::new(EmailConfig {
        accept_invalid_certs: false,
        ..lab
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("certificate"), "{detail}");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn implicit_tls() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = need_peer!(self_signed(dir.path()), "openssl");
    let sink = Sink::start(
        &py,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--implicit-tls",
        ],
    );
    let ch = EmailChannel::new(EmailConfig {
        tls: TlsMode::Tls,
        accept_invalid_certs: true,
        ..config(sink.port)
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true);
}

#[tokio::test]
async fn a_stalled_server_means_retry_and_the_stalled_connection_is_not_reused() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let sink = Sink::start(&py, &["--stall", "slow@acme.test"]);
    let ch = EmailChannel::new(EmailConfig {
        timeout_ms: 1_000,
        ..config(sink.port)
    })
    .unwrap();
    // Warm the pool so the stalled send runs on a reused connection.
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");

    let started = std::time::Instant::now();
    let outcome = ch.send(&message(&["slow@acme.test"])).await;
    let Outcome::Retry { detail } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(detail.contains("1000 ms"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The next send must not pick up the connection left waiting for the
    // RCPT reply (lettre hands it back to its pool in the background, hence
    // the pause): it gets a fresh one and goes through.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut msg = message(&["ops@acme.test"]);
    msg.id = "second".into();
    let outcome = ch.send(&msg).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    let got = sink.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["message_id"], "<second@simguard>");
    assert_eq!(got[1]["rcpt_tos"], serde_json::json!(["ops@acme.test"]));
}

#[tokio::test]
async fn a_send_cancelled_by_the_caller_does_not_poison_the_pool() {
    let py = need_peer!(python_with("aiosmtpd"), "python3 with aiosmtpd");
    let sink = Sink::start(&py, &["--stall", "slow@acme.test"]);
    let ch = EmailChannel::new(EmailConfig {
        timeout_ms: 10_000,
        ..config(sink.port)
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");

    // The caller gives up before the channel's own limit.
    let cut = tokio::time::timeout(
        Duration::from_millis(500),
        ch.send(&message(&["slow@acme.test"])),
    )
    .await;
    assert!(cut.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn a_server_that_never_greets_means_retry() {
    // Accepts the connection and says nothing: the limit must cover more
    // than the connect.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ch = EmailChannel::new(EmailConfig {
        timeout_ms: 500,
        ..config(port)
    })
    .unwrap();
    let outcome = ch.send(&message(&["ops@acme.test"])).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    drop(listener);
}
