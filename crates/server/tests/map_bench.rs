//! `GET /api/v1/map/devices` with 100,000 located devices: the time of one
//! request, for the operator and for a tenant. Ignored by default (it
//! provisions 100,000 devices); run with
//! `cargo test -p simguard-server --test map_bench -- --ignored --nocapture`.

use serde_json::{json, Value};
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use simguard_store::{Role, Store};
use std::time::{Duration, Instant};

const ADMIN: &str = "map-bench-admin";
const TENANT_KEY: &str = "map-bench-acme";
const DEVICES: u64 = 100_000;

fn imsi(i: u64) -> String {
    format!("90170{i:010}")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn map_of_100k_devices() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"127.0.0.1:0\"\n[radius]\naccounting_bind = \"127.0.0.1:0\"\n[flows]\nipfix_bind = \"127.0.0.1:0\"\nnetflow_bind = \"127.0.0.1:0\"\n",
        dir.path().display()
    );
    let cfg = Config::from_toml(&toml, "bench", std::iter::empty()).unwrap();
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(ADMIN.into()),
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    for t in ["acme", "globex"] {
        let r = send(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{t}"),
            json!({ "name": t }),
        )
        .await
        .unwrap();
        assert!(r.status().is_success());
        let r = send(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{t}-trackers"),
            json!({ "tenant": t }),
        )
        .await
        .unwrap();
        assert!(r.status().is_success());
    }
    // Half acme, half globex.
    for chunk in (0..DEVICES).collect::<Vec<_>>().chunks(10_000) {
        let devices: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let t = if i % 2 == 0 { "acme" } else { "globex" };
                json!({ "imsi": imsi(i), "tenant": t, "group": format!("{t}-trackers") })
            })
            .collect();
        let r = send(
            reqwest::Method::POST,
            "/api/v1/devices",
            json!({ "devices": devices }),
        )
        .await
        .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }
    // Positions and some active alerts, straight into the store (as the
    // sink would have written them from accounting).
    {
        let path = dir.path().join("simguard.db");
        let mut s = Store::open(&path).unwrap();
        s.add_api_key("acme", TENANT_KEY, Role::Viewer, Some("acme"), 0)
            .unwrap();
        drop(s);
        let mut c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = c.transaction().unwrap();
        {
            let mut p = tx
                .prepare("INSERT INTO device_positions(imsi, time, lat, lon, accuracy_m, source) VALUES (?1, 0, ?2, ?3, 2000, 'cell')")
                .unwrap();
            for i in 0..DEVICES {
                let d = simguard_engine::Digits::parse(&imsi(i)).unwrap();
                let lat = 35.0 + (i % 3000) as f64 * 0.00712345;
                let lon = -10.0 + (i / 3000) as f64 * 0.97654321;
                p.execute(rusqlite::params![d.packed() as i64, lat, lon])
                    .unwrap();
            }
            let mut a = tx
                .prepare(
                    "INSERT INTO alerts(id, kind, subject_type, subject, imsi, tenant, severity, state,
                       acknowledged, start, last, count, summary, last_source)
                     VALUES (?1, 'silent', 'device', ?2, ?2, 'acme', 'major', 'active', 0, 0, 0, 1, 's', ?1)",
                )
                .unwrap();
            for i in (0..DEVICES).step_by(100) {
                a.execute(rusqlite::params![i as i64 + 1, imsi(i)]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    for (who, token, want) in [
        ("operator", ADMIN, DEVICES),
        ("tenant", TENANT_KEY, DEVICES / 2),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..11 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/api/v1/map/devices"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let body = r.bytes().await.unwrap();
            times.push(t.elapsed());
            bytes = body.len();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["count"], want, "{who}");
            // Every 100th device has an active alert; all of them are acme's.
            let alerted = v["severity"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| **s == "major")
                .count() as u64;
            assert_eq!(alerted, DEVICES / 100, "{who}");
        }
        times.remove(0);
        times.sort();
        println!(
            "map/devices as {who}: {want} devices, {bytes} bytes, min {:?} median {:?} max {:?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    server.shutdown().await;
}
