//! `simguard eval` on the shipped small scenario: the detection quality gate.
//! It runs the whole path over the wire (simulated fleet and attacks →
//! RADIUS and IPFIX → server → findings API) and must stay at or above the
//! issue's targets. Not a timing test: time to detect is simulated time.

mod common;

use common::simguard;
use serde_json::Value;
use std::path::PathBuf;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
}

#[test]
fn small_scenario_meets_the_quality_targets() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let labels = dir.path().join("labels.jsonl");
    let out = simguard()
        .env("RUST_LOG", "warn")
        .arg("eval")
        .arg("--scenario")
        .arg(scenario("small.toml"))
        .arg("--json")
        .arg(&json)
        .arg("--labels")
        .arg(&labels)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "eval failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let e = &v["evaluation"];

    // Every attack type of the issue is in the scenario and was found.
    let attacks = e["attacks"].as_array().unwrap();
    let names: Vec<&str> = attacks
        .iter()
        .map(|a| a["attack"].as_str().unwrap())
        .collect();
    for want in [
        "mirai-scan",
        "ddos-udp",
        "ddos-syn",
        "ddos-ack",
        "ddos-gre",
        "dns-water-torture",
        "volume-spike-x10",
        "volume-spike-x100",
        "rhythm-change",
        "exfiltration",
        "sim-swap-phone",
        "roaming-disallowed",
        "impossible-travel",
        "silent",
        "flapping",
        "cell-overload",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for a in attacks {
        let recall = a["recall"].as_f64().unwrap();
        assert!(recall >= 0.95, "{}: recall {recall}\n{stdout}", a["attack"]);
        assert_eq!(a["late"], 0, "{}: detected late\n{stdout}", a["attack"]);
    }
    let precision = e["precision"].as_f64().unwrap();
    assert!(precision >= 0.95, "precision {precision}\n{stdout}");
    let fp = e["false_per_10k_device_days"].as_f64().unwrap();
    assert!(
        fp <= 1.0,
        "{fp} false findings per 10k device-days\n{stdout}"
    );
    assert!(e["benign_device_days"].as_f64().unwrap() > 100.0);
    assert_eq!(v["missed_targets"], Value::Array(vec![]), "{stdout}");

    // The labels were written, one line per attack instance.
    let lines = std::fs::read_to_string(&labels).unwrap();
    assert_eq!(
        lines.lines().count(),
        attacks
            .iter()
            .map(|a| a["instances"].as_u64().unwrap() as usize)
            .sum::<usize>()
    );
    assert!(stdout.contains("all quality targets met"), "{stdout}");
}

#[test]
fn a_bad_scenario_names_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nseed = 1\nstart = \"2025-03-28T00:00:00Z\"\nduration = \"1d\"\nwarmup = \"2h\"\n[fleet]\ndevices = 10\nmix = { smart-meter = 1 }\n[[attack]]\nkind = \"telepathy\"\nat = \"3h\"\nduration = \"1m\"\n",
    )
    .unwrap();
    let out = simguard()
        .arg("eval")
        .arg("--scenario")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kind") || err.contains("telepathy"), "{err}");
}
