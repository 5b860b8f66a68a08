//! The RFC 5176 client against a real NAS: FreeRADIUS (`freeradius -X`) with
//! a CoA listener that ACKs known sessions, NAKs `unknown*` sessions with
//! Error-Cause 503 and `prohibited*` ones with 501, and drops anything whose
//! secret or Message-Authenticator does not verify. What FreeRADIUS received
//! is read from its debug output.

use simguard_radius::{attr, Code, PacketWriter};
use simguard_server::coa::Enforcer;
use simguard_server::config::Config;
use simguard_server::{EnforceAction, EnforceRequest, EnforceResult, Server, StartOptions};
use simguard_testkit::{have_freeradius, radclient_acct, Nas};

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "coa-test-secret";
const IMSI: &str = "901700000000001";

/// The `[radius]` part of a config whose clients point at `nas`.
fn config(dir: &Path, port: u16, coa: &str, extra_clients: &str) -> Config {
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
{coa}
[[radius.clients]]
name = "pgw-fr"
address = "127.0.0.1/32"
secret = "{SECRET}"
coa_port = {port}
{extra_clients}
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

fn req(nas: &str, session: &str, action: EnforceAction) -> EnforceRequest {
    EnforceRequest::new(
        nas,
        session,
        IMSI,
        Some(Ipv4Addr::new(10, 45, 0, 7)),
        action,
    )
}

fn attr_of<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_and_coa_are_acked_with_our_attributes() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(dir.path(), nas.port, "", ""),
        StartOptions::default(),
    )
    .await
    .unwrap();
    let enforcer = server.enforcer.clone();

    let out = enforcer
        .send(req("pgw-fr", "sess-1", EnforceAction::Disconnect))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}\n{}", nas.output());
    assert_eq!(out.attempts, 1);
    assert!(out.rtt_ms.is_some());
    assert_eq!(out.code.as_deref(), Some("Disconnect-Request"));

    let out = enforcer
        .send(req(
            "pgw-fr",
            "sess-1",
            EnforceAction::Throttle { kbps: 256 },
        ))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}");
    assert_eq!(out.code.as_deref(), Some("CoA-Request"));
    assert!(
        out.sent_attributes
            .contains(&"Filter-Id = \"simguard-throttle-256k\"".to_string()),
        "{out:?}"
    );
    let out = enforcer
        .send(req("pgw-fr", "sess-1", EnforceAction::Quarantine))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}");
    let out = enforcer
        .send(req("pgw-fr", "sess-1", EnforceAction::Release))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}");

    // Our answers can overtake FreeRADIUS's log lines through the pipe.
    nas.wait_for("Sent Disconnect-ACK", 1);
    nas.wait_for("Sent CoA-ACK", 3);
    let got = nas.received();
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Disconnect-Request",
            "CoA-Request",
            "CoA-Request",
            "CoA-Request"
        ],
        "{}",
        nas.output()
    );
    for (kind, attrs) in &got {
        assert_eq!(attr_of(attrs, "Acct-Session-Id"), Some("sess-1"), "{kind}");
        assert_eq!(attr_of(attrs, "User-Name"), Some(IMSI), "{kind}");
        assert_eq!(attr_of(attrs, "3GPP-IMSI"), Some(IMSI), "{kind}");
        assert_eq!(
            attr_of(attrs, "Framed-IP-Address"),
            Some("10.45.0.7"),
            "{kind}"
        );
        assert!(attr_of(attrs, "Event-Timestamp").is_some(), "{kind}");
        // FreeRADIUS verified it (it drops a packet whose MAC is wrong).
        assert!(
            attr_of(attrs, "Message-Authenticator").is_some_and(|v| v.starts_with("0x")),
            "{kind}"
        );
    }
    assert_eq!(attr_of(&got[0].1, "Filter-Id"), None);
    assert_eq!(
        attr_of(&got[1].1, "Filter-Id"),
        Some("simguard-throttle-256k")
    );
    assert_eq!(attr_of(&got[2].1, "Filter-Id"), Some("simguard-quarantine"));
    assert_eq!(attr_of(&got[3].1, "Filter-Id"), Some("simguard-default"));
    assert!(!nas.output().contains("invalid Message-Authenticator"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn naks_report_their_error_cause_and_503_is_session_gone() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), nas.port, "", "");
    let enforcer = Enforcer::new(&cfg.radius).await.unwrap();
    for action in [EnforceAction::Disconnect, EnforceAction::Quarantine] {
        let out = enforcer.send(req("pgw-fr", "unknown-42", action)).await;
        assert_eq!(out.result, EnforceResult::SessionGone, "{out:?}");
        assert_eq!(out.attempts, 1);
    }
    let out = enforcer
        .send(req("pgw-fr", "prohibited-1", EnforceAction::Disconnect))
        .await;
    assert_eq!(
        out.result,
        EnforceResult::Nak {
            error_cause: 501,
            text: "Administratively-Prohibited: not on this gateway".into()
        },
        "{out:?}"
    );
    nas.wait_for("Sent Disconnect-NAK", 2);
    nas.wait_for("Sent CoA-NAK", 1);
    let kinds: Vec<String> = nas.received().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        ["Disconnect-Request", "CoA-Request", "Disconnect-Request"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_times_out_after_every_retransmission() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Same NAS, another secret: FreeRADIUS drops every copy.
    let cfg = config(
        dir.path(),
        nas.port,
        "timeout_ms = 100\nattempts = 3",
        &format!(
            "[[radius.clients]]\nname = \"pgw-wrong\"\naddress = \"127.0.0.2/32\"\nsecret = \"not-the-secret\"\ncoa_address = \"127.0.0.1\"\ncoa_port = {}\n",
            nas.port
        ),
    );
    let enforcer = Enforcer::new(&cfg.radius).await.unwrap();
    let t0 = Instant::now();
    let out = enforcer
        .send(req("pgw-wrong", "sess-1", EnforceAction::Disconnect))
        .await;
    assert_eq!(out.result, EnforceResult::Timeout, "{out:?}");
    assert_eq!(out.attempts, 3);
    assert_eq!(out.rtt_ms, None);
    // Back-off: 100 + 200 + 400 ms at the least.
    assert!(t0.elapsed() >= Duration::from_millis(700));
    // Every transmission reached the NAS: the first was refused, and the
    // retransmissions, byte for byte the same, were taken for duplicates.
    nas.wait_for("invalid Message-Authenticator", 1);
    nas.wait_for("Ignoring duplicate packet", 2);
    // The control: the right secret to the same NAS is answered.
    let out = enforcer
        .send(req("pgw-fr", "sess-1", EnforceAction::Disconnect))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn freeradius_checks_the_message_authenticator_we_compute() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    // A Disconnect-Request whose Request Authenticator is right but whose
    // Message-Authenticator is garbage (added as a plain attribute, so the
    // writer does not compute it): FreeRADIUS must drop it.
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::DisconnectRequest, 9, [0; 16]);
    w.attr(attr::MESSAGE_AUTHENTICATOR, &[0x5a; 16]).unwrap();
    w.attr_str(attr::ACCT_SESSION_ID, "sess-1").unwrap();
    let bytes = w.finish_request(SECRET.as_bytes()).to_vec();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&bytes, ("127.0.0.1", nas.port)).unwrap();
    let nas = tokio::task::spawn_blocking(move || {
        nas.wait_for("invalid Message-Authenticator", 1);
        nas
    })
    .await
    .unwrap();
    // Ours, with the same secret, passes.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), nas.port, "", "");
    let enforcer = Enforcer::new(&cfg.radius).await.unwrap();
    let out = enforcer
        .send(req("pgw-fr", "sess-1", EnforceAction::Disconnect))
        .await;
    assert_eq!(out.result, EnforceResult::Ack, "{out:?}");
    assert_eq!(
        nas.output()
            .matches("invalid Message-Authenticator")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_requests_in_flight_to_one_nas_get_distinct_identifiers() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Fewer slots than requests: the rest wait for one to free up.
    let cfg = config(
        dir.path(),
        nas.port,
        "max_in_flight = 64\ntimeout_ms = 2000",
        "",
    );
    let enforcer = Arc::new(Enforcer::new(&cfg.radius).await.unwrap());
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let e = enforcer.clone();
            tokio::spawn(async move {
                e.send(req(
                    "pgw-fr",
                    &format!("sess-{i}"),
                    EnforceAction::Throttle { kbps: 64 },
                ))
                .await
            })
        })
        .collect();
    for t in tasks {
        let out = t.await.unwrap();
        assert_eq!(out.result, EnforceResult::Ack, "{out:?}");
    }
    // FreeRADIUS saw 300 distinct requests, not duplicates of fewer.
    nas.wait_for("Sent CoA-ACK", 300);
    let mut sessions: Vec<String> = nas
        .received()
        .into_iter()
        .filter_map(|(_, a)| attr_of(&a, "Acct-Session-Id").map(str::to_string))
        .collect();
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 300);
}

