//! Geolocation end to end: `simguard import cells` into a running server's
//! data directory (a bad file first: nothing stored), then FreeRADIUS's
//! radclient sends a Start and an Interim from two imported cells; the trail,
//! the device view and the map show the positions, scoped to the caller's
//! tenant.

mod common;

use common::*;
use serde_json::{json, Value};
use simguard_store::{Role, Store};
use std::path::Path;
use std::time::Duration;

const ACME_DEVICE: &str = "901700000000501";
const GLOBEX_DEVICE: &str = "901700000000502";
const UNPROVISIONED: &str = "901700000000503";
const ACME_KEY: &str = "acme-viewer-key";
const GLOBEX_KEY: &str = "globex-viewer-key";

/// Two LTE cells of 262-01 in TAC 1234 (Berlin, Potsdam) and a GSM cell.
const TOWERS: &str = "\
radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
LTE,262,1,1234,123456,17,13.405,52.52,1500,12,1,1459692894,1587306302,0
LTE,262,1,1234,123457,18,13.0645,52.3906,2500,30,1,1459692894,1587306302,0
GSM,262,1,1000,4242,0,8.6821,50.1109,900,3,1,1459692894,1587306302,-80
";

/// PLMN in the BCD of TS 29.061 (two-digit MNC): MCC2 MCC1, F MCC3, MNC2 MNC1.
fn plmn_hex(mcc: &str, mnc: &str) -> String {
    let m: Vec<char> = mcc.chars().collect();
    let n: Vec<char> = mnc.chars().collect();
    format!("{}{}f{}{}{}", m[1], m[0], m[2], n[1], n[0])
}

/// 3GPP-User-Location-Info, TAI+ECGI (type 130).
fn uli(mcc: &str, mnc: &str, tac: u16, eci: u32) -> String {
    let p = plmn_hex(mcc, mnc);
    format!("0x82{p}{tac:04x}{p}{eci:08x}")
}

fn acct(imsi: &str, status: &str, session: &str, time: i64, uli: &str, sgsn: &str) -> String {
    packet(&[
        ("Acct-Status-Type", status.to_string()),
        ("Acct-Session-Id", q(session)),
        ("3GPP-IMSI", q(imsi)),
        ("3GPP-User-Location-Info", uli.to_string()),
        ("3GPP-SGSN-MCC-MNC", q(sgsn)),
        ("3GPP-RAT-Type", "6".into()),
        ("Event-Timestamp", time.to_string()),
        ("Acct-Input-Octets", "100".into()),
        ("Acct-Output-Octets", "200".into()),
        ("Acct-Interim-Interval", "300".into()),
        ("Message-Authenticator", "0x00".into()),
    ])
}

fn send(srv: &Server, dir: &Path, name: &str, packets: &[String]) {
    let file = dir.join(name);
    write_packets(&file, packets);
    let run = radclient(&file, srv.acct, SECRET, &["-r", "3", "-t", "2"]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.answered(), packets.len(), "{}", run.stdout);
}

fn import_cells(data: &Path, file: &Path) -> std::process::Output {
    let mut cmd = simguard();
    cmd.args(["import", "cells"])
        .arg(file)
        .arg("--data-dir")
        .arg(data);
    run_with_timeout(cmd, Duration::from_secs(60))
}

