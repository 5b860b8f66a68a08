//! Actions and the network's answers on the live stream
//! (`GET /api/v1/events`): a person's block of a device with an open
//! session is sent to the NAS (FreeRADIUS, which ACKs it); the `action`
//! event and then its `action_result` reach the stream of the device's
//! tenant, and nothing of it reaches another tenant's stream.

mod flows_support;

use flows_support::{config_ticking, start_with, Api};
use serde_json::{json, Value};
use simguard_server::config::Config;
use simguard_testkit::{have_freeradius, radclient_acct, Nas};
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "live-actions-secret";
const A_DEV: &str = "901700000000301";
const B_DEV: &str = "901700000000401";

/// The NAS (FreeRADIUS on `port`) as the only RADIUS client; no ticks.
fn config(dir: &Path, port: u16) -> Config {
    config_ticking(
        dir,
        &format!(
            r#"
[radius.coa]
source = "127.0.0.1:0"
[[radius.clients]]
name = "pgw-fr"
address = "127.0.0.1/32"
secret = "{SECRET}"
coa_port = {port}
"#
        ),
        0,
    )
}

/// One subscriber's stream, parsed into (event, data) as chunks arrive.
struct Stream {
    resp: reqwest::Response,
    buf: String,
    events: Vec<(String, Value)>,
}

impl Stream {
    async fn open(api: &Api, token: &str) -> Stream {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/events", api.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        let mut s = Stream {
            resp,
            buf: String::new(),
            events: Vec::new(),
        };
        // Subscribed once `ready` is out: what commits later reaches it.
        s.until(Duration::from_secs(10), |evs| {
            evs.iter().any(|(e, _)| e == "ready")
        })
        .await;
        s
    }

    /// Reads until `done` holds of the events so far, or `limit` passes
    /// (then returns false).
    async fn until(&mut self, limit: Duration, done: impl Fn(&[(String, Value)]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.events) {
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.resp.chunk()).await else {
                return false;
            };
            let chunk = chunk.unwrap().expect("stream open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if line.starts_with("id:") {
                        assert!(!name.starts_with("action"), "actions carry no id: {block}");
                    }
                }
                if !data.is_empty() {
                    self.events
                        .push((name, serde_json::from_str(&data).unwrap()));
                }
            }
        }
        true
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(e, _)| e == kind)
            .map(|(_, v)| v)
            .collect()
    }
}

async fn session_start(dir: &Path, acct: std::net::SocketAddr, imsi: &str, ip: &str) {
    let packet = format!(
        "3GPP-IMSI = \"{imsi}\"\nFramed-IP-Address = {ip}\nAcct-Status-Type = Start\n\
         Acct-Session-Id = \"sess-{imsi}\"\nMessage-Authenticator = 0x00\n"
    );
    let (dir, name) = (dir.to_path_buf(), format!("start-{imsi}"));
    tokio::task::spawn_blocking(move || radclient_acct(&dir, &name, &packet, acct, SECRET))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_and_the_nas_answer_reach_only_the_tenant_stream() {
    if !have_freeradius() {
        return;
    }
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(config(dir.path(), nas.port)).await;
    let api = Api::new(server.http_addr);
    let mut keys = Vec::new();
    for (t, dev) in [("acme", A_DEV), ("globex", B_DEV)] {
        api.write(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{t}"),
            &json!({"name": t}),
        )
        .await;
        api.write(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{t}-meters"),
            &json!({"tenant": t}),
        )
        .await;
        api.write(
            reqwest::Method::POST,
            "/api/v1/devices",
            &json!({"devices": [{"imsi": dev, "tenant": t, "group": format!("{t}-meters")}]}),
        )
        .await;
        let key = api
            .write(
                reqwest::Method::POST,
                "/api/v1/apikeys",
                &json!({"name": format!("{t}-viewer"), "role": "viewer", "tenant": t}),
            )
            .await;
        keys.push(key["token"].as_str().unwrap().to_string());
    }
    session_start(dir.path(), server.acct_addr, A_DEV, "10.45.0.31").await;

    let mut a = Stream::open(&api, &keys[0]).await;
    let mut b = Stream::open(&api, &keys[1]).await;

    // A person blocks A's device: sent to the NAS (a Disconnect), ACKed.
    let done = api
        .write(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{A_DEV}/actions"),
            &json!({"action": "block", "reason": "reported stolen"}),
        )
        .await;
    let id = done["action_id"].as_str().unwrap().to_string();
    let answered = |evs: &[(String, Value)]| {
        evs.iter()
            .any(|(e, v)| e == "action_result" && v["action"] == id.as_str())
    };
    assert!(
        a.until(Duration::from_secs(20), answered).await,
        "A's stream: {:?}\n{}",
        a.events,
        nas.output()
    );
    let actions = a.of_kind("action");
    assert_eq!(actions.len(), 1, "{:?}", a.events);
    let action = actions[0];
    assert_eq!(action["id"], id.as_str());
    assert_eq!(action["imsi"], A_DEV);
    assert_eq!(action["tenant"], "acme");
    assert_eq!(action["action"], "block");
    assert_eq!(action["mode"], "enforce");
    assert_eq!(action["reason"], "reported stolen");
    assert_eq!(action["to"], "blocked");
    // The action first, then its answer.
    let pos = |kind: &str| a.events.iter().position(|(e, _)| e == kind).unwrap();
    assert!(pos("action") < pos("action_result"), "{:?}", a.events);
    let result = a.of_kind("action_result")[0];
    assert_eq!(result["result"], "ack", "{result}");
    assert_eq!(result["imsi"], A_DEV);
    assert_eq!(result["tenant"], "acme");
    assert!(
        result["sent"].to_string().contains("Disconnect-Request"),
        "{result}"
    );

    // B's own device is blocked next (no session: nothing to send). B's
    // stream shows that action, and never A's action or its answer,
    // although both were committed before it.
    let b_done = api
        .write(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{B_DEV}/actions"),
            &json!({"action": "block", "reason": "tenant B's own"}),
        )
        .await;
    let b_id = b_done["action_id"].as_str().unwrap().to_string();
    assert!(
        b.until(Duration::from_secs(10), |evs| evs
            .iter()
            .any(|(e, v)| e == "action" && v["id"] == b_id.as_str()))
            .await,
        "B's stream: {:?}",
        b.events
    );
    // Whatever else B may get in a moment more.
    b.until(Duration::from_millis(500), |_| false).await;
    let b_text = format!("{:?}", b.events);
    assert!(
        !b_text.contains(A_DEV) && !b_text.contains(&id),
        "B saw A's action: {b_text}"
    );
    for (e, v) in &b.events {
        if e.starts_with("action") {
            assert_eq!(v["tenant"], "globex", "{e}: {v}");
        }
    }
    // And A does not see B's.
    a.until(Duration::from_millis(500), |_| false).await;
    let a_text = format!("{:?}", a.events);
    assert!(!a_text.contains(B_DEV), "A saw B's action: {a_text}");
    drop((a, b));
    server.shutdown().await;
}
