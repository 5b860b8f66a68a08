//! Admission control against a real peer: FreeRADIUS's `radclient` sends
//! Access-Requests as a GGSN/PGW would (3GPP attributes, Message-Authenticator)
//! to an in-process server on ephemeral ports; the inventory is provisioned
//! through the HTTP API, and the answers are read from what radclient prints.

use serde_json::{json, Value};
use simguard_server::config::Config;
use simguard_server::metrics::DropReason;
use simguard_server::{Server, StartOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const RADCLIENT: &str = "/usr/bin/radclient";
const SECRET: &str = "admission-test-secret";
const ADMIN: &str = "admission-admin-token";

const ACTIVE: &str = "901700000000001";
const BLOCKED: &str = "901700000000002";
const RETIRED: &str = "901700000000003";
const THROTTLED: &str = "901700000000004";
const QUARANTINED: &str = "901700000000005";
const UNKNOWN: &str = "901700000009999";
/// The IMEI the locked SIMs are bound to, and an IMEISV of that device.
const BOUND_IMEI: &str = "352099001761481";
const SAME_DEVICE: &str = "3520990017614823";
const OTHER_DEVICE: &str = "4901542032375181";

fn have_radclient() -> bool {
    if Path::new(RADCLIENT).exists() {
        return true;
    }
    eprintln!("SKIP: {RADCLIENT} is missing (apt-get install freeradius-utils)");
    false
}

struct Harness {
    server: Server,
    http: reqwest::Client,
    base: String,
    dir: tempfile::TempDir,
}

async fn start(extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
data_dir = "{}"
[http]
bind = "127.0.0.1:0"
[radius]
accounting_bind = "127.0.0.1:0"
auth_bind = "127.0.0.1:0"
{extra}
[[radius.clients]]
name = "pgw-test"
address = "127.0.0.1/32"
secret = "{SECRET}"
[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"
[engine]
tick_ms = 0
"#,
        dir.path().display()
    );
    let cfg = Config::from_toml(&toml, "test", std::iter::empty()).unwrap();
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(ADMIN.into()),
        },
    )
    .await
    .unwrap();
    let h = Harness {
        base: format!("http://{}", server.http_addr),
        server,
        http: reqwest::Client::new(),
        dir,
    };
    h.provision().await;
    h
}

