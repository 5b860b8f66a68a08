//! HTTP API behaviour against an in-process server on ephemeral ports:
//! authentication, roles, tenant isolation, validation, pagination, OpenAPI.

use reqwest::StatusCode;
use serde_json::{json, Value};
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use simguard_store::{Role, Store};

const ADMIN: &str = "admin-token-for-tests";

struct Harness {
    server: Server,
    base: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
data_dir = "{}"
[http]
bind = "127.0.0.1:0"
[radius]
accounting_bind = "127.0.0.1:0"
[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"
[engine]
tick_ms = 50
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
    let base = format!("http://{}", server.http_addr);
    Harness {
        server,
        base,
        http: reqwest::Client::new(),
        dir,
    }
}

impl Harness {
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Adds an API key straight into the store (key management arrives with the console).
    fn add_key(&self, token: &str, role: Role, tenant: Option<&str>) {
        let mut s = Store::open(self.dir.path().join("simguard.db")).unwrap();
        s.add_api_key("test", token, role, tenant, 0).unwrap();
    }
}

fn device(imsi: &str, tenant: &str, group: &str) -> Value {
    json!({ "imsi": imsi, "tenant": tenant, "group": group })
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_are_open_and_api_needs_a_known_token() {
    let h = start().await;
    let r = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, body) = h.get("/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["ready"], true);
    let (s, body) = h.get("/api/v1/devices", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    let (s, _) = h.get("/api/v1/devices", Some("not-a-token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = h.get("/api/v1/devices", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["items"], json!([]));
    let (s, body) = h.get("/api/v1/nope", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_batch_writes_nothing_and_names_index_and_field() {
    let h = start().await;
    let mut bad = device("901700000000002", "acme", "meters");
    bad["imei"] = json!("490154203237519"); // Luhn check fails
    let (s, body) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            ADMIN,
            json!({ "devices": [device("901700000000001", "acme", "meters"), bad] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"][0]["index"], 1);
    assert_eq!(body["error"]["details"][0]["field"], "imei");
    let (s, _) = h.get("/api/v1/devices/901700000000001", Some(ADMIN)).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "nothing of an invalid batch is written"
    );

    let (s, body) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            ADMIN,
            json!({ "devices": [{"imsi": "1"}] }),
        )
        .await;
    assert!(s.is_client_error(), "{body}");
    assert_eq!(body["error"]["code"], "invalid");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upserted_devices_are_readable_at_once_with_filters_and_pages() {
    let h = start().await;
    let mut devices: Vec<Value> = (0..25)
        .map(|i| {
            device(
                &format!("9017000000000{i:02}"),
                "acme",
                if i % 2 == 0 { "meters" } else { "trackers" },
            )
        })
        .collect();
    devices[3]["iccid"] = json!("89490170000000000031");
    devices[3]["msisdn"] = json!("+491700000003");
    devices[3]["imei"] = json!("490154203237518");
    devices[3]["lifecycle"] = json!("blocked");
    devices[3]["label"] = json!("pallet 3");
    let (s, body) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            ADMIN,
            json!({ "devices": devices }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["upserted"], 25);

    // Read-your-writes: the answer came after the engine applied the change.
    let (s, d) = h.get("/api/v1/devices/901700000000003", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["provisioned"], true);
    assert_eq!(d["iccid"], "89490170000000000031");
    assert_eq!(d["msisdn"], "491700000003");
    assert_eq!(d["bound_imei"], "490154203237518");
    assert_eq!(d["lifecycle"], "blocked");
    assert_eq!(d["group"], "trackers");
    assert_eq!(d["status"], "never_seen");

    let (_, page) = h
        .get("/api/v1/devices?group=meters&limit=100", Some(ADMIN))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 13);
    let (_, page) = h
        .get("/api/v1/devices?lifecycle=blocked", Some(ADMIN))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // Pages of 10 cover every device exactly once, in IMSI order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?limit=10&cursor={c}"),
            None => "/api/v1/devices?limit=10".to_string(),
        };
        let (s, page) = h.get(&path, Some(ADMIN)).await;
        assert_eq!(s, StatusCode::OK);
        for d in page["items"].as_array().unwrap() {
            seen.push(d["imsi"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..25).map(|i| format!("9017000000000{i:02}")).collect();
    want.sort();
    assert_eq!(seen, want);

    for bad in [
        "limit=0",
        "limit=5000",
        "status=sleeping",
        "rat=carrier-pigeon",
        "cursor=abc",
    ] {
        let (s, body) = h.get(&format!("/api/v1/devices?{bad}"), Some(ADMIN)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid");
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_keys_see_and_change_only_their_tenant() {
    let h = start().await;
    let (s, _) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            ADMIN,
            json!({ "devices": [device("901700000000101", "tenant-a", "a-meters"), device("901700000000201", "tenant-b", "b-meters")] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A tenant admin: provisioning needs the admin role.
    h.add_key("key-a", Role::Admin, Some("tenant-a"));
    h.add_key("viewer-b", Role::Viewer, Some("tenant-b"));

    let (_, page) = h.get("/api/v1/devices", Some("key-a")).await;
    let imsis: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["imsi"].as_str().unwrap())
        .collect();
    assert_eq!(imsis, vec!["901700000000101"]);
    let (s, _) = h
        .get("/api/v1/devices/901700000000201", Some("key-a"))
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's device does not exist for this key"
    );
    let (s, _) = h
        .get("/api/v1/devices/901700000000201/usage", Some("key-a"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, groups) = h.get("/api/v1/groups", Some("key-a")).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(groups[0]["id"], "a-meters");
    let (_, tenants) = h.get("/api/v1/tenants", Some("key-a")).await;
    assert_eq!(tenants, json!([{ "id": "tenant-a", "name": "tenant-a" }]));

    // Writing into another tenant is refused, and changes nothing.
    let (s, body) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            "key-a",
            json!({ "devices": [device("901700000000202", "tenant-b", "b-meters")] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "tenant");
    let (s, _) = h.get("/api/v1/devices/901700000000202", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h
        .send(
            reqwest::Method::PUT,
            "/api/v1/groups/b-meters",
            "key-a",
            json!({ "tenant": "tenant-b" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .send(
            reqwest::Method::PUT,
            "/api/v1/tenants/tenant-c",
            "key-a",
            json!({ "name": "C" }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only operator-wide admins create tenants"
    );

    // A viewer reads but does not write.
    let (s, _) = h
        .get("/api/v1/devices/901700000000201", Some("viewer-b"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = h
        .send(
            reqwest::Method::POST,
            "/api/v1/devices",
            "viewer-b",
            json!({ "devices": [device("901700000000203", "tenant-b", "b-meters")] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_carry_a_validated_declared_profile() {
    let h = start().await;
    let (s, body) = h
        .send(
            reqwest::Method::PUT,
            "/api/v1/groups/meters",
            ADMIN,
            json!({ "tenant": "acme", "name": "Meters", "profile": {
                "max_bytes_per_day": 1048576, "report_interval_secs": 86400, "active_hours": [1, 5],
                "allowed_countries": ["de", "NL"], "allowed_networks": ["26201", "204-08"], "allowed_rats": [8, 9], "imei_lock": true } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, groups) = h.get("/api/v1/groups", Some(ADMIN)).await;
    let g = &groups[0];
    assert_eq!(g["profile"]["allowed_countries"], json!(["DE", "NL"]));
    assert_eq!(
        g["profile"]["allowed_networks"],
        json!(["262-01", "204-08"])
    );
    assert_eq!(g["profile"]["imei_lock"], true);
    for (bad, field) in [
        (
            json!({ "tenant": "acme", "profile": { "allowed_networks": ["26"] } }),
            "allowed_networks",
        ),
        (
            json!({ "tenant": "acme", "profile": { "allowed_countries": ["Germany"] } }),
            "allowed_countries",
        ),
        (
            json!({ "tenant": "acme", "profile": { "active_hours": [25, 3] } }),
            "active_hours",
        ),
        (json!({ "tenant": "Acme" }), "tenant"),
        (json!({ "tenant": "acme", "colour": "red" }), "colour"),
    ] {
        let (s, body) = h
            .send(reqwest::Method::PUT, "/api/v1/groups/meters", ADMIN, bad)
            .await;
        assert!(s.is_client_error(), "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_lists_the_routes() {
    let h = start().await;
    let (s, doc) = h.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/devices",
        "/api/v1/devices/{imsi}",
        "/api/v1/devices/{imsi}/usage",
        "/api/v1/groups/{id}",
        "/api/v1/status",
    ] {
        assert!(doc["paths"][p].is_object(), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["DeviceView"].is_object());
    let m = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("simguard_devices{status=\"online\"}"), "{m}");
    h.server.shutdown().await;
}
