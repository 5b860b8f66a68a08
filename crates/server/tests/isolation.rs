//! Tenant isolation over every route of the router.
//!
//! Tenants A and B each have a device, a group with a policy, a finding and
//! its alert, an audited action, a rule, an admin user and an API key. For
//! each (method, path) the router serves, an admin of tenant B, once by
//! session cookie (with its CSRF token: CSRF is not what stops it) and once
//! by API key, aims at tenant A's things: it must get 404 or 403, or lists
//! with none of A's data, and nothing of A may change. The operator-wide
//! admin then does each of them successfully and sees A's data.
//!
//! The cases are checked against `simguard_server::api::route_table()`, the
//! router's own list, and against the OpenAPI document: a route added
//! without a case here fails this test.

mod access_support;

use access_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use simguard_store::Role;
use std::collections::BTreeSet;
use std::time::Duration;

const A_DEV: &str = "901700000000101";
const B_DEV: &str = "901700000000201";
const A_KEY: &str = "tenant-a-admin-token";
const B_KEY: &str = "tenant-b-admin-token";

/// Strings that only tenant A's data contains.
const A_MARKERS: &[&str] = &[
    A_DEV, "tenant-a", "a-meters", "a-rule", "a-admin", "a-key", "Tenant A", "a-subs",
];

/// Notifications: a webhook (to a port nobody listens on: deliveries retry,
/// which changes nothing here) with a subscription per tenant.
const NOTIFY: &str = r#"
[notify]
retry_min_secs = 60
[notify.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "isolation-test-secret"
[[notify.subscriptions]]
name = "a-subs"
channel = "hook"
tenant = "tenant-a"
[[notify.subscriptions]]
name = "b-subs"
channel = "hook"
tenant = "tenant-b"
"#;

/// What B (and the admin) should get from a route aimed at A.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Open to all (probes, metrics, the OpenAPI document).
    Public,
    /// Logging in: B's attempt at A's user with a wrong password is 401.
    Login,
    /// About the caller's own session.
    OwnSession,
    /// A's thing does not exist for B: 404. The admin gets it.
    Hidden,
    /// A list: B's has none of A's data; the admin's has it.
    Filtered,
    /// A write aimed at A: 403, 404 or 422, nothing changes. The admin's works.
    Refused,
    /// Data of no tenant, or across tenants: operator-wide callers only (403).
    OperatorWide,
    /// The live stream: B's has none of A's findings; the admin's has them.
    Stream,
}

struct Case {
    method: Method,
    /// The route as registered in the router.
    route: &'static str,
    /// The request: the route aimed at A's things.
    url: String,
    body: Option<Value>,
    /// The admin's body when it differs (B's body tries to take A's things over).
    admin_body: Option<Value>,
    expect: Expect,
}

fn case(method: Method, route: &'static str, url: impl Into<String>, expect: Expect) -> Case {
    Case {
        method,
        route,
        url: url.into(),
        body: None,
        admin_body: None,
        expect,
    }
}

impl Case {
    fn body(mut self, b: Value) -> Case {
        self.body = Some(b);
        self
    }

    fn admin(mut self, b: Value) -> Case {
        self.admin_body = Some(b);
        self
    }
}

fn rule(id: &str, tenant: &str) -> Value {
    json!({
        "id": id,
        "name": format!("{id} of {tenant}"),
        "mode": "dry-run",
        "scope": { "tenant": tenant },
        "trigger": { "finding": { "types": ["scanning"] } },
        "steps": [{ "action": "notify" }]
    })
}

fn subscription(name: &str, tenant: &str) -> Value {
    json!({ "name": name, "channel": "hook", "tenant": tenant, "min_severity": "minor" })
}

