//! Subscriptions through the API, end to end over real sockets: one created
//! with POST is routed to by the next alert (raised by radclient's
//! accounting for an unprovisioned SIM); once deleted, the next alert is
//! not. Bad ones are 400 naming the field; a tenant's operator writes only
//! its own tenant's; config ones are read-only; stored ones survive a
//! restart and are still routed to, and are flagged once their channel
//! leaves the config.

mod flows_support;

use flows_support::{config_with, now_ms, radclient, start_with, Acct, Api, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A webhook to a port nobody listens on: deliveries wait for their retry
/// (a minute away), so the outbox rows stay as routing wrote them.
const NOTIFY: &str = r#"
[notify]
retry_min_secs = 60
[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[notify.subscriptions]]
name = "cfg-scans"
channel = "siem"
types = ["scanning"]
"#;

async fn call(
    api: &Api,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut r = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", api.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A Start for an IMSI that is not in the inventory: one `unprovisioned`
/// finding, hence one alert. Returns the alert's id.
async fn raise(server: &simguard_server::Server, api: &Api, dir: &Path, n: u32) -> String {
    let imsi = format!("9017099900{n:05}");
    let ip = format!("10.78.0.{}", n % 250 + 1);
    let session = format!("s-{imsi}");
    let req = Acct {
        imsi: &imsi,
        ip: &ip,
        status: "Start",
        session: &session,
        time: now_ms() / 1000,
        session_time: None,
    };
    radclient(server.acct_addr, dir, &format!("sub{n}"), &[req]).await;
    let t0 = Instant::now();
    loop {
        let v = api.get(&format!("/api/v1/alerts?imsi={imsi}")).await;
        if let Some(id) = v["items"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no alert for {imsi}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The subscriptions an alert's `raised` event went to ("" = unrouted).
async fn routed_to(api: &Api, alert: &str) -> Vec<String> {
    let n = api
        .get(&format!("/api/v1/alerts/{alert}/notifications"))
        .await;
    let mut out: Vec<String> = n
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["event"] == "raised")
        .map(|x| {
            if x["status"] == "unrouted" {
                String::new()
            } else {
                x["subscription"].as_str().unwrap().to_string()
            }
        })
        .collect();
    out.sort();
    out
}

fn field(v: &Value) -> &str {
    v["error"]["details"][0]["field"].as_str().unwrap_or("")
}

fn names(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_made_through_the_api_is_routed_to_until_deleted_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), NOTIFY);
    let server = start_with(cfg.clone()).await;
    let api = Api::new(server.http_addr);
    let path = "/api/v1/notify/subscriptions";

    // Tenants, a group of t-a, and keys: an operator and a viewer of t-b.
    for t in ["t-a", "t-b"] {
        api.send(
            Method::PUT,
            &format!("/api/v1/tenants/{t}"),
            &json!({ "name": t }),
        )
        .await;
    }
    api.send(
        Method::POST,
        "/api/v1/devices",
        &json!({ "devices": [{ "imsi": "901700000009001", "tenant": "t-a", "group": "a-meters" }] }),
    )
    .await;
    let key = |role: &str| json!({ "name": format!("b-{role}"), "role": role, "tenant": "t-b" });
    let (s, k) = api
        .try_send(Method::POST, "/api/v1/apikeys", &key("operator"))
        .await;
    assert!(s.is_success(), "{k}");
    let b_op = k["token"].as_str().unwrap().to_string();
    let (s, k) = api
        .try_send(Method::POST, "/api/v1/apikeys", &key("viewer"))
        .await;
    assert!(s.is_success(), "{k}");
    let b_viewer = k["token"].as_str().unwrap().to_string();

    // The config's subscription is listed, read-only.
    let list = api.get(path).await;
    assert_eq!(names(&list), [("cfg-scans".into(), "config".into())]);
    let (s, v) = call(
        &api,
        ADMIN,
        Method::DELETE,
        &format!("{path}/cfg-scans"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // An alert before any stored subscription: nobody wanted it.
    let first = raise(&server, &api, dir.path(), 1).await;
    assert_eq!(routed_to(&api, &first).await, [""]);

    // Create one; the next alert goes to it.
    let soc = json!({ "name": "api-soc", "channel": "siem", "types": ["unprovisioned"], "min_severity": "warning" });
    let (s, v) = call(&api, ADMIN, Method::POST, path, Some(&soc)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["source"], "api");
    assert_eq!(v["created_by"], "admin (SIMGUARD_ADMIN_TOKEN)");
    let (s, v) = call(&api, ADMIN, Method::POST, path, Some(&soc)).await;
    assert_eq!(s, StatusCode::CONFLICT, "the name is taken: {v}");
    let second = raise(&server, &api, dir.path(), 2).await;
    assert_eq!(routed_to(&api, &second).await, ["api-soc"]);
    let n = api
        .get(&format!("/api/v1/alerts/{second}/notifications"))
        .await;
    assert_eq!(n[0]["channel"], "siem", "{n}");
    assert_eq!(n[0]["message_id"], format!("{second}.raised"), "{n}");

    // A change applies too: above the alert's severity, it is not wanted.
    let mut critical = soc.clone();
    critical["min_severity"] = json!("critical");
    let (s, v) = call(
        &api,
        ADMIN,
        Method::PUT,
        &format!("{path}/api-soc"),
        Some(&critical),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["min_severity"], "critical");
    let third = raise(&server, &api, dir.path(), 3).await;
    assert_eq!(routed_to(&api, &third).await, [""]);

    // Deleted: the next alert is not routed to it.
    let (s, v) = call(
        &api,
        ADMIN,
        Method::PUT,
        &format!("{path}/api-soc"),
        Some(&soc),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &api,
        ADMIN,
        Method::DELETE,
        &format!("{path}/api-soc"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fourth = raise(&server, &api, dir.path(), 4).await;
    assert_eq!(routed_to(&api, &fourth).await, [""]);
    let (s, _) = call(
        &api,
        ADMIN,
        Method::DELETE,
        &format!("{path}/api-soc"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad ones: 400 naming the field, and nothing stored.
    for (patch, want) in [
        (json!({ "channel": "nope" }), "channel"),
        (json!({ "recipients": ["ops@example.com"] }), "recipients"),
        (json!({ "quiet_hours": "late" }), "quiet_hours"),
        (json!({ "min_severity": "huge" }), "min_severity"),
        (json!({ "types": ["scanning", "scaning"] }), "types[1]"),
        (json!({ "cap": 0 }), "cap"),
        (json!({ "name": "a.b" }), "name"),
        (json!({ "group": "no-such-group" }), "group"),
        (json!({ "tenant": "no-such-tenant" }), "tenant"),
        (json!({ "utc_offset_minutes": 5000 }), "utc_offset_minutes"),
    ] {
        let mut b = json!({ "name": "bad", "channel": "siem" });
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let (s, v) = call(&api, ADMIN, Method::POST, path, Some(&b)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}: {v}");
        assert_eq!(field(&v), want, "{b}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(want),
            "{v}"
        );
    }
    assert_eq!(names(&api.get(path).await).len(), 1);

    // A tenant's operator: not for another tenant, nor its group; its own
    // tenant by default. A viewer writes nothing.
    let a_sub = json!({ "name": "b-into-a", "channel": "siem", "tenant": "t-a" });
    let (s, v) = call(&api, &b_op, Method::POST, path, Some(&a_sub)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(field(&v), "tenant");
    let a_group = json!({ "name": "b-into-a", "channel": "siem", "group": "a-meters" });
    let (s, v) = call(&api, &b_op, Method::POST, path, Some(&a_group)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(field(&v), "group");
    let own = json!({ "name": "b-own", "channel": "siem" });
    let (s, v) = call(&api, &b_viewer, Method::POST, path, Some(&own)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&api, &b_op, Method::POST, path, Some(&own)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["tenant"], "t-b");
    // The admin's operator-wide one is not B's to see or change.
    let wide = json!({ "name": "keep", "channel": "siem", "types": ["unprovisioned"] });
    let (s, v) = call(&api, ADMIN, Method::POST, path, Some(&wide)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&api, &b_op, Method::GET, path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&v), [("b-own".into(), "api".into())]);
    let (s, _) = call(
        &api,
        &b_op,
        Method::PUT,
        &format!("{path}/keep"),
        Some(&own),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&api, &b_op, Method::DELETE, &format!("{path}/keep"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B sees channel names (to pick one), not endpoints or traffic.
    let (s, ch) = call(&api, &b_op, Method::GET, "/api/v1/notify/channels", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ch, json!([{ "name": "siem", "type": "webhook" }]));

    // A restart keeps the stored ones, and routes to them.
    server.shutdown().await;
    let server = start_with(cfg).await;
    let api = Api::new(server.http_addr);
    let list = names(&api.get(path).await);
    assert_eq!(
        list,
        [
            ("cfg-scans".into(), "config".into()),
            ("b-own".into(), "api".into()),
            ("keep".into(), "api".into())
        ]
    );
    let fifth = raise(&server, &api, dir.path(), 5).await;
    assert_eq!(routed_to(&api, &fifth).await, ["keep"]);
    let problems = |list: &Value| -> Vec<(String, bool)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["name"].as_str().unwrap().to_string(),
                    !x["problem"].is_null(),
                )
            })
            .collect()
    };
    assert_eq!(
        problems(&api.get(path).await),
        [
            ("cfg-scans".into(), false),
            ("b-own".into(), false),
            ("keep".into(), false)
        ]
    );
    server.shutdown().await;

    // The channel the stored ones use leaves the config: they are listed
    // with the problem, so that someone edits or deletes them.
    let moved = config_with(
        dir.path(),
        &NOTIFY
            .replace("[notify.channels.siem]", "[notify.channels.siem2]")
            .replace("channel = \"siem\"", "channel = \"siem2\""),
    );
    let server = start_with(moved).await;
    let api = Api::new(server.http_addr);
    let list = api.get(path).await;
    assert_eq!(
        problems(&list),
        [
            ("cfg-scans".into(), false),
            ("b-own".into(), true),
            ("keep".into(), true)
        ]
    );
    assert!(
        list[2]["problem"]
            .as_str()
            .unwrap()
            .contains("\"siem\" is not configured"),
        "{list}"
    );
    server.shutdown().await;
}