fn call(srv: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (code, body) = http_request(srv.http, method, path, Some(token), text.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn provision(srv: &Server) {
    for t in ["acme", "globex"] {
        let (c, b) = call(
            srv,
            "PUT",
            &format!("/api/v1/tenants/{t}"),
            &srv.token,
            Some(json!({ "name": t })),
        );
        assert_eq!(c, 200, "{b}");
        let (c, b) = call(
            srv,
            "PUT",
            &format!("/api/v1/groups/{t}-trackers"),
            &srv.token,
            Some(json!({ "tenant": t })),
        );
        assert_eq!(c, 200, "{b}");
    }
    let devices = json!({ "devices": [
        { "imsi": ACME_DEVICE, "tenant": "acme", "group": "acme-trackers" },
        { "imsi": GLOBEX_DEVICE, "tenant": "globex", "group": "globex-trackers" },
    ]});
    let (c, b) = call(srv, "POST", "/api/v1/devices", &srv.token, Some(devices));
    assert_eq!(c, 200, "{b}");
    let mut store = Store::open(srv.data_dir.join("simguard.db")).unwrap();
    store
        .add_api_key("acme", ACME_KEY, Role::Viewer, Some("acme"), 0)
        .unwrap();
    store
        .add_api_key("globex", GLOBEX_KEY, Role::Viewer, Some("globex"), 0)
        .unwrap();
}

fn trail(srv: &Server, imsi: &str, token: &str) -> (u16, Value) {
    call(
        srv,
        "GET",
        &format!("/api/v1/devices/{imsi}/locations"),
        token,
        None,
    )
}

/// The map's arrays as (imsi, lat, lon, status, severity) rows.
fn map_rows(m: &Value) -> Vec<(String, f64, f64, String, Value)> {
    let n = m["count"].as_u64().unwrap() as usize;
    for k in ["imsi", "lat", "lon", "status", "severity"] {
        assert_eq!(m[k].as_array().unwrap().len(), n, "{k}: {m}");
    }
    (0..n)
        .map(|i| {
            (
                m["imsi"][i].as_str().unwrap().to_string(),
                m["lat"][i].as_f64().unwrap(),
                m["lon"][i].as_f64().unwrap(),
                m["status"][i].as_str().unwrap().to_string(),
                m["severity"][i].clone(),
            )
        })
        .collect()
}

#[test]
fn imported_cells_locate_devices_over_radius_with_tenant_scoping() {
    let tmp = tempdir("locations");
    let data = tmp.path().join("data");
    let srv = Server::start(&ServerOpts::new(&data));
    provision(&srv);

    // ---- A file with a bad row: reported by line and field, nothing stored.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{TOWERS}LTE,262,1,1234,123458,0,13.4,52.5,1000,2,1,0,0,0\nGSM,262,1,1000,70000,0,8.6,50.1,900,3,1,0,0,0\n"),
    )
    .unwrap();
    let out = import_cells(&data, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad row was accepted: {stderr}");
    assert!(
        stderr.contains("line 6, field cell: 70000 is larger than a GSM cell id can be"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let store = Store::open(data.join("simguard.db")).unwrap();
    assert_eq!(
        store.cell_count().unwrap(),
        0,
        "the good rows were not stored either"
    );

    // ---- The good file, into the running server's store.
    let good = tmp.path().join("towers.csv");
    std::fs::write(&good, TOWERS).unwrap();
    let out = import_cells(&data, &good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("imported 3 rows"), "{stdout}");
    assert!(stdout.contains("rows/s"), "{stdout}");
    assert_eq!(store.cell_count().unwrap(), 3);

    // ---- Start in Berlin's cell, Interim five minutes later from Potsdam's.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600;
    let berlin = uli("262", "01", 1234, 123_456);
    let potsdam = uli("262", "01", 1234, 123_457);
    send(
        &srv,
        tmp.path(),
        "start.txt",
        &[
            acct(ACME_DEVICE, "Start", "a-1", t, &berlin, "26201"),
            acct(GLOBEX_DEVICE, "Start", "g-1", t, &berlin, "26201"),
            // Unprovisioned, on a cell nobody imported, roaming in France.
            acct(
                UNPROVISIONED,
                "Start",
                "u-1",
                t,
                &uli("208", "01", 77, 4711),
                "20801",
            ),
        ],
    );
    send(
        &srv,
        tmp.path(),
        "interim.txt",
        &[acct(
            ACME_DEVICE,
            "Interim-Update",
            "a-1",
            t + 300,
            &potsdam,
            "26201",
        )],
    );

    let items = wait_for("both points of the trail", Duration::from_secs(15), || {
        let (code, body) = trail(&srv, ACME_DEVICE, &srv.token);
        assert_eq!(code, 200, "{body}");
        let items = body["items"].as_array().unwrap().clone();
        (items.len() == 2).then_some(items)
    });
    // Newest first: Potsdam, then Berlin, each with its cell and range.
    assert_eq!(items[0]["time_ms"], (t + 300) * 1000, "{items:?}");
    assert_eq!(
        (items[0]["lat"].as_f64(), items[0]["lon"].as_f64()),
        (Some(52.3906), Some(13.0645))
    );
    assert_eq!(items[0]["accuracy_m"], 2500);
    assert_eq!(items[0]["source"], "cell");
    assert_eq!(items[0]["cell"]["eci"], 123_457);
    assert_eq!(items[0]["network"], "262-01");
    assert_eq!(items[1]["time_ms"], t * 1000);
    assert_eq!(
        (items[1]["lat"].as_f64(), items[1]["lon"].as_f64()),
        (Some(52.52), Some(13.405))
    );
    assert_eq!(items[1]["accuracy_m"], 1500);
    // from/to/limit narrow it.
    let (_, only_new) = call(
        &srv,
        "GET",
        &format!("/api/v1/devices/{ACME_DEVICE}/locations?limit=1"),
        &srv.token,
        None,
    );
    assert_eq!(only_new["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_new["items"][0]["time_ms"], (t + 300) * 1000);
    let (code, _) = call(
        &srv,
        "GET",
        &format!("/api/v1/devices/{ACME_DEVICE}/locations?limit=0"),
        &srv.token,
        None,
    );
    assert_eq!(code, 400);

    // The device view has the newest position.
    let d = srv.device(ACME_DEVICE).unwrap();
    let p = &d["position"];
    assert_eq!(
        (p["lat"].as_f64(), p["lon"].as_f64()),
        (Some(52.3906), Some(13.0645)),
        "{d}"
    );
    assert_eq!(p["source"], "cell");
    assert_eq!(p["accuracy_m"], 2500);
    assert_eq!(p["time_ms"], (t + 300) * 1000);
    // The unprovisioned device on an unknown French cell: France's centroid.
    let u = wait_for(
        "the unknown cell's fallback",
        Duration::from_secs(10),
        || {
            let d = srv.device(UNPROVISIONED)?;
            (!d["position"].is_null()).then_some(d)
        },
    );
    assert_eq!(u["position"]["source"], "country", "{u}");
    assert_eq!(
        (u["position"]["lat"].as_f64(), u["position"]["lon"].as_f64()),
        (Some(46.64), Some(2.19))
    );
    assert_eq!(u["position"]["accuracy_m"], 500_000);

    // ---- The map, for the operator: all three, online; the unprovisioned
    // IMSI carries its finding's alert.
    let all = wait_for(
        "an alert for the unprovisioned IMSI",
        Duration::from_secs(10),
        || {
            let (code, m) = call(&srv, "GET", "/api/v1/map/devices", &srv.token, None);
            assert_eq!(code, 200, "{m}");
            let rows = map_rows(&m);
            rows.iter()
                .any(|r| r.0 == UNPROVISIONED && !r.4.is_null())
                .then_some((m, rows))
        },
    );
    let (m, rows) = all;
    assert_eq!(m["count"], 3, "{m}");
    assert_eq!(m["unlocated"], 0);
    let acme = rows.iter().find(|r| r.0 == ACME_DEVICE).unwrap();
    assert_eq!(
        (acme.1, acme.2, acme.3.as_str()),
        (52.3906, 13.0645, "online")
    );
    assert!(acme.4.is_null(), "no alert for the acme device: {acme:?}");

    // ---- Tenant scoping: each tenant sees its own device only.
    let (code, body) = trail(&srv, ACME_DEVICE, ACME_KEY);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    for (imsi, key) in [
        (ACME_DEVICE, GLOBEX_KEY),
        (GLOBEX_DEVICE, ACME_KEY),
        (UNPROVISIONED, ACME_KEY),
    ] {
        let (code, body) = trail(&srv, imsi, key);
        assert_eq!(code, 404, "{imsi} with {key}: {body}");
        let (code, _) = call(&srv, "GET", &format!("/api/v1/devices/{imsi}"), key, None);
        assert_eq!(code, 404, "{imsi} with {key}");
    }
    for (key, mine) in [(ACME_KEY, ACME_DEVICE), (GLOBEX_KEY, GLOBEX_DEVICE)] {
        let (code, m) = call(&srv, "GET", "/api/v1/map/devices", key, None);
        assert_eq!(code, 200, "{m}");
        let rows = map_rows(&m);
        let imsis: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(imsis, vec![mine], "{key}: {m}");
        assert_eq!(m["unlocated"], 0);
    }
    // A key of a tenant the engine has never heard of sees an empty map.
    Store::open(data.join("simguard.db"))
        .unwrap()
        .add_api_key("nobody", "nobody-key", Role::Viewer, Some("nobody"), 0)
        .unwrap();
    let (code, m) = call(&srv, "GET", "/api/v1/map/devices", "nobody-key", None);
    assert_eq!(code, 200);
    assert_eq!(
        (m["count"].as_u64(), m["unlocated"].as_u64()),
        (Some(0), Some(0)),
        "{m}"
    );

    // The OpenAPI document lists the new routes.
    let doc = srv.get_json("/api/v1/openapi.json");
    assert!(doc["paths"]["/api/v1/devices/{imsi}/locations"].is_object());
    assert!(doc["paths"]["/api/v1/map/devices"].is_object());
}