fn cases(a_alert: &str, a_finding: &str, a_key_id: i64, a_notification: &str) -> Vec<Case> {
    use Expect::*;
    use Method as M;
    let dev = |suffix: &str| format!("/api/v1/devices/{A_DEV}{suffix}");
    vec![
        case(M::GET, "/healthz", "/healthz", Public),
        case(M::GET, "/readyz", "/readyz", Public),
        case(M::GET, "/metrics", "/metrics", Public),
        case(M::GET, "/api/v1/openapi.json", "/api/v1/openapi.json", Public),
        case(M::POST, "/api/v1/session", "/api/v1/session", Login)
            .body(json!({ "username": "a-admin", "password": "guessing" })),
        case(M::GET, "/api/v1/session", "/api/v1/session", OwnSession),
        case(M::DELETE, "/api/v1/session", "/api/v1/session", OwnSession),
        case(M::GET, "/api/v1/status", "/api/v1/status", Filtered),
        case(M::GET, "/api/v1/devices", "/api/v1/devices", Filtered),
        case(M::POST, "/api/v1/devices", "/api/v1/devices", Refused)
            // Take A's SIM over by provisioning its IMSI into B.
            .body(json!({ "devices": [{ "imsi": A_DEV, "tenant": "tenant-b", "group": "b-meters" }] }))
            .admin(json!({ "devices": [{ "imsi": A_DEV, "tenant": "tenant-a", "group": "a-meters", "label": "A meter" }] })),
        case(M::GET, "/api/v1/devices/summary", "/api/v1/devices/summary", Filtered),
        case(M::GET, "/api/v1/devices/columns", "/api/v1/devices/columns", Filtered),
        case(M::GET, "/api/v1/devices/{imsi}", dev(""), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/baseline", dev("/baseline"), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/usage", dev("/usage"), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/locations", dev("/locations"), Hidden),
        case(M::GET, "/api/v1/map/devices", "/api/v1/map/devices", Filtered),
        case(M::GET, "/api/v1/devices/{imsi}/traffic", dev("/traffic"), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/flows", dev("/flows"), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/violations", dev("/violations"), Hidden),
        case(M::GET, "/api/v1/flows/unattributed", "/api/v1/flows/unattributed", OperatorWide),
        case(M::GET, "/api/v1/findings", "/api/v1/findings", Filtered),
        case(M::GET, "/api/v1/findings/summary", "/api/v1/findings/summary", Filtered),
        case(M::GET, "/api/v1/findings/{id}", format!("/api/v1/findings/{a_finding}"), Hidden),
        case(M::GET, "/api/v1/devices/{imsi}/findings", dev("/findings"), Hidden),
        case(M::GET, "/api/v1/events", "/api/v1/events", Stream),
        case(M::GET, "/api/v1/alerts", "/api/v1/alerts", Filtered),
        case(M::GET, "/api/v1/alerts/summary", "/api/v1/alerts/summary", Filtered),
        case(M::GET, "/api/v1/alerts/{id}", format!("/api/v1/alerts/{a_alert}"), Hidden),
        case(
            M::GET,
            "/api/v1/alerts/{id}/notifications",
            format!("/api/v1/alerts/{a_alert}/notifications"),
            Hidden,
        ),
        case(
            M::GET,
            "/api/v1/notifications/{id}",
            format!("/api/v1/notifications/{a_notification}"),
            Hidden,
        ),
        // Channels are nobody's tenant's: B sees names and types only.
        case(M::GET, "/api/v1/notify/channels", "/api/v1/notify/channels", Filtered),
        case(M::GET, "/api/v1/notify/subscriptions", "/api/v1/notify/subscriptions", Filtered),
        case(M::POST, "/api/v1/notify/subscriptions", "/api/v1/notify/subscriptions", Refused)
            // Subscribe to A's alerts from B.
            .body(subscription("b-into-a", "tenant-a"))
            .admin(subscription("a-subs-2", "tenant-a")),
        case(M::PUT, "/api/v1/notify/subscriptions/{name}", "/api/v1/notify/subscriptions/a-subs-api", Refused)
            // Take A's stored subscription over by moving it to B.
            .body(subscription("a-subs-api", "tenant-b"))
            .admin(subscription("a-subs-api", "tenant-a")),
        case(M::DELETE, "/api/v1/notify/subscriptions/{name}", "/api/v1/notify/subscriptions/a-subs-api", Refused),
        case(M::POST, "/api/v1/alerts/{id}/ack", format!("/api/v1/alerts/{a_alert}/ack"), Refused),
        case(M::POST, "/api/v1/alerts/{id}/clear", format!("/api/v1/alerts/{a_alert}/clear"), Refused),
        case(M::POST, "/api/v1/alerts/{id}/comments", format!("/api/v1/alerts/{a_alert}/comments"), Refused)
            .body(json!({ "text": "written by tenant B" })),
        case(M::GET, "/api/v1/groups/{id}/policy", "/api/v1/groups/a-meters/policy", Hidden),
        case(M::PUT, "/api/v1/groups/{id}/policy", "/api/v1/groups/a-meters/policy", Refused)
            .body(json!({ "default_action": "allow", "rules": [] }))
            .admin(json!({ "default_action": "deny", "rules": [] })),
        case(M::GET, "/api/v1/rules", "/api/v1/rules", Filtered),
        case(M::POST, "/api/v1/rules", "/api/v1/rules", Refused)
            .body(rule("b-into-a", "tenant-a"))
            .admin(rule("a-rule-2", "tenant-a")),
        case(M::POST, "/api/v1/rules/backtest", "/api/v1/rules/backtest?since=7d", Refused)
            .body(rule("draft", "tenant-a")),
        case(M::GET, "/api/v1/rules/{id}", "/api/v1/rules/a-rule", Hidden),
        case(M::PUT, "/api/v1/rules/{id}", "/api/v1/rules/a-rule", Refused)
            // Take A's rule over by rescoping it to B.
            .body(rule("a-rule", "tenant-b"))
            .admin(rule("a-rule", "tenant-a")),
        case(M::DELETE, "/api/v1/rules/{id}", "/api/v1/rules/a-rule", Refused),
        case(M::POST, "/api/v1/rules/{id}/backtest", "/api/v1/rules/a-rule/backtest?since=7d", Hidden),
        case(M::GET, "/api/v1/audit", "/api/v1/audit", Filtered),
        case(M::GET, "/api/v1/devices/{imsi}/audit", dev("/audit"), Hidden),
        case(M::POST, "/api/v1/devices/{imsi}/actions", dev("/actions"), Refused)
            .body(json!({ "action": "unblock", "reason": "tenant B says so" }))
            .admin(json!({ "action": "block", "reason": "still blocked" })),
        case(M::GET, "/api/v1/tenants", "/api/v1/tenants", Filtered),
        case(M::PUT, "/api/v1/tenants/{id}", "/api/v1/tenants/tenant-a", Refused)
            .body(json!({ "name": "renamed by B" }))
            .admin(json!({ "name": "Tenant A" })),
        case(M::GET, "/api/v1/groups", "/api/v1/groups", Filtered),
        case(M::PUT, "/api/v1/groups/{id}", "/api/v1/groups/a-meters", Refused)
            // Take A's group over by naming B as its tenant.
            .body(json!({ "tenant": "tenant-b" }))
            .admin(json!({ "tenant": "tenant-a", "name": "A meters" })),
        case(M::GET, "/api/v1/users", "/api/v1/users", Filtered),
        case(M::POST, "/api/v1/users", "/api/v1/users", Refused)
            .body(json!({ "name": "b-in-a", "password": PASSWORD, "role": "admin", "tenant": "tenant-a" }))
            .admin(json!({ "name": "a-viewer", "password": PASSWORD, "role": "viewer", "tenant": "tenant-a" })),
        case(M::DELETE, "/api/v1/users/{name}", "/api/v1/users/a-admin", Refused),
        case(M::GET, "/api/v1/apikeys", "/api/v1/apikeys", Filtered),
        case(M::POST, "/api/v1/apikeys", "/api/v1/apikeys", Refused)
            .body(json!({ "name": "b-in-a", "role": "admin", "tenant": "tenant-a" }))
            .admin(json!({ "name": "a-key-2", "role": "viewer", "tenant": "tenant-a" })),
        case(M::DELETE, "/api/v1/apikeys/{id}", format!("/api/v1/apikeys/{a_key_id}"), Refused),
    ]
}

fn leaks(text: &str) -> Option<&'static str> {
    A_MARKERS.iter().copied().find(|m| text.contains(m))
}

