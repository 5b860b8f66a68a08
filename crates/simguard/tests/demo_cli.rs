//! `simguard demo`: a server plus a simulated fleet on embedded defaults,
//! queried while it runs, then restarted on the same data directory.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(data: &Path, duration: &str) -> Demo {
        let mut cmd = simguard();
        let mut child = cmd
            .args([
                "demo",
                "--devices",
                "200",
                "--speed",
                "600",
                "--duration",
                duration,
            ])
            .envs(PORT0_ENV)
            .env("SIMGUARD_DATA_DIR", data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn demo");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Demo {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Reads stdout until a line starting with `label` (after indentation).
    fn line(&mut self, label: &str, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self
                .stdout
                .iter()
                .find(|l| l.trim_start().starts_with(label))
            {
                return l.clone();
            }
            let left = timeout.saturating_sub(t0.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.stdout.push(l),
                Err(_) => panic!(
                    "no {label:?} line in the demo's output:\n{}",
                    self.stdout.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit (the demo stops after --duration) and returns all stdout.
    fn wait(&mut self, timeout: Duration) -> (std::process::ExitStatus, String, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < timeout,
                "demo did not stop within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(l);
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (status, self.stdout.join("\n"), stderr)
    }
}

/// The API base and token the demo printed.
fn api_of(d: &mut Demo) -> (SocketAddr, String, usize) {
    let api = d.line("API", Duration::from_secs(60));
    let http = banner_addr(&api, "API", "http://").unwrap_or_else(|| panic!("no URL in {api:?}"));
    assert!(
        api.contains(&format!("http://{http}/api/v1/devices")),
        "{api}"
    );
    let token = d.line("token", Duration::from_secs(5));
    let token = token
        .split_whitespace()
        .nth(1)
        .expect("token value")
        .to_string();
    let fleet = d.line("fleet", Duration::from_secs(5));
    // "fleet       200 devices (199 provisioned), simulated time x600"
    let provisioned = fleet
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no provisioned count in {fleet:?}"));
    (http, token, provisioned)
}

fn get(http: SocketAddr, token: &str, path: &str) -> Value {
    let (code, body) = http_request(http, "GET", path, Some(token), None).unwrap();
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn list(http: SocketAddr, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(
            http,
            token,
            &format!("/api/v1/devices?limit=1000&{query}{cursor}"),
        );
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// One HTTP/1.1 exchange with extra headers: (status, head, body).
fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let b = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        b.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(b.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_string(), body.to_string())
}

/// Logs in; the session cookie ("simguard_session=...").
fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
    let (code, head, text) = raw(addr, "POST", "/api/v1/session", &[], Some(&body));
    assert_eq!(code, 200, "login {user}: {text}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie: {head}"))
        .to_string()
}

fn cookie_get(addr: SocketAddr, cookie: &str, path: &str) -> Value {
    let (code, _, body) = raw(addr, "GET", path, &[("Cookie", cookie)], None);
    assert_eq!(code, 200, "GET {path}: {body}");
    // The body may be chunked; the JSON is the part between the first { and the last }.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[test]
fn demo_serves_a_live_fleet_and_keeps_it_across_restarts() {
    let tmp = tempdir("demo");
    let data = tmp.path().join("data");

    // ---- First run.
    let mut demo = Demo::start(&data, "8");
    let (http, token, provisioned) = api_of(&mut demo);
    assert!(token.starts_with("demo-"), "{token}");
    assert!((190..=200).contains(&provisioned), "{provisioned}");
    let url_line = demo.line("try", Duration::from_secs(5));
    assert!(
        url_line.contains(&token) && url_line.contains(&http.to_string()),
        "{url_line}"
    );

    // While it runs: the inventory is there and devices come online with sessions.
    let all = list(http, &token, "");
    assert_eq!(
        all.len(),
        200,
        "the demo fleet is provisioned before traffic"
    );
    assert_eq!(list(http, &token, "provisioned=true").len(), provisioned);
    // About 50 of the 200 report within the first simulated hour (seed 7).
    let online = wait_for("30 devices online", Duration::from_secs(7), || {
        let online = list(http, &token, "status=online");
        (online.len() >= 30).then_some(online)
    });
    for d in &online {
        let s = d["sessions"].as_array().unwrap();
        assert!(!s.is_empty(), "online without a session: {d}");
        assert!(s[0]["framed_ip"].is_string(), "{d}");
        assert!(d["network"]["plmn"].is_string(), "{d}");
        assert!(d["rat"]["name"].is_string(), "{d}");
        assert!(d["last_seen"].is_string(), "{d}");
    }
    eprintln!("{} devices online", online.len());
    let tenants = get(http, &token, "/api/v1/tenants");
    assert!(tenants.as_array().unwrap().len() >= 3, "{tenants}");

    // The console users it printed log in with the demo password, each
    // seeing its own tenant (the operator-wide admin, all).
    let users = demo.line("users", Duration::from_secs(5));
    assert!(users.contains("admin (admin, every tenant)"), "{users}");
    let console = demo.line("console", Duration::from_secs(5));
    assert!(console.contains("password simguard-demo"), "{console}");
    let admin = login(http, "admin", "simguard-demo");
    let all_by_cookie = cookie_get(http, &admin, "/api/v1/devices?limit=1000");
    assert_eq!(all_by_cookie["items"].as_array().unwrap().len(), 200);
    let northgrid = login(http, "northgrid-operator", "simguard-demo");
    let mine = cookie_get(http, &northgrid, "/api/v1/devices?limit=1000");
    let mine = mine["items"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(
        mine.iter().all(|d| d["tenant"] == "northgrid"),
        "a tenant user sees only its tenant's devices"
    );
    let (code, _, _) = raw(
        http,
        "POST",
        "/api/v1/session",
        &[],
        Some(r#"{"username":"admin","password":"not-the-demo-password"}"#),
    );
    assert_eq!(code, 401);

    // What the first run knows now: it must survive the restart.
    let before: HashMap<String, (String, u64)> = list(http, &token, "")
        .iter()
        .filter(|d| d["first_seen"].is_string())
        .map(|d| {
            (
                d["imsi"].as_str().unwrap().to_string(),
                (
                    d["first_seen"].as_str().unwrap().to_string(),
                    d["usage"]["total_up_octets"].as_u64().unwrap()
                        + d["usage"]["total_down_octets"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert!(before.len() >= 30, "{}", before.len());
    eprintln!("{} devices seen in the first run", before.len());

    let (status, stdout, stderr) = demo.wait(Duration::from_secs(40));
    assert!(
        status.success(),
        "demo failed: {status}\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("engine: "), "{stdout}");

    // ---- Second run on the same data directory.
    let mut demo = Demo::start(&data, "4");
    let (http2, token2, provisioned2) = api_of(&mut demo);
    assert_eq!(token2, token, "the demo token changed across restarts");
    assert_eq!(provisioned2, provisioned);
    let status2 = get(http2, &token2, "/api/v1/status");
    let rec = &status2["recovery"];
    assert!(
        rec["snapshot_seq"].as_u64().unwrap() + rec["replayed"].as_u64().unwrap() > 0,
        "nothing recovered: {status2}"
    );
    let after: HashMap<String, Value> = list(http2, &token2, "")
        .into_iter()
        .map(|d| (d["imsi"].as_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(after.len(), 200);
    for (imsi, (first_seen, bytes)) in &before {
        let d = after
            .get(imsi)
            .unwrap_or_else(|| panic!("{imsi} lost across the restart"));
        assert_eq!(
            d["first_seen"].as_str(),
            Some(first_seen.as_str()),
            "{imsi}: {d}"
        );
        let now = d["usage"]["total_up_octets"].as_u64().unwrap()
            + d["usage"]["total_down_octets"].as_u64().unwrap();
        assert!(now >= *bytes, "{imsi}: usage went from {bytes} to {now}");
    }
    let (status, stdout, stderr) = demo.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "second demo failed: {status}\n{stdout}\n{stderr}"
    );
}