#[tokio::test]
async fn unknown_nas_and_nas_without_a_coa_address_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        3799,
        "",
        "[[radius.clients]]\nname = \"pgw-pool\"\naddress = \"10.0.0.0/24\"\nsecret = \"s\"\n",
    );
    let enforcer = Enforcer::new(&cfg.radius).await.unwrap();
    for nas in ["pgw-nope", "pgw-pool"] {
        let out = enforcer
            .send(req(nas, "sess-1", EnforceAction::Disconnect))
            .await;
        assert_eq!(out.result, EnforceResult::NoSuchNas, "{nas}");
        assert_eq!(out.attempts, 0);
    }
    // A dry run shows what would be sent.
    let (code, attrs) = enforcer
        .preview(&req(
            "pgw-fr",
            "sess-1",
            EnforceAction::Throttle { kbps: 128 },
        ))
        .unwrap();
    assert_eq!(code, Code::CoaRequest);
    assert!(attrs.contains(&"Filter-Id = \"simguard-throttle-128k\"".to_string()));
    assert!(attrs.contains(&"3GPP-IMSI = \"901700000000001\"".to_string()));
    assert!(enforcer
        .preview(&req("pgw-nope", "s", EnforceAction::Release))
        .is_none());
}

/// The whole loop: the PGW reports a session (radclient), a rule and a
/// person decide actions, the enforcement adapter sends CoA and Disconnect
/// to the NAS (FreeRADIUS), and the answers land in the audit trail.
#[tokio::test(flavor = "multi_thread")]
async fn actions_decided_by_the_engine_reach_the_nas_and_their_answers_are_audited() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    const TOKEN: &str = "enforcement-test-admin";
    let server = Server::start(
        config(dir.path(), nas.port, "", ""),
        StartOptions {
            admin_token: Some(TOKEN.into()),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    call(
        reqwest::Method::PUT,
        "/api/v1/tenants/acme",
        serde_json::json!({"name": "Acme"}),
    )
    .await;
    call(
        reqwest::Method::PUT,
        "/api/v1/groups/meters",
        serde_json::json!({"tenant": "acme"}),
    )
    .await;
    call(
        reqwest::Method::POST,
        "/api/v1/devices",
        serde_json::json!({"devices": [{"imsi": IMSI, "tenant": "acme", "group": "meters"}]}),
    )
    .await;
    // Quarantine every device of the group that comes online.
    call(
        reqwest::Method::POST,
        "/api/v1/rules",
        serde_json::json!({
            "id": "quarantine-new", "mode": "enforce",
            "scope": {"group": "meters"},
            "trigger": {"connectivity": {"event": "came_online"}},
            "steps": [{"action": "quarantine"}]
        }),
    )
    .await;

    // The PGW reports the session.
    let packet = format!(
        "3GPP-IMSI = \"{IMSI}\"\nFramed-IP-Address = 10.45.0.7\nAcct-Status-Type = Start\n\
         Acct-Session-Id = \"sess-enf-1\"\nMessage-Authenticator = 0x00\n"
    );
    let (path, acct) = (dir.path().to_path_buf(), server.acct_addr);
    tokio::task::spawn_blocking(move || radclient_acct(&path, "start", &packet, acct, SECRET))
        .await
        .unwrap();

    // A person blocks it.
    call(
        reqwest::Method::POST,
        &format!("/api/v1/devices/{IMSI}/actions"),
        serde_json::json!({"action": "block", "reason": "reported stolen"}),
    )
    .await;

    // Both actions, each with the NAS's answer.
    let t0 = Instant::now();
    let items = loop {
        let page = call(
            reqwest::Method::GET,
            &format!("/api/v1/audit?imsi={IMSI}"),
            serde_json::Value::Null,
        )
        .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let answered = items
            .iter()
            .filter(|a| !a["results"].as_array().is_none_or(|r| r.is_empty()))
            .count();
        if items.len() == 2 && answered == 2 {
            break items;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "audit: {page}\n{}",
            nas.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Newest first: the block, then the quarantine.
    let (block, quarantine) = (&items[0], &items[1]);
    assert_eq!(quarantine["action"], "quarantine");
    assert_eq!(quarantine["actor"], "rule:quarantine-new");
    let q = &quarantine["results"][0];
    assert_eq!(q["result"], "ack", "{quarantine}");
    let sent = q["sent"].to_string();
    assert!(
        sent.contains("CoA-Request") && sent.contains("sess-enf-1"),
        "{sent}"
    );
    assert!(sent.contains("Filter-Id"), "{sent}");
    assert_eq!(block["action"], "block");
    assert!(
        block["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("user:")),
        "{block}"
    );
    assert_eq!(block["reason"], "reported stolen");
    let b = &block["results"][0];
    assert_eq!(b["result"], "ack", "{block}");
    assert!(
        b["sent"].to_string().contains("Disconnect-Request"),
        "{block}"
    );
    // FreeRADIUS saw both, for our session.
    let seen = nas.output();
    assert!(seen.contains("sess-enf-1"), "{seen}");
    // And the device is blocked.
    let dev = call(
        reqwest::Method::GET,
        &format!("/api/v1/devices/{IMSI}"),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(dev["lifecycle"], "blocked", "{dev}");
    server.shutdown().await;
}