/// Reads a server-sent event stream for a while (it never ends by itself).
async fn read_stream(c: &Client, auth: &Auth) -> (StatusCode, String) {
    let http = reqwest::Client::new();
    let mut r = http
        .get(format!("{}/api/v1/events", c.base))
        .header("last-event-id", "0");
    match auth {
        Auth::Bearer(t) => r = r.bearer_auth(t),
        Auth::Session { cookie, .. } => {
            r = r.header("cookie", format!("simguard_session={cookie}"))
        }
        Auth::None => {}
    }
    let mut resp = r.send().await.unwrap();
    let status = resp.status();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains(B_DEV) && text.contains(A_DEV) {
            break;
        }
    }
    (status, text)
}

/// What the operator-wide admin reads of A, to compare before and after.
async fn a_state(c: &Client) -> Value {
    let admin = bearer(ADMIN);
    let mut out = serde_json::Map::new();
    for p in [
        format!("/api/v1/devices/{A_DEV}"),
        "/api/v1/groups".to_string(),
        "/api/v1/groups/a-meters/policy".to_string(),
        "/api/v1/rules/a-rule".to_string(),
        "/api/v1/tenants".to_string(),
        "/api/v1/alerts".to_string(),
        "/api/v1/users".to_string(),
        "/api/v1/apikeys".to_string(),
        format!("/api/v1/devices/{A_DEV}/audit"),
        "/api/v1/notify/subscriptions".to_string(),
    ] {
        let a = c.get(&p, &admin).await;
        assert_eq!(a.status, StatusCode::OK, "{p}: {}", a.text);
        let mut v = a.json();
        // Live counters move by themselves.
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
            o.remove("last_seen");
        }
        out.insert(p, v);
    }
    let alerts = c.get("/api/v1/alerts?tenant=tenant-a", &admin).await.json();
    for a in alerts["items"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let p = format!("/api/v1/alerts/{id}");
        out.insert(p.clone(), c.get(&p, &admin).await.json());
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_b_can_neither_see_nor_change_tenant_a_through_any_route() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "", NOTIFY);
    // Findings, and a position for each device (its serving network's
    // country: Germany for A, France for B).
    let located = |imsi: &str, network: &str| simguard_engine::Output::Located {
        imsi: simguard_engine::Digits::parse(imsi).unwrap(),
        time: 1_000,
        network: simguard_engine::Plmn::parse(network),
        cell: None,
    };
    feed_outputs(
        dir.path(),
        vec![
            simguard_engine::Output::Finding(Box::new(finding(
                1, 0, A_DEV, "tenant-a", "a-meters",
            ))),
            simguard_engine::Output::Finding(Box::new(finding(
                1, 1, B_DEV, "tenant-b", "b-meters",
            ))),
            located(A_DEV, "26201"),
            located(B_DEV, "20801"),
        ],
        &cfg,
    );
    let a_finding = simguard_engine::Finding::make_id(1, 0).to_string();
    add_user(dir.path(), "a-admin", Role::Admin, Some("tenant-a"));
    add_user(dir.path(), "b-admin", Role::Admin, Some("tenant-b"));
    add_user(dir.path(), "root", Role::Admin, None);
    add_key(dir.path(), "a-key", A_KEY, Role::Admin, Some("tenant-a"));
    add_key(dir.path(), "b-key", B_KEY, Role::Admin, Some("tenant-b"));
    let server = start_with(cfg).await;
    let c = Client::of(&server);
    let admin = bearer(ADMIN);

    // Tenant A's and B's things, made by the operator-wide admin, after
    // journal sequence 1 (see `feed`).
    burn_first_seq(&c).await;
    let ok = |a: Answer, what: &str| {
        assert!(a.status.is_success(), "{what}: {} {}", a.status, a.text);
        a.json()
    };
    for (t, name) in [("tenant-a", "Tenant A"), ("tenant-b", "Tenant B")] {
        let body = json!({ "name": name });
        ok(
            c.request(
                Method::PUT,
                &format!("/api/v1/tenants/{t}"),
                &admin,
                Some(&body),
                &[],
            )
            .await,
            "tenant",
        );
    }
    ok(
        c.request(
            Method::POST,
            "/api/v1/devices",
            &admin,
            Some(&json!({ "devices": [
                { "imsi": A_DEV, "tenant": "tenant-a", "group": "a-meters", "label": "A meter" },
                { "imsi": B_DEV, "tenant": "tenant-b", "group": "b-meters" }
            ] })),
            &[],
        )
        .await,
        "devices",
    );
    for (g, t) in [("a-meters", "tenant-a"), ("b-meters", "tenant-b")] {
        ok(
            c.request(
                Method::PUT,
                &format!("/api/v1/groups/{g}/policy"),
                &admin,
                Some(&json!({ "default_action": "deny", "rules": [] })),
                &[],
            )
            .await,
            "policy",
        );
        let id = if t == "tenant-a" { "a-rule" } else { "b-rule" };
        ok(
            c.request(
                Method::POST,
                "/api/v1/rules",
                &admin,
                Some(&rule(id, t)),
                &[],
            )
            .await,
            "rule",
        );
    }
    for imsi in [A_DEV, B_DEV] {
        ok(
            c.request(
                Method::POST,
                &format!("/api/v1/devices/{imsi}/actions"),
                &admin,
                Some(&json!({ "action": "block", "reason": "isolation test" })),
                &[],
            )
            .await,
            "action",
        );
    }
    // A subscription of each tenant stored through the API (the config
    // has one of each too).
    for (name, t) in [("a-subs-api", "tenant-a"), ("b-subs-api", "tenant-b")] {
        ok(
            c.request(
                Method::POST,
                "/api/v1/notify/subscriptions",
                &admin,
                Some(&subscription(name, t)),
                &[],
            )
            .await,
            "subscription",
        );
    }
    let alerts = c.get("/api/v1/alerts?tenant=tenant-a", &admin).await.json();
    let a_alert = alerts["items"][0]["id"]
        .as_str()
        .expect("A's alert")
        .to_string();
    let keys = c.get("/api/v1/apikeys", &admin).await.json();
    let a_key_id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "a-key")
        .and_then(|k| k["id"].as_i64())
        .unwrap();
    let told = c
        .get(&format!("/api/v1/alerts/{a_alert}/notifications"), &admin)
        .await
        .json();
    let a_notification = told[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("A's notification: {told}"))
        .to_string();
    assert!(a_notification.contains("a-subs"), "{told}");
    let cases = cases(&a_alert, &a_finding, a_key_id, &a_notification);

    // Every route of the router has a case, and every case is a route.
    let routes: BTreeSet<(String, String)> = simguard_server::api::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_string()))
        .collect();
    assert_eq!(cases.len(), covered.len(), "a route has two cases");
    assert_eq!(
        routes.symmetric_difference(&covered).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without an isolation case (or cases without a route)"
    );
    // ... and the OpenAPI document lists every API route.
    let doc = c.get("/api/v1/openapi.json", &Auth::None).await.json();
    for (m, p) in &routes {
        if !p.starts_with("/api/v1/") || p == "/api/v1/openapi.json" {
            continue;
        }
        assert!(
            doc["paths"][p][m.to_lowercase()].is_object(),
            "{m} {p} is not in the OpenAPI document"
        );
    }

    // Without credentials, nothing but the public routes and the login.
    for k in &cases {
        if matches!(k.expect, Expect::Public | Expect::Login) {
            continue;
        }
        let a = c
            .request(k.method.clone(), &k.url, &Auth::None, k.body.as_ref(), &[])
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{} {} without credentials: {}",
            k.method,
            k.url,
            a.text
        );
    }

    let before = a_state(&c).await;
    assert!(
        leaks(&before.to_string()).is_some(),
        "A's state is visible to the admin"
    );
    let b_session = c.login("b-admin").await;
    let b_key = bearer(B_KEY);

    // Tenant B's admin, by cookie session and by API key. The logout case
    // goes last (it ends the session).
    let mut order: Vec<&Case> = cases.iter().collect();
    order.sort_by_key(|k| k.route == "/api/v1/session" && k.method == Method::DELETE);
    for (who, auth) in [("B's session", &b_session), ("B's API key", &b_key)] {
        for k in &order {
            let what = format!("{who}: {} {}", k.method, k.url);
            if k.expect == Expect::Stream {
                let (status, text) = read_stream(&c, auth).await;
                assert_eq!(status, StatusCode::OK, "{what}");
                assert!(
                    text.contains(B_DEV),
                    "{what}: B's own finding is replayed: {text}"
                );
                assert_eq!(leaks(&text), None, "{what}: {text}");
                continue;
            }
            let a = c
                .request(k.method.clone(), &k.url, auth, k.body.as_ref(), &[])
                .await;
            let s = a.status;
            match k.expect {
                Expect::Public => assert_eq!(s, StatusCode::OK, "{what}"),
                Expect::Login => {
                    assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {}", a.text);
                    assert!(a.set_cookie().is_none(), "{what}");
                }
                Expect::OwnSession => match auth {
                    Auth::Bearer(_) => assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}"),
                    _ => {
                        assert_eq!(s, StatusCode::OK, "{what}: {}", a.text);
                        assert_eq!(leaks(&a.text), None, "{what}: {}", a.text);
                    }
                },
                Expect::Hidden => {
                    assert_eq!(s, StatusCode::NOT_FOUND, "{what}: {}", a.text)
                }
                Expect::Filtered => {
                    assert_eq!(s, StatusCode::OK, "{what}: {}", a.text);
                    assert_eq!(leaks(&a.text), None, "{what}: {}", a.text);
                }
                Expect::Refused => assert!(
                    [
                        StatusCode::FORBIDDEN,
                        StatusCode::NOT_FOUND,
                        StatusCode::UNPROCESSABLE_ENTITY
                    ]
                    .contains(&s),
                    "{what}: {s} {}",
                    a.text
                ),
                Expect::OperatorWide => {
                    assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {}", a.text)
                }
                Expect::Stream => unreachable!(),
            }
            // Error answers may echo the request's own path; a success
            // answer (and the lists) must carry nothing of A.
            if s.is_success() && k.expect != Expect::Public {
                assert_eq!(leaks(&a.text), None, "{what}: {}", a.text);
            }
        }
    }
    // Counts: B's own only.
    let st = c.get("/api/v1/status", &b_key).await.json();
    assert_eq!(st["devices"], 1, "{st}");
    let sum = c.get("/api/v1/findings/summary", &b_key).await.json();
    assert_eq!(sum["total"], 1, "{sum}");
    let sum = c.get("/api/v1/devices/summary", &b_key).await.json();
    assert_eq!(sum["total"], 1, "{sum}");
    let cols = c.get("/api/v1/devices/columns", &b_key).await.json();
    assert_eq!(cols["imsi"], json!([B_DEV]), "{cols}");
    let sum = c.get("/api/v1/alerts/summary", &b_key).await.json();
    assert_eq!(sum["active_total"], 1, "{sum}");

    // Nothing of A changed, and A's own admin still gets in.
    assert_eq!(a_state(&c).await, before, "tenant B changed tenant A");
    assert_eq!(
        c.get("/api/v1/devices", &bearer(A_KEY)).await.status,
        StatusCode::OK
    );
    c.login("a-admin").await;

    // The operator-wide admin reaches all of it (by session cookie; the
    // setup above went through its API key): reads first, deletes last,
    // the logout at the very end.
    let root = c.login("root").await;
    let mut order: Vec<&Case> = cases.iter().collect();
    order.sort_by_key(|k| match k.method {
        _ if k.route == "/api/v1/session" && k.method == Method::DELETE => 3,
        Method::GET => 0,
        Method::DELETE => 2,
        _ => 1,
    });
    for k in order {
        let what = format!("admin: {} {}", k.method, k.url);
        if k.expect == Expect::Stream {
            let (status, text) = read_stream(&c, &root).await;
            assert_eq!(status, StatusCode::OK, "{what}");
            assert!(text.contains(A_DEV), "{what}: {text}");
            continue;
        }
        let body = k.admin_body.as_ref().or(k.body.as_ref());
        let a = c.request(k.method.clone(), &k.url, &root, body, &[]).await;
        match k.expect {
            Expect::Login => assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}"),
            _ => assert!(a.status.is_success(), "{what}: {} {}", a.status, a.text),
        }
        // (Counts, a policy, and a device's flows and violations, of which
        // A has none, name nothing.)
        let anonymous = [
            "/api/v1/status",
            "/api/v1/findings/summary",
            "/api/v1/alerts/summary",
            "/api/v1/devices/{imsi}/flows",
            "/api/v1/devices/{imsi}/violations",
            "/api/v1/groups/{id}/policy",
            "/api/v1/notify/channels",
        ];
        if matches!(k.expect, Expect::Hidden | Expect::Filtered) && !anonymous.contains(&k.route) {
            assert!(
                leaks(&a.text).is_some(),
                "{what}: A's data expected: {}",
                a.text
            );
        }
    }
    let st = c.get("/api/v1/status", &admin).await.json();
    assert_eq!(st["devices"], 2, "{st}");
    server.shutdown().await;
}
