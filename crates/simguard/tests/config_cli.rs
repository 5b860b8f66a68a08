//! `simguard configfile` and `simguard serve --config` with good and bad files.

mod common;

use common::*;
use std::time::Duration;

fn configfile() -> String {
    let mut cmd = simguard();
    cmd.arg("configfile");
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn configfile_prints_a_commented_toml_with_the_documented_keys() {
    let text = configfile();
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            >= 10,
        "not commented:\n{text}"
    );
    let t: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    assert_eq!(t["data_dir"].as_str(), Some("./simguard-data"));
    assert_eq!(t["http"]["bind"].as_str(), Some("127.0.0.1:8080"));
    let r = &t["radius"];
    assert_eq!(r["accounting_bind"].as_str(), Some("127.0.0.1:1813"));
    assert_eq!(r["auth_bind"].as_str(), Some("127.0.0.1:1812"));
    let clients = r["clients"].as_array().expect("[[radius.clients]]");
    assert_eq!(clients.len(), 1);
    let c = clients[0].as_table().unwrap();
    assert_eq!(c["address"].as_str(), Some("127.0.0.1/32"));
    assert_eq!(c["secret"].as_str(), Some("simguard-local-secret"));
    assert_eq!(c["require_message_authenticator"].as_bool(), Some(true));
    assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()));
}

/// The printed configuration is a working one: with only the data directory
/// and ports changed, `serve --config` runs it and accepts accounting with
/// its client entry.
#[test]
fn the_printed_configfile_runs_with_serve_config() {
    let tmp = tempdir("cfg-run");
    let data = tmp.path().join("data");
    let text = configfile()
        .replace(
            "data_dir = \"./simguard-data\"",
            &format!("data_dir = {:?}", data.display().to_string()),
        )
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:1813", "127.0.0.1:0")
        .replace("127.0.0.1:1812", "127.0.0.1:0")
        .replace("127.0.0.1:4739", "127.0.0.1:0")
        .replace("127.0.0.1:2055", "127.0.0.1:0");
    let file = tmp.path().join("simguard.toml");
    std::fs::write(&file, &text).unwrap();
    let mut o = ServerOpts::new(&data);
    o.config = Some(file);
    let srv = Server::start(&o);
    assert!(
        data.join("journal").is_dir(),
        "data_dir from the file not used"
    );

    let req = tmp.path().join("start.txt");
    write_packets(
        &req,
        &[packet(&[
            ("Acct-Status-Type", "Start".into()),
            ("Acct-Session-Id", q("cfg-1")),
            ("3GPP-IMSI", q("901700000000601")),
            ("Message-Authenticator", "0x00".into()),
        ])],
    );
    let run = radclient(
        &req,
        srv.acct,
        "simguard-local-secret",
        &["-r", "2", "-t", "2"],
    );
    assert_eq!(run.answered(), 1, "{}\n{}", run.stdout, run.stderr);
    let d = wait_for("the device", Duration::from_secs(10), || {
        srv.device("901700000000601")
    });
    assert_eq!(d["sessions"][0]["nas"], "local");
}

/// Runs `serve --config FILE` with `text` and returns stderr; the run must
/// fail quickly.
fn serve_must_fail(name: &str, text: &str, env: &[(&str, &str)]) -> (String, String) {
    let tmp = tempdir("cfg-bad");
    let file = tmp.path().join(name);
    std::fs::write(&file, text).unwrap();
    let mut cmd = simguard();
    cmd.arg("serve")
        .arg("--config")
        .arg(&file)
        // Should it start anyway, keep it off the default ports and directory
        // (but let the file's own [http] bind stand).
        .env("SIMGUARD_DATA_DIR", tmp.path().join("data"));
    for (k, v) in PORT0_ENV {
        if !(k == "SIMGUARD_HTTP__BIND" && text.contains("[http]")) {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{name}: serve accepted it:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    (stderr, file.display().to_string())
}

#[test]
fn serve_with_a_bad_config_exits_non_zero_and_names_the_key_and_line() {
    // A value of the wrong kind: the key is named, with the file.
    let (e, path) = serve_must_fail("bad-bind.toml", "[http]\nbind = \"not an address\"\n", &[]);
    assert!(e.contains(&path), "{e}");
    assert!(e.contains("http.bind"), "{e}");

    // A TOML syntax error: the line is named.
    let (e, path) = serve_must_fail(
        "syntax.toml",
        "data_dir = \"/tmp/simguard-never\"\n\n[radius]\naccounting_bind = = \"127.0.0.1:1813\"\n",
        &[],
    );
    assert!(e.contains(&path), "{e}");
    assert!(e.contains("line 4"), "{e}");

    // A misspelt key is not silently ignored.
    let (e, _) = serve_must_fail(
        "unknown.toml",
        "[radius]\naccounting_bnd = \"127.0.0.1:1813\"\n",
        &[],
    );
    assert!(e.contains("accounting_bnd"), "{e}");

    // A NAS entry whose address is no CIDR.
    let (e, _) = serve_must_fail(
        "client.toml",
        "[[radius.clients]]\nname = \"pgw\"\naddress = \"300.1.2.3/32\"\nsecret = \"s\"\n",
        &[],
    );
    assert!(e.contains("radius.clients.address"), "{e}");

    // An empty secret.
    let (e, _) = serve_must_fail(
        "secret.toml",
        "[[radius.clients]]\nname = \"pgw\"\naddress = \"127.0.0.1/32\"\nsecret = \"\"\n",
        &[],
    );
    assert!(
        e.contains("radius.clients[0]") && e.contains("secret"),
        "{e}"
    );

    // A bad environment override names the variable or the key.
    let (e, _) = serve_must_fail("env.toml", "", &[("SIMGUARD_HTTP__BIND", "nonsense")]);
    assert!(
        e.contains("SIMGUARD_HTTP__BIND") || e.contains("http.bind") || e.contains("bind"),
        "{e}"
    );

    // A file that does not exist.
    let mut cmd = simguard();
    cmd.args(["serve", "--config", "/nonexistent/simguard.toml"]);
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("/nonexistent/simguard.toml"), "{e}");
}

#[test]
fn serve_exits_non_zero_when_its_port_is_taken() {
    let tmp = tempdir("cfg-port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut cmd = simguard();
    cmd.arg("serve")
        .envs(PORT0_ENV)
        .env("SIMGUARD_DATA_DIR", tmp.path().join("data"))
        .env("SIMGUARD_HTTP__BIND", format!("127.0.0.1:{port}"));
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    drop(taken);
}