impl Harness {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// A group locked to its IMEIs and to one German network, and one SIM
    /// in each lifecycle state.
    async fn provision(&self) {
        use reqwest::Method;
        self.call(Method::PUT, "/api/v1/tenants/acme", json!({"name": "Acme"}))
            .await;
        self.call(
            Method::PUT,
            "/api/v1/groups/meters",
            json!({
                "tenant": "acme",
                "profile": {
                    "imei_lock": true,
                    "allowed_networks": ["262-01"],
                    "allowed_countries": ["DE"],
                }
            }),
        )
        .await;
        let devices: Vec<Value> = [
            (ACTIVE, "active"),
            (BLOCKED, "blocked"),
            (RETIRED, "retired"),
            (THROTTLED, "throttled"),
            (QUARANTINED, "quarantined"),
        ]
        .iter()
        .map(|(imsi, l)| {
            json!({"imsi": imsi, "tenant": "acme", "group": "meters", "imei": BOUND_IMEI, "lifecycle": l})
        })
        .collect();
        self.call(
            Method::POST,
            "/api/v1/devices",
            json!({ "devices": devices }),
        )
        .await;
        // The API answers once the engine has applied the batch; check anyway.
        let engine = self.server.engine.read();
        for imsi in [ACTIVE, BLOCKED, RETIRED, THROTTLED, QUARANTINED] {
            let d = simguard_engine::Digits::parse(imsi).unwrap();
            assert!(engine.lifecycle(d).is_some(), "{imsi} not provisioned");
        }
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// What radclient got back for the one request in its file.
#[derive(Debug)]
struct Answer {
    /// "Access-Accept", "Access-Reject", or None without an answer.
    code: Option<String>,
    attrs: Vec<(String, String)>,
    stdout: String,
}

impl Answer {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The attributes of a GGSN's Access-Request for `imsi`.
fn request(imsi: &str, imeisv: &str, network: &str) -> String {
    format!(
        "User-Name = \"{imsi}\"\n\
         User-Password = \"iot\"\n\
         3GPP-IMSI = \"{imsi}\"\n\
         3GPP-IMEISV = \"{imeisv}\"\n\
         3GPP-SGSN-MCC-MNC = \"{network}\"\n\
         3GPP-RAT-Type = EUTRAN\n\
         Calling-Station-Id = \"491701234567\"\n\
         Called-Station-Id = \"iot.simguard\"\n\
         NAS-IP-Address = 127.0.0.1\n"
    )
}

/// Runs radclient once (no retransmission, 1 s wait) and parses its answer.
fn radclient(dir: &Path, to: SocketAddr, secret: &str, attrs: &str, with_ma: bool) -> Answer {
    let file = dir.join(format!("req-{}.txt", rand_suffix()));
    let mut body = attrs.to_string();
    if with_ma {
        // radclient fills in a Message-Authenticator it is asked for.
        body.push_str("Message-Authenticator = 0x00\n");
    }
    std::fs::write(&file, body).unwrap();
    let out = Command::new(RADCLIENT)
        .args(["-x", "-r", "1", "-t", "1", "-f"])
        .arg(&file)
        .arg(to.to_string())
        .arg("auth")
        .arg(secret)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut code = None;
    let mut attrs = Vec::new();
    let mut in_answer = false;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Received ") {
            code = rest.split_whitespace().next().map(str::to_string);
            in_answer = true;
        } else if line.starts_with("Sent ") || line.starts_with('(') {
            in_answer = false;
        } else if in_answer {
            if let Some((k, v)) = line.trim().split_once(" = ") {
                attrs.push((k.to_string(), v.trim_matches('"').to_string()));
            }
        }
    }
    Answer {
        code,
        attrs,
        stdout: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Waits (bounded) for a counter the receive thread bumps after radclient
/// has already given up on its answer.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_decides_and_throttled_gets_the_mapped_filter() {
    if !have_radclient() {
        return;
    }
    let h = start("").await;
    let to = h.server.auth_addr;
    let dir = h.dir.path().to_path_buf();
    let ask = move |imsi: &'static str| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            radclient(&dir, to, SECRET, &request(imsi, SAME_DEVICE, "26201"), true)
        })
    };

    let a = ask(ACTIVE).await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.stdout);
    assert_eq!(a.attr("Filter-Id"), None, "{}", a.stdout);
    // Our Message-Authenticator, first in the reply, passed radclient's check.
    assert!(
        a.attrs.iter().any(|(k, _)| k == "Message-Authenticator"),
        "{}",
        a.stdout
    );

    let a = ask(THROTTLED).await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.stdout);
    assert_eq!(
        a.attr("Filter-Id"),
        Some("simguard-throttle-64k"),
        "{}",
        a.stdout
    );

    let a = ask(QUARANTINED).await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.stdout);
    assert_eq!(
        a.attr("Filter-Id"),
        Some("simguard-quarantine"),
        "{}",
        a.stdout
    );

    for (imsi, why) in [(BLOCKED, "SIM is blocked"), (RETIRED, "SIM is retired")] {
        let a = ask(imsi).await.unwrap();
        assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.stdout);
        assert_eq!(a.attr("Reply-Message"), Some(why), "{}", a.stdout);
        assert_eq!(a.attr("Filter-Id"), None, "{}", a.stdout);
    }

    // Unprovisioned SIMs are admitted by default.
    let a = ask(UNKNOWN).await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.stdout);

    let s = &h.server.auth_stats;
    assert_eq!(s.accepted.load(Ordering::Relaxed), 4);
    assert_eq!(s.rejected.load(Ordering::Relaxed), 2);
    assert_eq!(s.dropped_total(), 0);
    let m = h.metrics().await;
    for line in [
        r#"simguard_radius_auth_decisions_total{outcome="accept",reason="throttled"}"#,
        r#"simguard_radius_auth_decisions_total{outcome="reject",reason="blocked"}"#,
        r#"simguard_radius_auth_decisions_total{outcome="reject",reason="retired"}"#,
        r#"simguard_radius_auth_decisions_total{outcome="accept",reason="unprovisioned"}"#,
    ] {
        assert!(m.contains(line), "{line} missing from /metrics");
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn imei_lock_and_serving_network_are_enforced() {
    if !have_radclient() {
        return;
    }
    let h = start("").await;
    let to = h.server.auth_addr;
    let dir = h.dir.path().to_path_buf();
    let ask = move |imei: &'static str, net: &'static str| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            radclient(&dir, to, SECRET, &request(ACTIVE, imei, net), true)
        })
    };
    // Another software version of the bound device: the same 14 digits.
    let a = ask("3520990017614899", "26201").await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.stdout);

    let a = ask(OTHER_DEVICE, "26201").await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.stdout);
    let msg = a.attr("Reply-Message").unwrap_or_default();
    assert!(
        msg.contains("IMEI lock") && msg.contains(OTHER_DEVICE),
        "{}",
        a.stdout
    );
    assert!(!msg.contains(BOUND_IMEI), "the bound IMEI leaked: {msg}");

    let a = ask(SAME_DEVICE, "20801").await.unwrap();
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.stdout);
    assert_eq!(
        a.attr("Reply-Message"),
        Some("serving network 208-01 is not allowed for this SIM"),
        "{}",
        a.stdout
    );

    let m = h.metrics().await;
    for line in [
        r#"simguard_radius_auth_decisions_total{outcome="reject",reason="imei_mismatch"}"#,
        r#"simguard_radius_auth_decisions_total{outcome="reject",reason="network_not_allowed"}"#,
    ] {
        assert!(m.contains(line), "{line} missing from /metrics");
    }
    assert_eq!(h.server.auth_stats.rejected.load(Ordering::Relaxed), 2);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unprovisioned_is_rejected_when_configured() {
    if !have_radclient() {
        return;
    }
    let h = start("reject_unprovisioned = true").await;
    let to = h.server.auth_addr;
    let dir = h.dir.path().to_path_buf();
    let (unknown, active) = tokio::task::spawn_blocking(move || {
        (
            radclient(
                &dir,
                to,
                SECRET,
                &request(UNKNOWN, SAME_DEVICE, "26201"),
                true,
            ),
            radclient(
                &dir,
                to,
                SECRET,
                &request(ACTIVE, SAME_DEVICE, "26201"),
                true,
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        unknown.code.as_deref(),
        Some("Access-Reject"),
        "{}",
        unknown.stdout
    );
    assert_eq!(
        unknown.attr("Reply-Message"),
        Some("SIM is not provisioned"),
        "{}",
        unknown.stdout
    );
    assert_eq!(
        active.code.as_deref(),
        Some("Access-Accept"),
        "{}",
        active.stdout
    );
    assert!(h.metrics().await.contains(
        r#"simguard_radius_auth_decisions_total{outcome="reject",reason="unprovisioned"}"#
    ));
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_secret_and_missing_message_authenticator_are_dropped_and_counted() {
    if !have_radclient() {
        return;
    }
    let h = start("").await;
    let to = h.server.auth_addr;
    let dir = h.dir.path().to_path_buf();
    let (wrong, bare, good) = tokio::task::spawn_blocking(move || {
        let req = request(ACTIVE, SAME_DEVICE, "26201");
        (
            radclient(&dir, to, "not-the-secret", &req, true),
            radclient(&dir, to, SECRET, &req, false),
            radclient(&dir, to, SECRET, &req, true),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        wrong.code, None,
        "answered a wrong secret: {}",
        wrong.stdout
    );
    assert_eq!(
        bare.code, None,
        "answered without Message-Authenticator: {}",
        bare.stdout
    );
    // The control: the same request, authenticated, is answered.
    assert_eq!(
        good.code.as_deref(),
        Some("Access-Accept"),
        "{}",
        good.stdout
    );
    let s = h.server.auth_stats.clone();
    eventually("drops counted", || s.dropped_total() == 2);
    assert_eq!(s.dropped(DropReason::BadMessageAuthenticator), 1);
    assert_eq!(s.dropped(DropReason::MissingMessageAuthenticator), 1);
    assert_eq!(s.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(s.rejected.load(Ordering::Relaxed), 0);
    let m = h.metrics().await;
    for line in [
        r#"simguard_radius_auth_dropped_total{reason="bad_message_authenticator"}"#,
        r#"simguard_radius_auth_dropped_total{reason="missing_message_authenticator"}"#,
    ] {
        let v: f64 = m
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(v >= 1.0, "{line} not counted on /metrics");
    }
    h.server.shutdown().await;
}
