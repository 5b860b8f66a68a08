//! Automatic response end to end, over the wire: a simulated fleet (the
//! attack lab, RADIUS accounting and IPFIX on loopback) in which one camera
//! starts Mirai-style scanning, an in-process server with a rule that
//! blocks scanners, and FreeRADIUS (`freeradius -X`) as the NAS that
//! receives the Disconnect. The chain: finding → rule → Disconnect at the
//! NAS → audit entry linking the finding. Also: the same rule in dry-run
//! sends nothing, and its backtest over the recorded journal names exactly
//! the devices enforce mode acted on.
//!
//! Skipped (with a message) only when /usr/sbin/freeradius is missing.

use serde_json::{json, Value};
use simguard_server::config::{Config, TEMPLATE};
use simguard_server::{Server, StartOptions};
use simguard_sim::{Profile, Scenario, ScenarioRun};
use simguard_testkit::{have_freeradius, Nas};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Shared by the simulated PGW (accounting), the server's client entry and
/// FreeRADIUS's client entry (CoA/Disconnect).
const SECRET: &str = "response-e2e-secret";
/// The server's allow-list name for 127.0.0.1: what it records as the NAS
/// of every simulated session, and where CoA/Disconnect go.
const NAS_NAME: &str = "pgw-lab";
const TOKEN: &str = "response-e2e-admin";

/// A few dozen devices, an hour of learning, one camera scanning for three
/// minutes.
const SCENARIO: &str = r#"
name = "response-e2e"
seed = 5176
start = "2025-03-28T00:00:00Z"
duration = "3h"
warmup = "1h"

[fleet]
devices = 36
unprovisioned_share = 0.0
mix = { camera = 12, smart-meter = 12, pallet-tracker = 12 }

[[attack]]
kind = "mirai-scan"
profile = "camera"
at = "1h 30m"
duration = "3m"
"#;

fn attr_of<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

// ------------------------------------------------------------------ the API

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.call(method, path, Some(&body)).await
    }

    /// Every item of a paged list.
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page = match &cursor {
                Some(c) => self.get(&format!("{path}{sep}limit=1000&cursor={c}")).await,
                None => self.get(&format!("{path}{sep}limit=1000")).await,
            };
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

// ------------------------------------------------------------------ the lab

