//! `simguard import devices FILE.csv` against a running server.

mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

fn import(srv: &Server, file: &std::path::Path, extra: &[&str]) -> Output {
    let mut cmd = simguard();
    cmd.args(["import", "devices"])
        .arg(file)
        .args([
            "--server",
            &format!("http://{}", srv.http),
            "--token",
            &srv.token,
        ])
        .args(extra);
    run_with_timeout(cmd, Duration::from_secs(60))
}

const MIXED: &str = "\
imsi,iccid,msisdn,imei,tenant,group,lifecycle,label
901700000000401,89490170000000000012,+491700000401,490154203237518,acme,meters,active,Meter 401
901700000000402,894901700000000002,,35209900176148,acme,trackers,throttled,\"Tracker, 402\"
90170000000040X,,,,acme,meters,,bad imsi
901700000000404,,,490154203237519,acme,meters,,bad luhn
901700000000405,,,,Acme,meters,,bad tenant
901700000000406,1234,,,acme,meters,,bad iccid
901700000000407,,,,acme,meters,paused,bad lifecycle
901700000000401,,,,acme,meters,,duplicate of line 2
901700000000409,,,,acme,meters
901700000000410,,12,,acme,meters,,bad msisdn
901700000000411,,,,acme,meters,,
";

/// (line, field) of every bad row of MIXED, and the IMSI it carries.
const BAD: [(u32, &str, &str); 8] = [
    (4, "imsi", "90170000000040X"),
    (5, "imei", "901700000000404"),
    (6, "tenant", "901700000000405"),
    (7, "iccid", "901700000000406"),
    (8, "lifecycle", "901700000000407"),
    (9, "imsi", "901700000000401"),
    (10, "-", "901700000000409"),
    (11, "msisdn", "901700000000410"),
];

#[test]
fn good_rows_are_imported_and_bad_rows_reported_by_line_and_field() {
    let tmp = tempdir("import");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));
    let csv = tmp.path().join("devices.csv");
    std::fs::write(&csv, MIXED).unwrap();

    let out = import(&srv, &csv, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "exit 0 although rows were bad; stderr:\n{stderr}"
    );
    for (line, field, _) in BAD {
        let needle = format!("line {line}, field {field}:");
        assert!(
            stderr.contains(&needle),
            "{needle:?} not reported; stderr:\n{stderr}"
        );
    }
    let reported = stderr.lines().filter(|l| l.contains(", field ")).count();
    assert_eq!(reported, BAD.len(), "stderr:\n{stderr}");
    assert!(
        stderr.contains("3 valid rows, 8 rejected"),
        "stderr:\n{stderr}"
    );

    // The good rows, with every field.
    let d = srv
        .device("901700000000401")
        .expect("good row 401 imported");
    assert_eq!(d["provisioned"], true);
    assert_eq!(d["tenant"], "acme");
    assert_eq!(d["group"], "meters");
    assert_eq!(d["iccid"], "89490170000000000012");
    assert_eq!(d["msisdn"], "491700000401");
    assert_eq!(d["bound_imei"], "490154203237518");
    assert_eq!(d["lifecycle"], "active");
    assert_eq!(d["label"], "Meter 401");
    assert_eq!(d["status"], "never_seen");
    let d = srv
        .device("901700000000402")
        .expect("good row 402 imported");
    assert_eq!(d["group"], "trackers");
    assert_eq!(d["iccid"], "894901700000000002");
    assert_eq!(d["msisdn"], serde_json::Value::Null);
    assert_eq!(d["bound_imei"], "35209900176148");
    assert_eq!(d["lifecycle"], "throttled");
    assert_eq!(d["label"], "Tracker, 402");
    let d = srv
        .device("901700000000411")
        .expect("good row 411 imported");
    assert_eq!(
        (d["lifecycle"].as_str(), d["label"].as_str()),
        (Some("active"), None)
    );

    // Nothing of the bad rows (the duplicate kept the first row's values).
    for (_, _, imsi) in BAD {
        if imsi.bytes().all(|b| b.is_ascii_digit()) && imsi != "901700000000401" {
            assert_eq!(srv.device(imsi), None, "bad row {imsi} was imported");
        }
    }
    let all = srv.all_devices("", 100);
    let imsis: Vec<&str> = all.iter().map(|d| d["imsi"].as_str().unwrap()).collect();
    assert_eq!(
        imsis,
        ["901700000000401", "901700000000402", "901700000000411"]
    );
    assert_eq!(
        srv.all_devices("provisioned=true&group=meters", 100).len(),
        2
    );
}

#[test]
fn a_clean_file_imports_with_exit_0_and_dry_run_imports_nothing() {
    let tmp = tempdir("import-dry");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));
    let csv = tmp.path().join("devices.csv");
    let mut text = String::from("imsi,tenant,group,label\n");
    for i in 0..25 {
        text.push_str(&format!("9017000000005{i:02},fleet,trackers,T{i}\n"));
    }
    std::fs::write(&csv, &text).unwrap();

    let out = import(&srv, &csv, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dry run failed: {stderr}");
    assert!(stderr.contains("25 valid rows, 0 rejected"), "{stderr}");
    assert_eq!(
        srv.all_devices("", 100).len(),
        0,
        "--dry-run imported devices"
    );
    assert_eq!(srv.get_json("/api/v1/status")["devices"], 0);

    // A dry run of a file with a bad row reports it and still fails.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, format!("{text}12345,fleet,trackers,short imsi\n")).unwrap();
    let out = import(&srv, &bad, &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("line 27, field imsi:"), "{stderr}");
    assert_eq!(srv.all_devices("", 100).len(), 0);

    // The real import, in batches smaller than the file.
    let out = import(&srv, &csv, &["--batch", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import failed: {stderr}");
    assert!(stderr.contains("imported 25 devices"), "{stderr}");
    let all = srv.all_devices("provisioned=true", 7);
    assert_eq!(all.len(), 25);
    assert!(all
        .iter()
        .all(|d| d["tenant"] == "fleet" && d["group"] == "trackers"));
    assert_eq!(srv.device("901700000000517").unwrap()["label"], "T17");

    // A wrong token is an error, not a silent success.
    let mut cmd = simguard();
    cmd.args(["import", "devices"]).arg(&csv).args([
        "--server",
        &format!("http://{}", srv.http),
        "--token",
        "wrong",
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
}
