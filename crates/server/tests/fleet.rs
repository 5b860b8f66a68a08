//! The whole-fleet routes the console reads (device summary, device columns,
//! baseline, alert summary), against an in-process server fed real
//! Accounting-Requests: their counts equal paging through the list routes,
//! with the same filters, and a tenant's key sees only its tenant.
//! And the console itself: served at `/` for every client route, while an
//! unknown API route stays a JSON 404.

use reqwest::StatusCode;
use serde_json::{json, Value};
use simguard_radius::{attr, Code, PacketWriter};
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use simguard_store::{Role, Store};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

const ADMIN: &str = "fleet-admin-token";
const ACME: &str = "fleet-acme-viewer";
const SECRET: &str = "fleet-secret";

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
auth_bind = "127.0.0.1:0"
[[radius.clients]]
name = "pgw"
address = "127.0.0.1/32"
secret = "{SECRET}"
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
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.get(path, token).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }

    /// Every device of the list route with `query`, paging through.
    async fn list(&self, query: &str, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .ok(&format!("/api/v1/devices?limit=7&{query}{cursor}"), token)
                .await;
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
    }
}

/// An Accounting-Request Start for `imsi` on network `plmn` with RAT `rat`.
fn start_request(id: u8, imsi: &str, plmn: &str, rat: u8) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, id, [0; 16]);
    w.message_authenticator().unwrap();
    w.attr_u32(attr::ACCT_STATUS_TYPE, 1).unwrap();
    w.attr_str(attr::ACCT_SESSION_ID, &format!("s-{imsi}"))
        .unwrap();
    w.attr_str(attr::USER_NAME, imsi).unwrap();
    w.attr_u32(attr::ACCT_INTERIM_INTERVAL, 3600).unwrap();
    w.attr_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 9, 0, id))
        .unwrap();
    // 3GPP (vendor 10415): IMSI (1), SGSN-MCC-MNC (18), RAT-Type (21).
    w.vsa(10415, 1, imsi.as_bytes()).unwrap();
    w.vsa(10415, 18, plmn.as_bytes()).unwrap();
    w.vsa(10415, 21, &[rat]).unwrap();
    w.finish_request(SECRET.as_bytes()).to_vec()
}

