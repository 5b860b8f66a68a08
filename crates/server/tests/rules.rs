//! Response rules, people's actions and the audit trail over real HTTP on
//! ephemeral ports: rules CRUD with field-named validation errors; tenant
//! scoping of rules, actions and the audit; a person's block in the audit
//! and in the device's lifecycle; rules firing on findings produced through
//! RADIUS (radclient), enforced and dry-run; the backtest (exact devices,
//! no action taken); rules from the configuration; idempotent restarts.

mod flows_support;

use flows_support::{config, config_with, now_ms, radclient, start_with, Acct, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use simguard_server::Server;
use simguard_store::{Role, Store};
use std::path::Path;
use std::time::Duration;

const ACME_OP: &str = "acme-operator-token";
const ACME_VIEW: &str = "acme-viewer-token";
const GLOBEX_OP: &str = "globex-operator-token";
/// The admin key's name, as the actor of its actions.
const ADMIN_ACTOR: &str = "user:admin (SIMGUARD_ADMIN_TOKEN)";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn of(server: &Server) -> Client {
        Client {
            base: format!("http://{}", server.http_addr),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, Method::GET, path, None).await
    }

    async fn ok(&self, token: &str, path: &str) -> Value {
        let (s, v) = self.get(token, path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(token, method, path, Some(body)).await
    }

    /// An admin write that must succeed (200 or 201).
    async fn must(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self.send(ADMIN, method.clone(), path, body.clone()).await;
        assert!(s.is_success(), "{method} {path} {body}: {s} {v}");
        v
    }
}

fn add_key(dir: &Path, name: &str, token: &str, role: Role, tenant: Option<&str>) {
    Store::open(dir.join("simguard.db"))
        .unwrap()
        .add_api_key(name, token, role, tenant, 0)
        .unwrap();
}

/// Tenants acme and globex; groups acme/nbiot and acme/watched (NB-IoT
/// only, so the EUTRAN sessions of radclient are findings), acme/any (no
/// declared RAT), globex/g; devices 101..104 of acme, 201 of globex.
async fn inventory(c: &Client) {
    for t in ["acme", "globex"] {
        c.must(
            Method::PUT,
            &format!("/api/v1/tenants/{t}"),
            json!({"name": t}),
        )
        .await;
    }
    for (g, t, rats) in [
        ("nbiot", "acme", json!([8])),
        ("watched", "acme", json!([8])),
        ("any", "acme", json!([])),
        ("g", "globex", json!([])),
    ] {
        c.must(
            Method::PUT,
            &format!("/api/v1/groups/{g}"),
            json!({"tenant": t, "profile": {"allowed_rats": rats}}),
        )
        .await;
    }
    c.must(
        Method::POST,
        "/api/v1/devices",
        json!({"devices": [
            {"imsi": "901700000000101", "tenant": "acme", "group": "nbiot"},
            {"imsi": "901700000000102", "tenant": "acme", "group": "nbiot"},
            {"imsi": "901700000000103", "tenant": "acme", "group": "watched"},
            {"imsi": "901700000000104", "tenant": "acme", "group": "any"},
            {"imsi": "901700000000201", "tenant": "globex", "group": "g"},
        ]}),
    )
    .await;
}

async fn start(dir: &Path) -> (Server, Client) {
    let server = start_with(config(dir)).await;
    // Tenant admins: writing rules needs the admin role.
    add_key(dir, "acme-ops", ACME_OP, Role::Admin, Some("acme"));
    add_key(dir, "acme-view", ACME_VIEW, Role::Viewer, Some("acme"));
    add_key(dir, "globex-ops", GLOBEX_OP, Role::Admin, Some("globex"));
    let c = Client::of(&server);
    (server, c)
}

fn scanners() -> Value {
    json!({
        "id": "block-scanners",
        "name": "Block scanners",
        "mode": "dry-run",
        "scope": {"tenant": "acme"},
        "trigger": {"finding": {"types": ["scanning"], "min_severity": "major"}},
        "steps": [{"action": "throttle", "kbps": 64, "expire_secs": 3600}, {"action": "block"}],
        "cooldown_secs": 60,
        "escalation_window_secs": 3600
    })
}

fn lifecycle_of(v: &Value) -> String {
    v["lifecycle"]
        .as_str()
        .unwrap_or_else(|| panic!("no lifecycle in {v}"))
        .to_string()
}

/// Waits until the device's audit trail has `n` entries (the sink commits
/// about once a second).
async fn audit_of(c: &Client, token: &str, imsi: &str, n: usize) -> Vec<Value> {
    let t0 = std::time::Instant::now();
    loop {
        let v = c.ok(token, &format!("/api/v1/devices/{imsi}/audit")).await;
        let items = v["items"].as_array().unwrap().clone();
        if items.len() >= n {
            return items;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {n} audit entries of {imsi}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_crud_with_field_named_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path()).await;
    assert_eq!(c.ok(ADMIN, "/api/v1/rules").await["items"], json!([]));

    let (s, v) = c
        .send(ADMIN, Method::POST, "/api/v1/rules", scanners())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["seq"].as_u64().unwrap() > 0);
    // The stored form is what was written, every field set.
    let one = c.ok(ADMIN, "/api/v1/rules/block-scanners").await;
    let mut want = scanners();
    want["scope"] = json!({"tenant": "acme", "group": null, "imsi": null});
    want["enabled"] = json!(true);
    assert_eq!(one, want);
    assert_eq!(v["rule"], one);
    let list = c.ok(ADMIN, "/api/v1/rules").await;
    assert_eq!(list["items"], json!([one]));

    // Creating it again is a conflict; replacing is a PUT, which is how the
    // mode switches from dry-run to enforce.
    let (s, _) = c
        .send(ADMIN, Method::POST, "/api/v1/rules", scanners())
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let mut enforce = scanners();
    enforce["mode"] = json!("enforce");
    enforce.as_object_mut().unwrap().remove("id");
    let (s, v) = c
        .send(
            ADMIN,
            Method::PUT,
            "/api/v1/rules/block-scanners",
            enforce.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        c.ok(ADMIN, "/api/v1/rules/block-scanners").await["mode"],
        "enforce"
    );
    enforce["id"] = json!("other-id");
    let (s, v) = c
        .send(ADMIN, Method::PUT, "/api/v1/rules/block-scanners", enforce)
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );

    // Validation errors name the field, in the message and in details.
    for (patch, field) in [
        (json!({"steps": [{"action": "throttle"}]}), "steps[0].kbps"),
        (
            json!({"steps": [{"action": "notify"}, {"action": "launch"}]}),
            "steps[1].action",
        ),
        (json!({"steps": []}), "steps"),
        (json!({"mode": "maybe"}), "mode"),
        (json!({"id": "Not A Slug"}), "id"),
        (
            json!({"trigger": {"finding": {"types": ["scanning", "gossip"]}}}),
            "trigger.finding.types[1]",
        ),
        (
            json!({"trigger": {"usage": {"period": "day", "max_bytes": 0}}}),
            "trigger.usage.max_bytes",
        ),
        (
            json!({"trigger": {"connectivity": {"event": "exploded"}}}),
            "trigger.connectivity.event",
        ),
        (
            json!({"scope": {"tenant": "acme", "imsi": "12ab"}}),
            "scope.imsi",
        ),
    ] {
        let mut body = scanners();
        body["id"] = json!("new-rule");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = c.send(ADMIN, Method::POST, "/api/v1/rules", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{patch}: {v}");
        assert_eq!(v["error"]["details"][0]["field"], field, "{patch}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{v}"
        );
    }
    // Unknown keys are refused, not ignored.
    let mut body = scanners();
    body["id"] = json!("new-rule");
    body["severity"] = json!("major");
    let (s, v) = c.send(ADMIN, Method::POST, "/api/v1/rules", body).await;
    assert!(s.is_client_error(), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("severity"),
        "{v}"
    );
    // Nothing invalid was written.
    assert_eq!(
        c.ok(ADMIN, "/api/v1/rules").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Viewers read, never write.
    let (s, _) = c
        .send(
            ACME_VIEW,
            Method::DELETE,
            "/api/v1/rules/block-scanners",
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        c.get(ACME_VIEW, "/api/v1/rules/block-scanners").await.0,
        StatusCode::OK
    );

    let (s, v) = c
        .call(ADMIN, Method::DELETE, "/api/v1/rules/block-scanners", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        c.get(ADMIN, "/api/v1/rules/block-scanners").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = c
        .call(ADMIN, Method::DELETE, "/api/v1/rules/block-scanners", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let doc = c.ok(ADMIN, "/api/v1/openapi.json").await;
    for p in [
        "/api/v1/rules",
        "/api/v1/rules/{id}",
        "/api/v1/rules/{id}/backtest",
        "/api/v1/rules/backtest",
        "/api/v1/audit",
        "/api/v1/devices/{imsi}/audit",
        "/api/v1/devices/{imsi}/actions",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_blocks_a_device_with_a_reason_and_the_audit_says_who_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path()).await;
    inventory(&c).await;
    let dev = "/api/v1/devices/901700000000101";
    assert_eq!(lifecycle_of(&c.ok(ADMIN, dev).await), "active");

    // A reason is required; parameters are checked by field.
    for (body, field) in [
        (json!({"action": "block", "reason": "  "}), "reason"),
        (json!({"action": "throttle", "reason": "x"}), "kbps"),
        (json!({"action": "block", "reason": "x", "kbps": 5}), "kbps"),
        (json!({"action": "notify", "reason": "x"}), "action"),
        (
            json!({"action": "unblock", "reason": "x", "expire_secs": 60}),
            "expire_secs",
        ),
    ] {
        let (s, v) = c
            .send(ADMIN, Method::POST, &format!("{dev}/actions"), body.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["details"][0]["field"], field, "{body}: {v}");
    }
    let (s, _) = c
        .send(
            ADMIN,
            Method::POST,
            "/api/v1/devices/901700000000999/actions",
            json!({"action": "block", "reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = c
        .send(
            ADMIN,
            Method::POST,
            &format!("{dev}/actions"),
            json!({"action": "block", "reason": "reported stolen by the customer"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["lifecycle"], "blocked");
    let a = &v["action"];
    assert_eq!(a["id"], v["action_id"], "{v}");
    assert_eq!(a["actor"], ADMIN_ACTOR);
    assert_eq!(a["reason"], "reported stolen by the customer");
    assert_eq!(a["action"], "block");
    assert_eq!(
        (a["from"].as_str(), a["to"].as_str()),
        (Some("active"), Some("blocked"))
    );
    assert_eq!(a["enforce"], true);
    assert_eq!(a["mode"], "enforce");
    assert_eq!(a["rule"], Value::Null);
    assert_eq!(lifecycle_of(&c.ok(ADMIN, dev).await), "blocked");

    // In the audit, by device and by the global list with filters.
    let trail = audit_of(&c, ADMIN, "901700000000101", 1).await;
    assert_eq!(trail[0], *a);
    let by_actor = c
        .ok(
            ADMIN,
            &format!("/api/v1/audit?actor={}", urlenc(ADMIN_ACTOR)),
        )
        .await;
    assert_eq!(by_actor["items"], json!([a]));
    assert_eq!(
        c.ok(ADMIN, "/api/v1/audit?action=throttle").await["items"],
        json!([])
    );
    assert_eq!(
        c.ok(ADMIN, "/api/v1/audit?mode=dry-run").await["items"],
        json!([])
    );
    let (s, _) = c.get(ADMIN, "/api/v1/audit?action=explode").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // An operator of the tenant undoes it; the trail keeps both, newest first.
    let (s, v) = c
        .send(
            ACME_OP,
            Method::POST,
            &format!("{dev}/actions"),
            json!({"action": "unblock", "reason": "found in the warehouse"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["lifecycle"], "active");
    let trail = audit_of(&c, ADMIN, "901700000000101", 2).await;
    assert_eq!(trail[0]["actor"], "user:acme-ops");
    assert_eq!(trail[0]["action"], "unblock");
    assert_eq!(trail[1]["action"], "block");
    // Pages of one, with a cursor.
    let p1 = c.ok(ADMIN, "/api/v1/audit?limit=1").await;
    let cursor = p1["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let p2 = c
        .ok(ADMIN, &format!("/api/v1/audit?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(
        (
            p1["items"][0]["action"].as_str(),
            p2["items"][0]["action"].as_str()
        ),
        (Some("unblock"), Some("block"))
    );
    assert_eq!(p2["next_cursor"], Value::Null);

    // A throttle that expires, as a person can set it.
    let (s, v) = c
        .send(
            ADMIN,
            Method::POST,
            &format!("{dev}/actions"),
            json!({"action": "throttle", "kbps": 32, "reason": "over plan", "expire_secs": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["lifecycle"], "throttled");
    assert_eq!(v["action"]["kbps"], 32);
    assert!(v["action"]["expires_ms"].as_i64().unwrap() > now_ms());
    server.shutdown().await;
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_see_and_change_only_their_rules_actions_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path()).await;
    inventory(&c).await;

    // A tenant's rule is scoped to its tenant, said or not.
    let mut mine = scanners();
    mine.as_object_mut().unwrap().remove("scope");
    let (s, v) = c.send(ACME_OP, Method::POST, "/api/v1/rules", mine).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["rule"]["scope"]["tenant"], "acme");
    let mut theirs = scanners();
    theirs["id"] = json!("sneaky");
    theirs["scope"] = json!({"tenant": "globex"});
    let (s, v) = c
        .send(ACME_OP, Method::POST, "/api/v1/rules", theirs.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "scope.tenant");
    let (s, _) = c
        .send(ACME_OP, Method::POST, "/api/v1/rules/backtest", theirs)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // An operator-wide rule (no tenant) is the operator's.
    let mut global = scanners();
    global["id"] = json!("global");
    global.as_object_mut().unwrap().remove("scope");
    c.must(Method::POST, "/api/v1/rules", global).await;

    let ids = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(c.ok(ADMIN, "/api/v1/rules").await),
        ["block-scanners", "global"]
    );
    assert_eq!(
        ids(c.ok(ACME_OP, "/api/v1/rules").await),
        ["block-scanners"]
    );
    assert_eq!(
        ids(c.ok(GLOBEX_OP, "/api/v1/rules").await),
        Vec::<String>::new()
    );
    assert_eq!(
        c.get(GLOBEX_OP, "/api/v1/rules/block-scanners").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(ACME_OP, "/api/v1/rules/global").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = c
        .send(
            GLOBEX_OP,
            Method::PUT,
            "/api/v1/rules/block-scanners",
            scanners(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's rule does not exist for globex"
    );
    let (s, _) = c
        .call(
            GLOBEX_OP,
            Method::DELETE,
            "/api/v1/rules/block-scanners",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .call(
            GLOBEX_OP,
            Method::POST,
            "/api/v1/rules/block-scanners/backtest",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        c.ok(ADMIN, "/api/v1/rules/block-scanners").await["mode"],
        "dry-run"
    );

    // Actions: only on the caller's devices, only with a write role.
    let block = json!({"action": "block", "reason": "test"});
    let acme_dev = "/api/v1/devices/901700000000102";
    let globex_dev = "/api/v1/devices/901700000000201";
    let (s, _) = c
        .send(
            GLOBEX_OP,
            Method::POST,
            &format!("{acme_dev}/actions"),
            block.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .send(
            ACME_VIEW,
            Method::POST,
            &format!("{acme_dev}/actions"),
            block.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(lifecycle_of(&c.ok(ADMIN, acme_dev).await), "active");
    let (s, v) = c
        .send(
            ACME_OP,
            Method::POST,
            &format!("{acme_dev}/actions"),
            block.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = c
        .send(
            GLOBEX_OP,
            Method::POST,
            &format!("{globex_dev}/actions"),
            block,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The audit: each tenant its own, the operator everything.
    audit_of(&c, ADMIN, "901700000000102", 1).await;
    audit_of(&c, ADMIN, "901700000000201", 1).await;
    let imsis = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["imsi"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        imsis(c.ok(ADMIN, "/api/v1/audit").await),
        ["901700000000201", "901700000000102"]
    );
    assert_eq!(
        imsis(c.ok(ACME_VIEW, "/api/v1/audit").await),
        ["901700000000102"]
    );
    assert_eq!(
        imsis(c.ok(GLOBEX_OP, "/api/v1/audit").await),
        ["901700000000201"]
    );
    assert_eq!(
        imsis(c.ok(ACME_VIEW, "/api/v1/audit?tenant=globex").await),
        Vec::<String>::new(),
        "a filter never widens the scope"
    );
    assert_eq!(
        imsis(c.ok(ACME_VIEW, "/api/v1/audit?imsi=901700000000201").await),
        Vec::<String>::new()
    );
    assert_eq!(
        c.get(ACME_VIEW, &format!("{globex_dev}/audit")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        imsis(c.ok(ACME_VIEW, &format!("{acme_dev}/audit")).await),
        ["901700000000102"]
    );
    server.shutdown().await;
}

/// radclient Start records (EUTRAN) for these IMSIs, now.
async fn sessions(server: &Server, dir: &Path, name: &str, imsis: &[&str]) {
    let t = now_ms() / 1000;
    let ips: Vec<String> = (0..imsis.len())
        .map(|i| format!("10.9.0.{}", i + 1))
        .collect();
    let sess: Vec<String> = imsis.iter().map(|i| format!("s-{name}-{i}")).collect();
    let reqs: Vec<Acct> = imsis
        .iter()
        .enumerate()
        .map(|(i, imsi)| Acct {
            imsi,
            ip: &ips[i],
            status: "Start",
            session: &sess[i],
            time: t,
            session_time: None,
        })
        .collect();
    radclient(server.acct_addr, dir, name, &reqs).await;
}

/// The ids of the findings of one type about one device (waits for `n`).
async fn findings_of(c: &Client, imsi: &str, kind: &str, n: usize) -> Vec<String> {
    let t0 = std::time::Instant::now();
    loop {
        let v = c
            .ok(ADMIN, &format!("/api/v1/findings?imsi={imsi}&type={kind}"))
            .await;
        let ids: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        if ids.len() >= n {
            return ids;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {kind} of {imsi}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rat_rule(id: &str, mode: &str, group: &str, steps: Value) -> Value {
    json!({
        "id": id,
        "mode": mode,
        "scope": {"tenant": "acme", "group": group},
        "trigger": {"finding": {"types": ["disallowed_rat"], "min_severity": "minor"}},
        "steps": steps
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_fire_on_findings_from_radius_enforced_or_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path()).await;
    inventory(&c).await;
    c.must(
        Method::POST,
        "/api/v1/rules",
        rat_rule(
            "rat-throttle",
            "enforce",
            "nbiot",
            json!([{"action": "throttle", "kbps": 64}]),
        ),
    )
    .await;
    c.must(
        Method::POST,
        "/api/v1/rules",
        rat_rule(
            "rat-watch",
            "dry-run",
            "watched",
            json!([{"action": "block"}]),
        ),
    )
    .await;

    // 101 (nbiot) and 103 (watched) use EUTRAN: a disallowed_rat finding each.
    sessions(
        &server,
        dir.path(),
        "fire",
        &["901700000000101", "901700000000103"],
    )
    .await;
    let f101 = findings_of(&c, "901700000000101", "disallowed_rat", 1).await;
    let f103 = findings_of(&c, "901700000000103", "disallowed_rat", 1).await;

    // Enforced: the device is throttled, the audit links the finding.
    let trail = audit_of(&c, ADMIN, "901700000000101", 1).await;
    let a = &trail[trail.len() - 1];
    assert_eq!(a["actor"], "rule:rat-throttle");
    assert_eq!(a["rule"], "rat-throttle");
    assert_eq!(a["action"], "throttle");
    assert_eq!(a["kbps"], 64);
    assert_eq!(a["mode"], "enforce");
    assert_eq!(a["finding"], f101[0].as_str(), "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .starts_with("disallowed_rat (minor)"),
        "{a}"
    );
    assert_eq!(
        (a["from"].as_str(), a["to"].as_str()),
        (Some("active"), Some("throttled"))
    );
    assert_eq!(a["enforce"], true);
    assert_eq!(
        lifecycle_of(&c.ok(ADMIN, "/api/v1/devices/901700000000101").await),
        "throttled"
    );

    // Dry-run: recorded, the lifecycle unchanged, nothing for the network.
    let trail = audit_of(&c, ADMIN, "901700000000103", 1).await;
    let d = &trail[trail.len() - 1];
    assert_eq!(d["actor"], "rule:rat-watch");
    assert_eq!(d["action"], "block");
    assert_eq!(d["mode"], "dry-run");
    assert_eq!(d["finding"], f103[0].as_str());
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str()),
        (Some("active"), Some("active"))
    );
    assert_eq!(d["enforce"], false);
    assert_eq!(
        lifecycle_of(&c.ok(ADMIN, "/api/v1/devices/901700000000103").await),
        "active"
    );
    let dry = c.ok(ADMIN, "/api/v1/audit?mode=dry-run").await;
    assert_eq!(dry["items"].as_array().unwrap().len(), 1);
    let by_rule = c.ok(ADMIN, "/api/v1/audit?rule=rat-throttle").await;
    assert_eq!(by_rule["items"].as_array().unwrap().len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backtest_reports_exactly_the_expected_devices_and_takes_no_action() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path()).await;
    inventory(&c).await;
    // Known findings: 101 and 102 (nbiot) and 103 (watched) use EUTRAN,
    // 104 (any) too but its group allows it.
    sessions(
        &server,
        dir.path(),
        "history",
        &[
            "901700000000101",
            "901700000000102",
            "901700000000103",
            "901700000000104",
        ],
    )
    .await;
    let mut expected = Vec::new();
    for imsi in ["901700000000101", "901700000000102"] {
        expected.push((
            imsi.to_string(),
            findings_of(&c, imsi, "disallowed_rat", 1).await[0].clone(),
        ));
    }
    findings_of(&c, "901700000000103", "disallowed_rat", 1).await;
    let audit_before = c.ok(ADMIN, "/api/v1/audit").await;
    assert_eq!(
        audit_before["items"],
        json!([]),
        "no rule existed: nothing was done"
    );

    // A draft rule, in enforce mode as written: the backtest runs it dry.
    let draft = rat_rule(
        "rat-block",
        "enforce",
        "nbiot",
        json!([{"action": "block", "expire_secs": 600}]),
    );
    let (s, r) = c
        .send(
            ADMIN,
            Method::POST,
            "/api/v1/rules/backtest?since=1d",
            draft.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let got: Vec<(String, String)> = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["imsi"].as_str().unwrap().to_string(),
                a["finding"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "{r}");
    assert_eq!(r["total_actions"], 2);
    assert_eq!(r["device_count"], 2);
    assert_eq!(r["by_action"], json!({"block": 2}));
    assert_eq!(r["by_step"], json!({"0": 2}));
    assert_eq!(r["truncated"], false);
    assert_eq!(r["rule"]["mode"], "dry-run");
    let devices: Vec<&str> = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["imsi"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["901700000000101", "901700000000102"]);
    for a in r["actions"].as_array().unwrap() {
        assert_eq!(a["mode"], "dry-run");
        assert_eq!(a["actor"], "rule:rat-block");
        assert_eq!(a["step"], 0);
        assert_eq!(a["would_set"], "blocked");
        assert_eq!(a["enforce"], false);
        assert!(
            a["reason"].as_str().unwrap().starts_with("disallowed_rat"),
            "{a}"
        );
    }

    // Saved (dry-run, created after the findings): the same report by id.
    c.must(
        Method::POST,
        "/api/v1/rules",
        rat_rule(
            "rat-block",
            "dry-run",
            "nbiot",
            json!([{"action": "block"}]),
        ),
    )
    .await;
    let (s, r2) = c
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/rules/rat-block/backtest?since=7d",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r2}");
    assert_eq!(r2["devices"], r["devices"]);
    assert_eq!(r2["total_actions"], 2);
    let (s, v) = c
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/rules/rat-block/backtest?since=soon",
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("since"))
    );
    assert_eq!(
        c.call(ADMIN, Method::POST, "/api/v1/rules/none/backtest", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.call(
            ACME_VIEW,
            Method::POST,
            "/api/v1/rules/rat-block/backtest",
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Nothing was done: lifecycles unchanged, the audit still empty (the
    // sink has committed everything up to the backtests' writes).
    for imsi in ["901700000000101", "901700000000102"] {
        assert_eq!(
            lifecycle_of(&c.ok(ADMIN, &format!("/api/v1/devices/{imsi}")).await),
            "active"
        );
    }
    // A person's action after it, to know the store has caught up.
    c.must(
        Method::POST,
        "/api/v1/devices/901700000000104/actions",
        json!({"action": "block", "reason": "marker"}),
    )
    .await;
    audit_of(&c, ADMIN, "901700000000104", 1).await;
    let after = c.ok(ADMIN, "/api/v1/audit").await;
    let actors: Vec<&str> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, [ADMIN_ACTOR], "only the marker: {after}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_survives_restarts_and_replays_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let trail = {
        let (server, c) = start(&data).await;
        inventory(&c).await;
        c.must(
            Method::POST,
            "/api/v1/rules",
            rat_rule(
                "rat-throttle",
                "enforce",
                "nbiot",
                json!([{"action": "throttle", "kbps": 64}]),
            ),
        )
        .await;
        sessions(&server, &data, "restart", &["901700000000101"]).await;
        audit_of(&c, ADMIN, "901700000000101", 1).await;
        c.must(
            Method::POST,
            "/api/v1/devices/901700000000102/actions",
            json!({"action": "quarantine", "reason": "suspicious"}),
        )
        .await;
        audit_of(&c, ADMIN, "901700000000102", 1).await;
        let t = c.ok(ADMIN, "/api/v1/audit").await;
        assert_eq!(t["items"].as_array().unwrap().len(), 2);
        server.shutdown().await;
        t
    };
    // A plain restart (snapshot at shutdown): the same trail.
    {
        let (server, c) = start(&data).await;
        assert_eq!(c.ok(ADMIN, "/api/v1/audit").await, trail);
        server.shutdown().await;
    }
    // A full replay into a store that forgot how far it was: every action
    // is produced again with the same id and none is stored twice.
    for f in std::fs::read_dir(data.join("snapshots")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    reset_applied_seq(&data.join("simguard.db"));
    {
        let (server, c) = start(&data).await;
        assert_eq!(c.ok(ADMIN, "/api/v1/audit").await, trail);
        let r = Store::open_reader(data.join("simguard.db")).unwrap();
        assert_eq!(r.audit_rows().unwrap().0, 2);
        server.shutdown().await;
    }
}

fn reset_applied_seq(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("UPDATE meta SET value = 0 WHERE key = 'applied_seq'", [])
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_rules_are_written_at_start_and_win_over_api_edits() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[[rules]]
id = "cfg-offline"
name = "Offline trackers"
mode = "enforce"
scope = { tenant = "acme" }
trigger = { connectivity = { event = "went_offline" } }
steps = [{ action = "notify" }]
cooldown_secs = 300
"#;
    let cfg = || config_with(dir.path(), rules);
    let want = json!({
        "id": "cfg-offline", "name": "Offline trackers", "enabled": true, "mode": "enforce",
        "scope": {"tenant": "acme", "group": null, "imsi": null},
        "trigger": {"connectivity": {"event": "went_offline"}},
        "steps": [{"action": "notify"}],
        "cooldown_secs": 300, "escalation_window_secs": 86400
    });
    {
        let server = start_with(cfg()).await;
        let c = Client::of(&server);
        assert_eq!(c.ok(ADMIN, "/api/v1/rules/cfg-offline").await, want);
        let mut edited = want.clone();
        edited["mode"] = json!("dry-run");
        c.must(Method::PUT, "/api/v1/rules/cfg-offline", edited)
            .await;
        c.must(Method::POST, "/api/v1/rules", scanners()).await;
        assert_eq!(
            c.ok(ADMIN, "/api/v1/rules/cfg-offline").await["mode"],
            "dry-run"
        );
        server.shutdown().await;
    }
    {
        let server = start_with(cfg()).await;
        let c = Client::of(&server);
        assert_eq!(
            c.ok(ADMIN, "/api/v1/rules/cfg-offline").await,
            want,
            "the file wins at start"
        );
        assert_eq!(
            c.ok(ADMIN, "/api/v1/rules").await["items"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "API rules stay"
        );
        server.shutdown().await;
    }
    // A bad rule in the file stops the start with the rule and field named.
    let bad = "[[rules]]\nid = \"x\"\ntrigger = { usage = { period = \"day\", max_bytes = 1 } }\nsteps = [{ action = \"throttle\" }]\n";
    let e = simguard_server::config::Config::from_toml(bad, "bad.toml", std::iter::empty())
        .unwrap_err()
        .to_string();
    assert!(e.contains("rules[0].steps[0].kbps"), "{e}");
}

/// The alerts of one type about one device, once `pred` holds for the
/// first (the sink commits alert changes within about a second).
async fn alert_when(
    c: &Client,
    imsi: &str,
    kind: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let v = c
            .ok(ADMIN, &format!("/api/v1/alerts?imsi={imsi}&type={kind}"))
            .await;
        let items = v["items"].as_array().unwrap();
        if let Some(a) = items.first().filter(|a| pred(a)) {
            assert_eq!(items.len(), 1, "one alert: {v}");
            return a.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 6's auto-clear of usage alerts, over real sockets: radclient's
/// accounting crosses a daily usage cap whose rule notifies, which raises
/// the alert `rule:day-cap`; the first record after midnight (event time:
/// the records are dated tomorrow, ahead of the server's wall-clock ticks)
/// ends the day, and the alert clears itself with the automatic reason,
/// its end at midnight, its `cleared` notification routed, and the change
/// on the live stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_usage_alert_clears_itself_when_the_day_ends() {
    const DAY_S: i64 = 86_400;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the webhook's port: its rows stay in the outbox.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start_with(config_with(
        dir.path(),
        &format!(
            r#"
[[notify.subscriptions]]
name = "ops"
channel = "siem"
types = ["rule:day-cap"]
[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#
        ),
    ))
    .await;
    let c = Client::of(&server);
    inventory(&c).await;
    c.must(
        Method::POST,
        "/api/v1/rules",
        json!({
            "id": "day-cap",
            "mode": "enforce",
            "scope": {"tenant": "acme"},
            "trigger": {"usage": {"period": "day", "max_bytes": 500}},
            "steps": [{"action": "notify"}]
        }),
    )
    .await;
    let imsi = "901700000000104";
    let midnight = (now_ms() / 1000 / DAY_S + 2) * DAY_S; // a future midnight, s
    let acct = |status, time, session_time| Acct {
        imsi,
        ip: "10.9.1.4",
        status,
        session: "cap-1",
        time,
        session_time,
    };
    let mut stream = c
        .http
        .get(format!("{}/api/v1/events", c.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    // Day D: 1000 bytes up (900 of its own, net of the download's ACKs) > 500.
    radclient(
        server.acct_addr,
        dir.path(),
        "day-d",
        &[
            acct("Start", midnight - 1200, None),
            acct("Interim-Update", midnight - 600, Some(600)),
        ],
    )
    .await;
    let raised = alert_when(&c, imsi, "rule:day-cap", "the raise", |a| {
        a["state"] == "active"
    })
    .await;
    assert_eq!(raised["tenant"], "acme");
    assert!(raised["cleared_by"].is_null(), "{raised}");
    // Ticks (wall clock, before D ends) change nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = alert_when(&c, imsi, "rule:day-cap", "no change", |_| true).await;
    assert_eq!(still["state"], "active", "{still}");

    // Day D+1: the session goes on without new usage. The day has ended.
    radclient(
        server.acct_addr,
        dir.path(),
        "day-d1",
        &[acct("Interim-Update", midnight + 600, Some(1800))],
    )
    .await;
    let cleared = alert_when(&c, imsi, "rule:day-cap", "the auto-clear", |a| {
        a["state"] == "cleared"
    })
    .await;
    assert_eq!(cleared["id"], raised["id"]);
    assert_eq!(
        cleared["cleared_by"],
        "auto: usage back under the limit (period ended)"
    );
    assert_eq!(cleared["end_ms"], midnight * 1000);
    assert_eq!(cleared["cleared_at_ms"], midnight * 1000);
    assert_eq!(cleared["count"], 1, "no new crossing on D+1: {cleared}");

    // The clear went to the subscription (on_clear by default) ...
    let id: u64 = raised["id"].as_str().unwrap().parse().unwrap();
    let events: Vec<String> = Store::open_reader(dir.path().join("simguard.db"))
        .unwrap()
        .outbox(Some(id))
        .unwrap()
        .into_iter()
        .map(|n| format!("{}.{}", n.event, n.subscription))
        .collect();
    assert!(
        events.contains(&"raised.ops".to_string()) && events.contains(&"cleared.ops".to_string()),
        "{events:?}"
    );
    // ... and on the live stream, as a person's clear would be.
    let want = format!("\"id\":\"{id}\"");
    let mut text = String::new();
    let t0 = std::time::Instant::now();
    while !text.split("\n\n").any(|b| {
        b.contains("event: alert") && b.contains(&want) && b.contains("\"state\":\"cleared\"")
    }) {
        assert!(t0.elapsed() < Duration::from_secs(10), "{text}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);
    server.shutdown().await;
}
