//! `simguard rules backtest` against a running `simguard serve` whose
//! journal holds known findings (EUTRAN sessions from radclient in a group
//! that allows NB-IoT only).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const BAD_RAT: [&str; 2] = ["901700000000301", "901700000000302"];
const FINE: &str = "901700000000303";

fn call(srv: &Server, method: &str, path: &str, body: &Value) -> Value {
    let (code, text) = http_request(
        srv.http,
        method,
        path,
        Some(&srv.token),
        Some(&body.to_string()),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn start_record(imsi: &str, n: usize) -> String {
    [
        "Acct-Status-Type = Start".to_string(),
        format!("Acct-Session-Id = \"cli-{n}\""),
        format!("3GPP-IMSI = \"{imsi}\""),
        "3GPP-SGSN-MCC-MNC = \"90170\"".into(),
        "3GPP-RAT-Type = 6".into(),
        format!("Framed-IP-Address = 10.46.0.{}", n + 1),
        "Message-Authenticator = 0x00".into(),
    ]
    .join("\n")
        + "\n"
}

fn backtest(srv: &Server, args: &[&str]) -> std::process::Output {
    let mut cmd = simguard();
    cmd.args(["rules", "backtest"]).args(args).args([
        "--server",
        &format!("http://{}", srv.http),
        "--token",
        &srv.token,
    ]);
    run_with_timeout(cmd, Duration::from_secs(120))
}

#[test]
fn backtest_reports_the_devices_a_rule_would_have_acted_on() {
    let tmp = tempdir("rules-cli");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));
    call(
        &srv,
        "PUT",
        "/api/v1/tenants/acme",
        &json!({"name": "Acme"}),
    );
    call(
        &srv,
        "PUT",
        "/api/v1/groups/nbiot",
        &json!({"tenant": "acme", "profile": {"allowed_rats": [8]}}),
    );
    call(
        &srv,
        "PUT",
        "/api/v1/groups/lte",
        &json!({"tenant": "acme"}),
    );
    call(
        &srv,
        "POST",
        "/api/v1/devices",
        &json!({"devices": [
            {"imsi": BAD_RAT[0], "tenant": "acme", "group": "nbiot"},
            {"imsi": BAD_RAT[1], "tenant": "acme", "group": "nbiot"},
            {"imsi": FINE, "tenant": "acme", "group": "lte"},
        ]}),
    );
    let file = tmp.path().join("starts.radclient");
    let text: Vec<String> = [BAD_RAT[0], BAD_RAT[1], FINE]
        .iter()
        .enumerate()
        .map(|(i, imsi)| start_record(imsi, i))
        .collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let run = radclient(&file, srv.acct, SECRET, &["-r", "3", "-t", "2"]);
    assert_eq!(run.answered(), 3, "{}\n{}", run.stdout, run.stderr);
    wait_for(
        "two disallowed_rat findings",
        Duration::from_secs(20),
        || {
            let v = srv.get_json("/api/v1/findings?type=disallowed_rat");
            (v["items"].as_array().unwrap().len() == 2).then_some(())
        },
    );

    // A draft rule from a file.
    let rule = tmp.path().join("rule.json");
    std::fs::write(
        &rule,
        json!({
            "id": "rat-block", "mode": "enforce",
            "trigger": {"finding": {"types": ["disallowed_rat"]}},
            "steps": [{"action": "block"}]
        })
        .to_string(),
    )
    .unwrap();
    let out = backtest(&srv, &[&format!("@{}", rule.display()), "--since", "1d"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rule rat-block (dry-run)"), "{stdout}");
    assert!(stdout.contains(": 2 actions on 2 devices"), "{stdout}");
    assert!(stdout.contains("by action: block 2"), "{stdout}");
    for imsi in BAD_RAT {
        assert!(stdout.contains(imsi), "{imsi} missing: {stdout}");
    }
    assert!(!stdout.contains(FINE), "{stdout}");
    assert!(stdout.contains("[finding "), "{stdout}");

    // A saved rule by id, as JSON.
    let mut saved: Value = serde_json::from_str(&std::fs::read_to_string(&rule).unwrap()).unwrap();
    saved["mode"] = json!("dry-run");
    call(&srv, "POST", "/api/v1/rules", &saved);
    let out = backtest(&srv, &["rat-block", "--since", "7d", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let mut devices: Vec<&str> = report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["imsi"].as_str().unwrap())
        .collect();
    devices.sort();
    assert_eq!(devices, BAD_RAT);

    // Nothing was done to the devices.
    for imsi in BAD_RAT {
        assert_eq!(srv.device(imsi).unwrap()["lifecycle"], "active");
    }
    // An unknown rule fails with the server's message.
    let out = backtest(&srv, &["no-such-rule"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no rule \"no-such-rule\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