/// Where a device reports from: (SGSN-MCC-MNC, RAT-Type); None: never.
type Reports = Option<(&'static str, u8)>;

/// (imsi, tenant, group, reports).
const FLEET: &[(&str, &str, &str, Reports)] = &[
    ("901700000000001", "acme", "meters", Some(("26201", 9))),
    ("901700000000002", "acme", "meters", Some(("26201", 9))),
    ("901700000000003", "acme", "meters", Some(("20801", 6))),
    ("901700000000004", "acme", "trackers", Some(("23415", 8))),
    ("901700000000005", "acme", "trackers", None),
    ("901700000000006", "globex", "cams", Some(("26201", 6))),
    ("901700000000007", "globex", "cams", None),
    ("901700000000008", "globex", "cams", Some(("20801", 9))),
];

/// Seen on the network, in no inventory.
const STRANGER: &str = "901709999999999";

async fn populated() -> Harness {
    let h = start().await;
    for t in ["acme", "globex"] {
        h.send(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{t}"),
            json!({"name": t}),
        )
        .await;
    }
    for (g, t) in [("meters", "acme"), ("trackers", "acme"), ("cams", "globex")] {
        h.send(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{g}"),
            json!({"tenant": t, "profile": {"max_bytes_per_day": 2_400_000, "report_interval_secs": 900}}),
        )
        .await;
    }
    let devices: Vec<Value> = FLEET
        .iter()
        .map(|(imsi, t, g, _)| json!({"imsi": imsi, "tenant": t, "group": g, "label": format!("dev {imsi}")}))
        .collect();
    h.send(
        reqwest::Method::POST,
        "/api/v1/devices",
        json!({ "devices": devices }),
    )
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reports: Vec<(&str, &str, u8)> = FLEET
        .iter()
        .filter_map(|(i, _, _, r)| r.map(|(p, rat)| (*i, p, rat)))
        .collect();
    reports.push((STRANGER, "26201", 6));
    for (n, (imsi, plmn, rat)) in reports.iter().enumerate() {
        sock.send_to(
            &start_request(n as u8 + 1, imsi, plmn, *rat),
            h.server.acct_addr,
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        sock.recv_from(&mut buf).expect("Accounting-Response");
    }
    // Answered means journaled; wait until the engine and the store have it.
    // Ticks (every 50 ms) keep moving the engine on, so the store is waited
    // for up to the sequence the engine had once it held every device, not
    // to catch up with the moving head at the same instant.
    let t0 = Instant::now();
    let mut target = None;
    loop {
        let s = h.ok("/api/v1/status", ADMIN).await;
        let alerts = h.ok("/api/v1/alerts?state=active", ADMIN).await;
        if target.is_none() && s["devices"] == 9 {
            target = s["engine_seq"].as_u64();
        }
        if target.is_some()
            && s["store_seq"].as_u64() >= target
            && !alerts["items"].as_array().unwrap().is_empty()
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut s = Store::open(h.dir.path().join("simguard.db")).unwrap();
    s.add_api_key("acme-viewer", ACME, Role::Viewer, Some("acme"), 0)
        .unwrap();
    h
}

fn tally<'a>(devices: &'a [Value], key: impl Fn(&'a Value) -> String) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for d in devices {
        *m.entry(key(d)).or_default() += 1;
    }
    m
}

fn nonzero(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_and_columns_count_what_the_list_route_lists() {
    let h = populated().await;
    for (token, query) in [
        (ADMIN, ""),
        (ADMIN, "tenant=globex"),
        (ADMIN, "status=online"),
        (ADMIN, "country=DE&rat=LTE-M"),
        (ADMIN, "provisioned=false"),
        (ACME, ""),
        (ACME, "group=trackers"),
        (ACME, "tenant=globex"),
    ] {
        let list = h.list(query, token).await;
        let sum = h
            .ok(&format!("/api/v1/devices/summary?{query}"), token)
            .await;
        assert_eq!(sum["total"], list.len(), "{query}: {sum}");
        assert_eq!(
            nonzero(&sum["by_status"]),
            tally(&list, |d| d["status"].as_str().unwrap().into()),
            "{query}"
        );
        assert_eq!(
            nonzero(&sum["by_lifecycle"]),
            tally(&list, |d| d["lifecycle"]
                .as_str()
                .unwrap_or("unprovisioned")
                .into()),
            "{query}"
        );
        let by_country: BTreeMap<String, u64> = sum["by_country"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["country"].as_str().unwrap_or("-").to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            by_country,
            tally(&list, |d| d["network"]["country"]
                .as_str()
                .unwrap_or("-")
                .into()),
            "{query}"
        );
        let by_rat: BTreeMap<String, u64> = sum["by_rat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("-").to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            by_rat,
            tally(&list, |d| d["rat"]["name"].as_str().unwrap_or("-").into()),
            "{query}"
        );

        // The columns hold the same devices, in the same (IMSI) order.
        let cols = h
            .ok(&format!("/api/v1/devices/columns?{query}"), token)
            .await;
        assert_eq!(cols["count"], list.len(), "{query}");
        let imsis: Vec<&str> = list.iter().map(|d| d["imsi"].as_str().unwrap()).collect();
        let col_imsis: Vec<&str> = cols["imsi"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(col_imsis, imsis, "{query}");
        let dict = |col: &str, i: usize| -> Option<String> {
            let k = cols[col][i].as_i64().unwrap();
            if k < 0 {
                return None;
            }
            let v = &cols["dict"][col][k as usize];
            Some(v["code"].as_str().or(v.as_str()).unwrap().to_string())
        };
        for (i, d) in list.iter().enumerate() {
            assert_eq!(dict("status", i).as_deref(), d["status"].as_str());
            assert_eq!(dict("lifecycle", i).as_deref(), d["lifecycle"].as_str());
            assert_eq!(dict("tenant", i).as_deref(), d["tenant"].as_str());
            assert_eq!(dict("group", i).as_deref(), d["group"].as_str());
            assert_eq!(
                dict("country", i).as_deref(),
                d["network"]["country"].as_str()
            );
            assert_eq!(dict("rat", i).as_deref(), d["rat"]["name"].as_str());
            assert_eq!(cols["label"][i], d["label"]);
            assert_eq!(
                cols["last_seen"][i].is_null(),
                d["last_seen"].is_null(),
                "{d}"
            );
        }
    }
    // A tenant's key never sees another tenant's devices, whatever it asks.
    let acme = h.ok("/api/v1/devices/columns", ACME).await;
    assert_eq!(acme["count"], 5);
    assert_eq!(acme["dict"]["tenant"], json!(["acme"]));
    let (s, _) = h
        .get("/api/v1/devices/901700000000006/baseline", ACME)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for bad in ["status=sleeping", "rat=pigeon", "lifecycle=zombie"] {
        for route in ["summary", "columns"] {
            let (s, _) = h
                .get(&format!("/api/v1/devices/{route}?{bad}"), ADMIN)
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{route}?{bad}");
        }
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_counts_and_device_alert_column_agree_with_the_alert_list() {
    let h = populated().await;
    for token in [ADMIN, ACME] {
        let active: Vec<Value> = h.ok("/api/v1/alerts?state=active&limit=1000", token).await
            ["items"]
            .as_array()
            .unwrap()
            .clone();
        let sum = h.ok("/api/v1/alerts/summary", token).await;
        assert_eq!(sum["active_total"], active.len());
        assert_eq!(
            nonzero(&sum["active"]),
            tally(&active, |a| a["severity"].as_str().unwrap().into())
        );
        let cols = h.ok("/api/v1/devices/columns", token).await;
        for (i, imsi) in cols["imsi"].as_array().unwrap().iter().enumerate() {
            let want = active
                .iter()
                .filter(|a| a["imsi"] == *imsi)
                .map(|a| a["severity"].as_str().unwrap())
                .max_by_key(|s| {
                    ["warning", "minor", "major", "critical"]
                        .iter()
                        .position(|x| x == s)
                });
            let k = cols["alert"][i].as_i64().unwrap();
            let got = (k >= 0).then(|| cols["dict"]["alert"][k as usize].as_str().unwrap());
            assert_eq!(got, want, "{imsi}");
        }
    }
    // The stranger's alert belongs to no tenant: only operator-wide keys count it.
    let admin = h.ok("/api/v1/alerts/summary", ADMIN).await;
    let acme = h.ok("/api/v1/alerts/summary", ACME).await;
    assert!(
        admin["active_total"].as_u64() > acme["active_total"].as_u64(),
        "{admin} {acme}"
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn baseline_carries_the_declared_profile() {
    let h = populated().await;
    let b = h
        .ok("/api/v1/devices/901700000000001/baseline", ADMIN)
        .await;
    assert_eq!(b["imsi"], "901700000000001");
    assert_eq!(b["declared"]["group"], "meters");
    assert_eq!(b["declared"]["max_bytes_per_day"], 2_400_000);
    assert_eq!(b["declared"]["report_interval_secs"], 900);
    assert!(b["warmup_reports"].as_u64().unwrap() > 0);
    let (s, _) = h
        .get("/api/v1/devices/901700000000099/baseline", ADMIN)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_outside_the_api() {
    let h = start().await;
    let get = |path: &str| {
        let url = format!("{}{path}", h.base);
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    for path in [
        "/",
        "/devices/901700000000001",
        "/map",
        "/alerts?state=active",
    ] {
        let r = get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert!(r.headers().contains_key("content-security-policy"));
        assert!(r.text().await.unwrap().contains("<div id=\"app\">"));
    }
    let page = get("/").await.text().await.unwrap();
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page names its script");
    let r = get(script).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    // The API's own 404 stays JSON, the probes stay theirs.
    for path in ["/api/v1/nope", "/api/nope", "/api"] {
        let r = get(path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found", "{path}");
    }
    assert_eq!(get("/healthz").await.text().await.unwrap(), "ok");
    let doc: Value = get("/api/v1/openapi.json").await.json().await.unwrap();
    for p in [
        "/api/v1/devices/summary",
        "/api/v1/devices/columns",
        "/api/v1/devices/{imsi}/baseline",
        "/api/v1/alerts/summary",
    ] {
        assert!(doc["paths"][p].is_object(), "missing {p}");
    }
    h.server.shutdown().await;
}
