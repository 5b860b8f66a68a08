//! Shared helpers of the end-to-end tests: run the real `simguard` binary as a
//! child process on loopback, talk to its HTTP API, and drive its RADIUS
//! accounting port with FreeRADIUS's `radclient`.
//!
//! Each test file includes this module, and none uses all of it.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_simguard");

pub const RADCLIENT: &str = "/usr/bin/radclient";

/// Secret of the NAS entry every test server gets for 127.0.0.1.
pub const SECRET: &str = "s3cret";

/// A command for the binary with no `SIMGUARD_*` variable inherited from the
/// environment the tests run in, so that only what a test sets applies.
pub fn simguard() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SIMGUARD_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    c
}

/// Every listening address of the default configuration, as environment
/// overrides (name, value) that bind port 0 on loopback: parallel tests never
/// collide, and nothing uses the customary ports of a real installation.
pub const PORT0_ENV: [(&str, &str); 5] = [
    ("SIMGUARD_HTTP__BIND", "127.0.0.1:0"),
    ("SIMGUARD_RADIUS__ACCOUNTING_BIND", "127.0.0.1:0"),
    ("SIMGUARD_RADIUS__AUTH_BIND", "127.0.0.1:0"),
    ("SIMGUARD_FLOWS__IPFIX_BIND", "127.0.0.1:0"),
    ("SIMGUARD_FLOWS__NETFLOW_BIND", "127.0.0.1:0"),
];