/// One run: server, NAS, the scenario's labels.
struct Lab {
    server: Server,
    api: Api,
    nas: Nas,
    /// The scanning camera.
    attacked: String,
    /// Every device of the fleet.
    fleet: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Tenants, groups and devices of the fleet, placed as the simulator's
/// labels name them (the inventory `simguard eval` provisions).
async fn provision(api: &Api, fleet: &[simguard_sim::SimDevice]) {
    for p in Profile::ALL {
        let x = simguard_sim::placement(p);
        api.send(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{}", x.tenant),
            json!({ "name": x.tenant_name }),
        )
        .await;
        api.send(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{}", x.group),
            json!({
                "tenant": x.tenant,
                "name": x.group_name,
                "profile": {
                    "report_interval_secs": p.report_interval_secs(),
                    "max_bytes_per_day": p.expected_bytes_per_day() * 3,
                    "allowed_countries": simguard_sim::ALLOWED_COUNTRIES,
                }
            }),
        )
        .await;
    }
    let devices: Vec<Value> = fleet
        .iter()
        .filter(|d| d.provisioned)
        .map(|d| {
            let x = simguard_sim::placement(d.profile);
            json!({
                "imsi": d.imsi, "iccid": d.iccid, "msisdn": d.msisdn, "imei": d.imei(),
                "tenant": x.tenant, "group": x.group,
            })
        })
        .collect();
    api.send(
        reqwest::Method::POST,
        "/api/v1/devices",
        json!({ "devices": devices }),
    )
    .await;
}

fn rule(mode: &str) -> Value {
    json!({
        "id": "block-scanners",
        "mode": mode,
        "trigger": {"finding": {"types": ["scanning"], "min_severity": "major"}},
        "steps": [{"action": "block"}]
    })
}

/// Waits until the server has applied every flow the simulator exported
/// and its journal, findings and audit have stopped moving.
async fn drain(api: &Api, flows: u64) {
    let t0 = Instant::now();
    let mut last = None;
    let mut stable = 0;
    loop {
        let status = api.get("/api/v1/status").await;
        let applied = status["flows"]["attributed"].as_u64().unwrap_or(0)
            + status["flows"]["unattributed"].as_u64().unwrap_or(0);
        let seq = status["engine_seq"].as_u64().unwrap_or(0);
        let findings = api.get("/api/v1/findings/summary").await["total"]
            .as_u64()
            .unwrap_or(0);
        let audit = api.all("/api/v1/audit").await;
        let results: usize = audit
            .iter()
            .map(|a| a["results"].as_array().map_or(0, Vec::len))
            .sum();
        let now = (seq, findings, audit.len(), results);
        if applied >= flows && last == Some(now) {
            stable += 1;
            if stable >= 4 {
                return;
            }
        } else {
            stable = 0;
        }
        last = Some(now);
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the server did not settle: {applied} of {flows} flows applied, {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the scenario with the rule in `mode` against a fresh server whose
/// NAS entry for 127.0.0.1 sends CoA/Disconnect to FreeRADIUS.
async fn run_lab(mode: &str) -> Lab {
    let nas = tokio::task::spawn_blocking(|| Nas::start(SECRET))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        ("SIMGUARD_DATA_DIR", dir.path().display().to_string()),
        ("SIMGUARD_HTTP__BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_RADIUS__ACCOUNTING_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_RADIUS__AUTH_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_RADIUS__COA__SOURCE", "127.0.0.1:0".into()),
        ("SIMGUARD_FLOWS__IPFIX_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_FLOWS__NETFLOW_BIND", "127.0.0.1:0".into()),
        // No wall-clock ticks: the simulated time is the only clock.
        ("SIMGUARD_ENGINE__TICK_MS", "0".into()),
        (
            "SIMGUARD_RADIUS__CLIENTS",
            format!(
                r#"[{{ name = "{NAS_NAME}", address = "127.0.0.1/32", secret = "{SECRET}", coa_port = {} }}]"#,
                nas.port
            ),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let cfg = Config::from_toml(TEMPLATE, "built-in default", overrides.into_iter()).unwrap();
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(TOKEN.into()),
        },
    )
    .await
    .unwrap();
    let api = Api {
        base: format!("http://{}", server.http_addr),
        http: reqwest::Client::new(),
    };
    let scenario = Scenario::from_toml(SCENARIO).unwrap();
    let fleet = scenario.devices();
    provision(&api, &fleet).await;
    api.send(reqwest::Method::POST, "/api/v1/rules", rule(mode))
        .await;

    let mut run = ScenarioRun::new(server.acct_addr, SECRET);
    run.ipfix_target = Some(server.ipfix_addr);
    run.rate = 20_000;
    let report = simguard_sim::run_scenario(&scenario, run).await.unwrap();
    assert!(report.sim.answered > 0, "{:?}", report.sim);
    let scans: Vec<_> = report
        .labels
        .iter()
        .filter(|l| l.attack.name() == "mirai-scan")
        .collect();
    assert_eq!(scans.len(), 1, "{:?}", report.labels);
    let attacked = scans[0].imsi.clone().expect("the scan names its device");
    drain(&api, report.sim.flows_exported).await;
    Lab {
        server,
        api,
        nas,
        attacked,
        fleet: fleet.iter().map(|d| d.imsi.clone()).collect(),
        _dir: dir,
    }
}

/// The scanning findings about `imsi`, oldest first.
async fn scanning_findings(api: &Api, imsi: &str) -> Vec<Value> {
    let mut v = api
        .all(&format!("/api/v1/findings?type=scanning&imsi={imsi}"))
        .await;
    v.sort_by_key(|f| f["time_ms"].as_i64());
    v
}

/// The IMSIs FreeRADIUS received a Disconnect-Request for, with the
/// session each named.
fn disconnects(nas: &Nas) -> Vec<(String, String)> {
    nas.received()
        .into_iter()
        .filter(|(k, _)| k == "Disconnect-Request")
        .map(|(_, a)| {
            (
                attr_of(&a, "User-Name").unwrap_or_default().to_string(),
                attr_of(&a, "Acct-Session-Id")
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread")]
async fn mirai_scanning_is_found_blocked_disconnected_at_the_nas_and_audited() {
    if !have_freeradius() {
        return;
    }
    let lab = run_lab("enforce").await;
    let (api, imsi) = (&lab.api, lab.attacked.as_str());

    // 1. A scanning finding, of at least major severity, for the attacked IMSI.
    let findings = scanning_findings(api, imsi).await;
    let first = findings
        .iter()
        .find(|f| matches!(f["severity"].as_str(), Some("major" | "critical")))
        .unwrap_or_else(|| panic!("no major scanning finding for {imsi}: {findings:?}"));
    let finding_id = first["id"].as_str().unwrap().to_string();

    // 2. The rule acted on it, in enforce mode, and the audit links the finding.
    let audit = api.all("/api/v1/audit?rule=block-scanners").await;
    let enforced: Vec<&Value> = audit.iter().filter(|a| a["enforce"] == true).collect();
    assert_eq!(enforced.len(), 1, "one enforced action: {audit:?}");
    let entry = enforced[0];
    assert_eq!(entry["imsi"], imsi, "{entry}");
    assert_eq!(entry["actor"], "rule:block-scanners", "{entry}");
    assert_eq!(entry["action"], "block", "{entry}");
    assert_eq!(entry["mode"], "enforce", "{entry}");
    assert_eq!(entry["finding"], finding_id.as_str(), "{entry}");
    // 3. The Disconnect reached the NAS, which acknowledged it.
    let results = entry["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "one open session, one result: {entry}");
    assert_eq!(results[0]["result"], "ack", "{entry}");
    let sent = results[0]["sent"].to_string();
    assert!(sent.contains("Disconnect-Request"), "{sent}");
    assert!(sent.contains(NAS_NAME), "{sent}");

    // 4. FreeRADIUS received exactly that Disconnect, for the device's session.
    lab.nas.wait_for("Sent Disconnect-ACK", 1);
    let got = disconnects(&lab.nas);
    assert_eq!(got.len(), 1, "{got:?}\n{}", lab.nas.output());
    let (who, session) = &got[0];
    assert_eq!(who, imsi);
    assert!(!session.is_empty());
    assert!(
        sent.contains(&format!("for session {session}")),
        "{sent} vs {session}"
    );
    let dev = api.get(&format!("/api/v1/devices/{imsi}")).await;
    let sessions: Vec<&str> = dev["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    assert!(
        sessions.contains(&session.as_str()),
        "{session} not among {sessions:?}"
    );
    assert!(
        !lab.nas.output().contains("CoA-Request"),
        "{}",
        lab.nas.output()
    );

    // 5. The device is blocked; no other device was acted on or blocked.
    assert_eq!(dev["lifecycle"], "blocked", "{dev}");
    let everyone = api.all("/api/v1/audit").await;
    let acted: BTreeSet<&str> = everyone.iter().filter_map(|a| a["imsi"].as_str()).collect();
    assert_eq!(acted, BTreeSet::from([imsi]), "{everyone:?}");
    for other in lab.fleet.iter().filter(|i| *i != imsi).take(8) {
        let d = api.get(&format!("/api/v1/devices/{other}")).await;
        assert_eq!(d["lifecycle"], "active", "{d}");
    }
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_rule_in_dry_run_sends_nothing() {
    if !have_freeradius() {
        return;
    }
    let lab = run_lab("dry-run").await;
    let (api, imsi) = (&lab.api, lab.attacked.as_str());
    let findings = scanning_findings(api, imsi).await;
    assert!(
        findings
            .iter()
            .any(|f| matches!(f["severity"].as_str(), Some("major" | "critical"))),
        "no major scanning finding for {imsi}: {findings:?}"
    );
    // The rule decided, in dry-run: recorded, not enforced, no results.
    let audit = api.all("/api/v1/audit?rule=block-scanners").await;
    assert!(!audit.is_empty(), "the dry-run rule recorded nothing");
    for a in &audit {
        assert_eq!(a["imsi"], imsi, "{a}");
        assert_eq!(a["mode"], "dry-run", "{a}");
        assert_eq!(a["action"], "block", "{a}");
        assert_eq!(a["enforce"], false, "{a}");
        assert_eq!(a["results"], json!([]), "{a}");
    }
    // Each links one of the device's scanning findings.
    for a in &audit {
        assert!(
            findings.iter().any(|f| f["id"] == a["finding"]),
            "{a} links no scanning finding of {imsi}"
        );
    }
    // The NAS heard nothing at all, and the device is still active.
    assert_eq!(lab.nas.received(), Vec::new(), "{}", lab.nas.output());
    let dev = api.get(&format!("/api/v1/devices/{imsi}")).await;
    assert_eq!(dev["lifecycle"], "active", "{dev}");
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backtest_names_the_devices_enforce_mode_acted_on() {
    if !have_freeradius() {
        return;
    }
    let lab = run_lab("enforce").await;
    let api = &lab.api;
    let audit = api.all("/api/v1/audit?rule=block-scanners").await;
    let enforced: BTreeSet<String> = audit
        .iter()
        .filter(|a| a["enforce"] == true)
        .filter_map(|a| a["imsi"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        enforced,
        BTreeSet::from([lab.attacked.clone()]),
        "{audit:?}"
    );

    let bt = api
        .call(
            reqwest::Method::POST,
            "/api/v1/rules/block-scanners/backtest?since=30d",
            None,
        )
        .await;
    assert_eq!(bt["rule"]["mode"], "dry-run", "{bt}");
    assert_eq!(bt["truncated"], false, "{bt}");
    let backtested: BTreeSet<String> = bt["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["imsi"].as_str().map(str::to_string))
        .collect();
    assert_eq!(backtested, enforced, "{bt}");
    assert_eq!(bt["device_count"], 1, "{bt}");
    // The same findings drove both: the backtest's actions link the live
    // finding ids.
    let live: BTreeSet<&str> = audit.iter().filter_map(|a| a["finding"].as_str()).collect();
    let replayed: BTreeSet<&str> = bt["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["finding"].as_str())
        .collect();
    assert!(!live.is_empty());
    assert_eq!(replayed, live, "{bt}");
    lab.server.shutdown().await;
}
