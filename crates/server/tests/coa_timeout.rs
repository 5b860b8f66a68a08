//! The RFC 5176 client when the NAS does not answer at all: a UDP socket
//! that reads every request and never replies (a gateway that is down, or a
//! firewall that eats the packets). The client retransmits the very same
//! bytes `attempts` times and gives up with `Timeout`; through the whole
//! pipeline (a person's action on a device whose session belongs to that
//! NAS) the audit says `timeout` with the number of transmissions.

use simguard_radius::{attr, Code, PacketWriter};
use simguard_server::coa::Enforcer;
use simguard_server::config::Config;
use simguard_server::{EnforceAction, EnforceRequest, EnforceResult, Server, StartOptions};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "coa-timeout-secret";
const IMSI: &str = "901700000000077";
const TOKEN: &str = "coa-timeout-admin";
const ATTEMPTS: u32 = 3;

/// A NAS that hears and never answers: every datagram it receives, in order.
struct DeafNas {
    port: u16,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl DeafNas {
    fn start() -> DeafNas {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        // Lives until the test process ends; it only ever reads.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                g.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        DeafNas { port, got }
    }

    fn received(&self) -> Vec<Vec<u8>> {
        self.got.lock().unwrap().clone()
    }
}

fn config(dir: &Path, coa_port: u16) -> Config {
    let toml = format!(
        r#"
data_dir = "{}"
[http]
bind = "127.0.0.1:0"
[radius]
accounting_bind = "127.0.0.1:0"
auth_bind = "127.0.0.1:0"
[radius.coa]
source = "127.0.0.1:0"
timeout_ms = 50
attempts = {ATTEMPTS}
[[radius.clients]]
name = "pgw-deaf"
address = "127.0.0.1/32"
secret = "{SECRET}"
coa_port = {coa_port}
[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"
[engine]
tick_ms = 0
"#,
        dir.display()
    );
    Config::from_toml(&toml, "test", std::iter::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_times_out_after_every_attempt_with_identical_retransmissions() {
    let nas = DeafNas::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), nas.port);
    let enforcer = Enforcer::new(&cfg.radius).await.unwrap();
    let out = enforcer
        .send(EnforceRequest::new(
            "pgw-deaf",
            "sess-deaf-1",
            IMSI,
            Some(Ipv4Addr::new(10, 45, 0, 9)),
            EnforceAction::Disconnect,
        ))
        .await;
    assert_eq!(out.result, EnforceResult::Timeout, "{out:?}");
    assert_eq!(out.attempts, ATTEMPTS, "{out:?}");
    assert_eq!(out.rtt_ms, None);
    assert_eq!(out.code.as_deref(), Some("Disconnect-Request"));
    assert_eq!(
        out.to,
        Some(SocketAddr::from(([127, 0, 0, 1], nas.port))),
        "{out:?}"
    );

    // The socket may still be handing over the last copy.
    let t0 = Instant::now();
    while nas.received().len() < ATTEMPTS as usize && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = nas.received();
    assert_eq!(got.len(), ATTEMPTS as usize, "transmissions heard");
    // A Disconnect-Request (code 40) for our session, and every
    // retransmission byte for byte the first (same Identifier,
    // authenticator, Event-Timestamp), so a NAS takes it for a duplicate.
    assert_eq!(got[0][0], Code::DisconnectRequest as u8);
    assert!(
        got[0]
            .windows(b"sess-deaf-1".len())
            .any(|w| w == b"sess-deaf-1"),
        "session id not in the request"
    );
    for (i, copy) in got.iter().enumerate().skip(1) {
        assert_eq!(copy, &got[0], "retransmission {i} differs from the first");
    }
}

/// An Accounting-Request Start for IMSI from the NAS, signed with SECRET.
fn start_request() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, 1, [0; 16]);
    w.message_authenticator().unwrap();
    w.attr_u32(attr::ACCT_STATUS_TYPE, 1).unwrap();
    w.attr_str(attr::ACCT_SESSION_ID, "sess-deaf-2").unwrap();
    w.attr_str(attr::USER_NAME, IMSI).unwrap();
    w.attr_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 45, 0, 9))
        .unwrap();
    // 3GPP-IMSI (vendor 10415, type 1).
    w.vsa(10415, 1, IMSI.as_bytes()).unwrap();
    w.finish_request(SECRET.as_bytes()).to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_action_to_a_silent_nas_is_audited_as_timeout_with_its_attempts() {
    let nas = DeafNas::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(dir.path(), nas.port),
        StartOptions {
            admin_token: Some(TOKEN.into()),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };

    // Only a provisioned device's lifecycle changes, and only a change is
    // told to the network.
    call(
        reqwest::Method::PUT,
        "/api/v1/tenants/acme",
        Some(serde_json::json!({"name": "Acme"})),
    )
    .await;
    call(
        reqwest::Method::PUT,
        "/api/v1/groups/meters",
        Some(serde_json::json!({"tenant": "acme"})),
    )
    .await;
    call(
        reqwest::Method::POST,
        "/api/v1/devices",
        Some(serde_json::json!({"devices": [{"imsi": IMSI, "tenant": "acme", "group": "meters"}]})),
    )
    .await;

    // The gateway reports the session; it is answered once journaled.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&start_request(), server.acct_addr).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("no Accounting-Response");
    assert_eq!(buf[0], Code::AccountingResponse as u8, "{:?}", &buf[..n]);
    let t0 = Instant::now();
    loop {
        let dev = call(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{IMSI}"),
            None,
        )
        .await;
        if dev["sessions"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no session: {dev}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A person blocks it: a Disconnect to a NAS that never answers.
    call(
        reqwest::Method::POST,
        &format!("/api/v1/devices/{IMSI}/actions"),
        Some(serde_json::json!({"action": "block", "reason": "lost in transit"})),
    )
    .await;

    let t0 = Instant::now();
    let item = loop {
        let page = call(
            reqwest::Method::GET,
            &format!("/api/v1/audit?imsi={IMSI}"),
            None,
        )
        .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(a) = items
            .iter()
            .find(|a| a["results"].as_array().is_some_and(|r| !r.is_empty()))
        {
            break a.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "audit: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(item["action"], "block", "{item}");
    let results = item["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "one session, one result: {item}");
    let r = &results[0];
    assert_eq!(r["result"], "timeout", "{item}");
    assert_eq!(r["attempts"], ATTEMPTS, "{item}");
    let sent = r["sent"].to_string();
    assert!(
        sent.contains("Disconnect-Request") && sent.contains("sess-deaf-2"),
        "{sent}"
    );
    // The NAS heard every transmission, all the same bytes.
    let got = nas.received();
    assert_eq!(got.len(), ATTEMPTS as usize);
    assert!(got.iter().all(|g| g == &got[0]));
    server.shutdown().await;
}