/// Calls `f` until it returns Some, every 20 ms, for at most `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t0.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port: binds port 0 and releases it. Only for what cannot
/// bind port 0 itself; the server is started on port 0 and reports its ports.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to completion, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let s = child.wait().unwrap();
            let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
            panic!("{cmd:?} did not finish within {timeout:?} ({s}); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

// ---------------------------------------------------------------- server --

static STARTS: AtomicUsize = AtomicUsize::new(0);

/// How to start a server.
pub struct ServerOpts {
    pub data_dir: PathBuf,
    pub token: String,
    /// TOML inline array for `radius.clients`.
    pub clients: String,
    /// Extra environment variables (`SIMGUARD_ENGINE__TICK_MS`, ...).
    pub env: Vec<(String, String)>,
    /// `serve --config FILE`; then only the token comes from the environment
    /// and the file must bind port 0 (the banner tells the real ports).
    pub config: Option<PathBuf>,
}

impl ServerOpts {
    pub fn new(data_dir: &Path) -> ServerOpts {
        ServerOpts {
            data_dir: data_dir.to_path_buf(),
            token: "test-admin-token".into(),
            clients: format!(
                r#"[{{ name = "pgw-test", address = "127.0.0.1/32", secret = "{SECRET}", require_message_authenticator = true }}]"#
            ),
            // No clock ticks: then every journal record is a request or an API
            // write, and `wait_applied` can tell when the engine caught up.
            env: vec![("SIMGUARD_ENGINE__TICK_MS".into(), "0".into())],
            config: None,
        }
    }
}

/// A running `simguard serve`. Dropping it kills the process (SIGKILL). Its
/// stderr goes to a file next to the data directory, printed when a test
/// panics while the guard is alive.
pub struct Server {
    child: Option<Child>,
    pub http: SocketAddr,
    pub acct: SocketAddr,
    pub token: String,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Starts `simguard serve` on ephemeral loopback ports (port 0: the server
    /// binds and reports them, so parallel tests cannot collide), then waits
    /// for `/readyz`.
    pub fn start(o: &ServerOpts) -> Server {
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let parent = o.data_dir.parent().unwrap_or(Path::new("/tmp"));
        let stderr_path = parent.join(format!(
            "{}-server-{n}.stderr",
            o.data_dir
                .file_name()
                .map_or("data".into(), |f| f.to_string_lossy())
        ));
        let log = std::fs::File::create(&stderr_path).expect("create stderr log");
        let mut cmd = simguard();
        cmd.arg("serve").env("SIMGUARD_ADMIN_TOKEN", &o.token);
        match &o.config {
            Some(file) => {
                cmd.arg("--config").arg(file);
            }
            None => {
                cmd.envs(PORT0_ENV)
                    .env("SIMGUARD_DATA_DIR", &o.data_dir)
                    .env("SIMGUARD_RADIUS__CLIENTS", &o.clients);
            }
        }
        for (k, v) in &o.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn simguard serve");
        let t0 = Instant::now();
        let (http, acct) = loop {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let http = banner_addr(&text, "API", "http://");
            let acct = banner_addr(&text, "RADIUS accounting", "udp://");
            if let (Some(h), Some(a)) = (http, acct) {
                break (h, a);
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("simguard serve exited ({st}) before serving; stderr:\n{text}");
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("simguard serve did not start within 30 s; stderr:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let s = Server {
            child: Some(child),
            http,
            acct,
            token: o.token.clone(),
            data_dir: o.data_dir.clone(),
            stderr_path,
        };
        wait_for("/readyz to answer 200", Duration::from_secs(30), || {
            matches!(
                http_request(s.http, "GET", "/readyz", None, None),
                Ok((200, _))
            )
            .then_some(())
        });
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// SIGKILL, no chance to flush or snapshot anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (the graceful path).
    pub fn stop(&mut self) -> ExitStatus {
        let c = self.child.as_mut().expect("server running");
        let st = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let t0 = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                panic!("server did not stop within 30 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// GET with the admin token; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_request(self.http, "GET", path, Some(&self.token), None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path} answered {code}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (code, text) = http_request(
            self.http,
            "POST",
            path,
            Some(&self.token),
            Some(&body.to_string()),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The device, or None on 404.
    pub fn device(&self, imsi: &str) -> Option<Value> {
        let (code, body) = self.get(&format!("/api/v1/devices/{imsi}"));
        match code {
            200 => Some(serde_json::from_str(&body).unwrap()),
            404 => None,
            _ => panic!("GET device {imsi} answered {code}: {body}"),
        }
    }

    /// Every device, following `next_cursor` through pages of `limit`.
    pub fn all_devices(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/devices?limit={limit}");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get_json(&path);
            let items = page["items"].as_array().expect("items").clone();
            assert!(items.len() <= limit, "page larger than limit {limit}");
            out.extend(items);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// Waits until the engine applied every accepted accounting request
    /// (answers go out once a request is durable, the engine applies it just
    /// after). Needs ticks off (the default of [`ServerOpts`]) and `api_writes`
    /// the number of API changes made so far.
    pub fn wait_applied(&self, api_writes: u64) {
        wait_for(
            "the engine to apply what was accepted",
            Duration::from_secs(10),
            || {
                let s = self.get_json("/api/v1/status");
                let accepted = s["accounting"]["accepted"].as_u64().unwrap();
                let seq = s["engine_seq"].as_u64().unwrap();
                let base = s["recovery"]["journal_last_seq"].as_u64().unwrap();
                (seq >= base + accepted + api_writes).then_some(())
            },
        );
    }

    /// `/api/v1/status` counters under `accounting`.
    pub fn acct_counters(&self) -> HashMap<String, u64> {
        let s = self.get_json("/api/v1/status");
        s["accounting"]
            .as_object()
            .expect("accounting counters")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("counter")))
            .collect()
    }

    /// `simguard_radius_acct_dropped_total{reason=...}` values from /metrics.
    pub fn metric_drops(&self) -> HashMap<String, u64> {
        let (code, text) = http_request(self.http, "GET", "/metrics", None, None).unwrap();
        assert_eq!(code, 200, "/metrics: {text}");
        let mut out = HashMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("simguard_radius_acct_dropped_total{reason=\"")
            else {
                continue;
            };
            let (reason, rest) = rest.split_once("\"}").expect("label");
            out.insert(
                reason.to_string(),
                rest.trim().parse::<f64>().unwrap() as u64,
            );
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let text = self.stderr();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!(
                "---- server stderr ({}), last lines ----",
                self.stderr_path.display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The address after `scheme` on the banner line that starts with `label`.
pub fn banner_addr(text: &str, label: &str, scheme: &str) -> Option<SocketAddr> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(label))
        .find_map(|l| {
            let rest = &l[l.find(scheme)? + scheme.len()..];
            let end = rest
                .find(|c: char| c == '/' || c.is_whitespace())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
}

// ------------------------------------------------------------------ HTTP --

/// A minimal HTTP/1.1 client over std (one request per connection).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size =
            usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = b.get(end + 2..).unwrap_or(&[]);
    }
}

// ------------------------------------------------------------- radclient --

/// One request radclient sent (retransmissions folded in).
#[derive(Debug, Clone)]
pub struct RadRequest {
    pub id: u8,
    /// Attributes as radclient printed them, values without quotes.
    pub attrs: Vec<(String, String)>,
    pub answered: bool,
}

impl RadRequest {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn attr_u64(&self, name: &str) -> u64 {
        self.attr(name)
            .unwrap_or_else(|| panic!("{name} missing in {self:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} not a number in {self:?}"))
    }
}

/// What a radclient run did.
#[derive(Debug)]
pub struct RadRun {
    pub status: ExitStatus,
    pub requests: Vec<RadRequest>,
    pub stdout: String,
    pub stderr: String,
}

impl RadRun {
    pub fn answered(&self) -> usize {
        self.requests.iter().filter(|r| r.answered).count()
    }
}

/// Runs `radclient -x [extra] -f FILE ADDR acct SECRET` and parses which
/// requests were answered. radclient reuses an Id only after an answer or a
/// final time-out, so an Id maps to one request at a time.
pub fn radclient(file: &Path, addr: SocketAddr, secret: &str, extra: &[&str]) -> RadRun {
    let mut cmd = Command::new(RADCLIENT);
    cmd.arg("-x")
        .args(extra)
        .arg("-f")
        .arg(file)
        .arg(addr.to_string())
        .arg("acct")
        .arg(secret);
    let out = run_with_timeout(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    RadRun {
        status: out.status,
        requests: parse_radclient(&stdout),
        stdout,
        stderr,
    }
}

/// A radclient running in the background; its output is read as it comes
/// (radclient -x blocks on a full pipe otherwise).
pub struct RadChild {
    child: Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

/// Starts radclient without waiting (for load while something else happens).
pub fn spawn_radclient(file: &Path, addr: SocketAddr, secret: &str, extra: &[&str]) -> RadChild {
    // Line-buffered (stdbuf), so that a radclient killed mid-run has printed
    // every request it sent and every answer it read.
    let mut child = Command::new("stdbuf")
        .arg("-oL")
        .arg(RADCLIENT)
        .arg("-x")
        .args(extra)
        .arg("-f")
        .arg(file)
        .arg(addr.to_string())
        .arg("acct")
        .arg(secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn radclient");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = r.read_to_string(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    RadChild { child, out, err }
}

/// Waits for a spawned radclient and parses its output.
pub fn finish_radclient(c: RadChild) -> RadRun {
    finish_radclient_within(c, Duration::from_secs(120), true)
}

/// Waits at most `limit` for a spawned radclient, then kills it (a panic if
/// `must_finish`) and parses what it printed.
pub fn finish_radclient_within(mut c: RadChild, limit: Duration, must_finish: bool) -> RadRun {
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = c.child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = c.child.kill();
            let s = c.child.wait().unwrap();
            assert!(!must_finish, "radclient did not finish within {limit:?}");
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = c.out.join().unwrap();
    RadRun {
        status,
        requests: parse_radclient(&stdout),
        stdout,
        stderr: c.err.join().unwrap(),
    }
}

/// Parses `radclient -x` output: "Sent <Code> Id N ..." followed by
/// tab-indented attributes, "Received <Code> Id N ...".
pub fn parse_radclient(stdout: &str) -> Vec<RadRequest> {
    let mut requests: Vec<RadRequest> = Vec::new();
    let mut in_flight: HashMap<u8, usize> = HashMap::new();
    // Index of the request whose attributes are being printed.
    let mut current: Option<(u8, Vec<(String, String)>)> = None;

    fn id_of(line: &str) -> u8 {
        let mut it = line.split_whitespace();
        while let Some(w) = it.next() {
            if w == "Id" {
                return it.next().and_then(|n| n.parse().ok()).expect("Id number");
            }
        }
        panic!("no Id in {line:?}")
    }

    fn close(
        cur: &mut Option<(u8, Vec<(String, String)>)>,
        requests: &mut Vec<RadRequest>,
        in_flight: &mut HashMap<u8, usize>,
    ) {
        if let Some((id, attrs)) = cur.take() {
            match in_flight.get(&id) {
                // A retransmission prints the same request again.
                Some(&i) if requests[i].attrs == attrs => {}
                _ => {
                    requests.push(RadRequest {
                        id,
                        attrs,
                        answered: false,
                    });
                    in_flight.insert(id, requests.len() - 1);
                }
            }
        }
    }

    for line in stdout.lines() {
        if let Some(attr) = line.strip_prefix('\t') {
            if let Some((_, attrs)) = current.as_mut() {
                if let Some((k, v)) = attr.split_once(" = ") {
                    attrs.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
            continue;
        }
        close(&mut current, &mut requests, &mut in_flight);
        if line.starts_with("Sent ") {
            current = Some((id_of(line), Vec::new()));
        } else if line.starts_with("Received ") {
            if let Some(i) = in_flight.remove(&id_of(line)) {
                requests[i].answered = true;
            }
        }
    }
    close(&mut current, &mut requests, &mut in_flight);
    requests
}

/// One radclient input packet from (attribute, value) lines.
pub fn packet(lines: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in lines {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}

/// Writes packets separated by blank lines.
pub fn write_packets(path: &Path, packets: &[String]) {
    std::fs::write(path, packets.join("\n")).unwrap();
}

/// Quotes a string value for radclient.
pub fn q(s: &str) -> String {
    format!("\"{s}\"")
}

// ------------------------------------------------------------ raw RADIUS --

/// Request Authenticator and Message-Authenticator of an Accounting-Request
/// whose bytes are already final (e.g. after deliberate corruption):
/// Message-Authenticator (at `ma_value_at`, if any) over the packet with a
/// zero authenticator, then MD5(packet with zero authenticator + secret).
pub fn sign_accounting_request(buf: &mut [u8], secret: &[u8], ma_value_at: Option<usize>) {
    use md5::{Digest, Md5};
    buf[4..20].fill(0);
    if let Some(at) = ma_value_at {
        buf[at..at + 16].fill(0);
        let mac = hmac_md5(secret, buf);
        buf[at..at + 16].copy_from_slice(&mac);
    }
    let mut h = Md5::new();
    h.update(&*buf);
    h.update(secret);
    let auth = h.finalize();
    buf[4..20].copy_from_slice(&auth);
}

pub fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Sends `datagram` from `from` to `to` and returns the answer, if one comes
/// within `wait`.
pub fn udp_exchange(
    from: &str,
    to: SocketAddr,
    datagram: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let s = UdpSocket::bind(from).expect("bind UDP");
    s.send_to(datagram, to).unwrap();
    udp_receive(&s, wait)
}

pub fn udp_receive(s: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// A temporary directory for one test.
pub fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sg-e2e-{name}-"))
        .tempdir()
        .unwrap()
}
