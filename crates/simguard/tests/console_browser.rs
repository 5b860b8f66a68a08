//! The operator console in a real browser: Debian's Chromium, driven by
//! playwright-core from `console/tests/e2e.mjs`, against `simguard demo`
//! whose NAS is FreeRADIUS (so that blocking a device from the console sends
//! a real Disconnect-Request, which FreeRADIUS acknowledges).
//!
//! The script signs in, checks the overview's counts against the API, opens a
//! device from the map, blocks it (the audit entry with the NAS's answer
//! appears), acknowledges an alert, and checks that a tenant-B user sees none
//! of tenant A's devices. Screenshots go to `<target>/console-screenshots`.

mod common;

use common::*;
use serde_json::Value;
use simguard_testkit::{have_freeradius, need_peer, Nas};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "console-browser-test-token";
const PASSWORD: &str = "console-browser-test-password";

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../console")
}

fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Demo {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn line(&mut self, label: &str) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.trim_start().starts_with(label)) {
                return l.clone();
            }
            let left = Duration::from_secs(120).saturating_sub(t0.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no {label:?} line from the demo:\n{}", self.seen.join("\n")),
            }
        }
    }
}

#[test]
fn console_in_chromium_against_the_demo() {
    need_peer!(
        have_freeradius().then_some(()),
        "FreeRADIUS (apt-get install freeradius)"
    );
    need_peer!(
        have_node().then_some(()),
        "node (apt-get install nodejs npm)"
    );
    need_peer!(
        Path::new(CHROMIUM).exists().then_some(()),
        "Chromium (apt-get install chromium fonts-liberation)"
    );
    need_peer!(
        console_dir()
            .join("node_modules/playwright-core")
            .exists()
            .then_some(()),
        "console/node_modules (building simguard-console runs npm ci)"
    );
    let nas = Nas::start(SECRET);
    let tmp = tempdir("console");
    let mut child = simguard()
        .args([
            "demo",
            "--devices",
            "400",
            "--speed",
            "120",
            "--duration",
            "600",
        ])
        .envs(PORT0_ENV)
        .env("SIMGUARD_DATA_DIR", tmp.path().join("data"))
        .env("SIMGUARD_ADMIN_TOKEN", TOKEN)
        .env("SIMGUARD_DEMO_PASSWORD", PASSWORD)
        .env("SIMGUARD_RADIUS__COA__SOURCE", "127.0.0.1:0")
        .env(
            "SIMGUARD_RADIUS__CLIENTS",
            format!(
                r#"[{{ name = "local", address = "127.0.0.1/32", secret = "{SECRET}", coa_port = {} }}]"#,
                nas.port
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the demo");
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            println!("demo: {l}");
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut demo = Demo {
        child,
        lines,
        seen: Vec::new(),
    };
    let api = demo.line("API");
    let http = banner_addr(&api, "API", "http://").unwrap_or_else(|| panic!("no URL in {api:?}"));
    let console = demo.line("console");
    assert!(
        console.contains(&format!("http://{http}/")),
        "the demo prints the console's URL: {console}"
    );

    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let shots = target.join("console-screenshots");
    let result_file = tmp.path().join("e2e.json");
    let status = Command::new("node")
        .arg("tests/e2e.mjs")
        .current_dir(console_dir())
        .env("SIMGUARD_URL", format!("http://{http}"))
        .env("SIMGUARD_TOKEN", TOKEN)
        .env("SIMGUARD_DEMO_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .env("RESULT_FILE", &result_file)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    let result: Value = std::fs::read_to_string(&result_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    println!(
        "browser test result: {}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    println!("screenshots in {}", shots.display());
    assert!(status.success(), "the browser test failed: {result}");

    // The block sent a Disconnect-Request for the device to FreeRADIUS.
    let imsi = result["steps"]["block"]["imsi"]
        .as_str()
        .expect("the script names the device it blocked")
        .to_string();
    nas.wait_for("Disconnect-ACK", 1);
    let got: Vec<_> = nas
        .received()
        .into_iter()
        .filter(|(k, attrs)| {
            k == "Disconnect-Request" && attrs.iter().any(|(n, v)| n == "User-Name" && *v == imsi)
        })
        .collect();
    assert!(
        !got.is_empty(),
        "no Disconnect-Request for {imsi}:\n{}",
        nas.output()
    );
}
