//! Shared by the server tests (first written for `tests/flows.rs`): an
//! in-process server on ephemeral ports and
//! its API, radclient sessions, a hand-built IPFIX encoder, a pcap reader,
//! and the external exporters (softflowd, pmacctd) fed by scapy captures.
#![allow(dead_code)]

pub mod pcap;

use reqwest::StatusCode;
use serde_json::Value;
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "flows-test-admin-token";
/// The built-in configuration's RADIUS client for 127.0.0.1.
pub const RADIUS_SECRET: &str = "simguard-local-secret";

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The configuration of every test server: the built-in defaults (RADIUS
/// client 127.0.0.1 with Message-Authenticator required, exporter allow-list
/// 127.0.0.1/32) with every socket on an ephemeral loopback port.
pub fn config(data_dir: &Path) -> Config {
    config_with(data_dir, "")
}

/// Same, with extra TOML keys for the `[flows]` section.
pub fn config_with(data_dir: &Path, flows: &str) -> Config {
    config_ticking(data_dir, flows, 100)
}

/// Same, with journal ticks every `tick_ms` (0: none). `extra` follows the
/// `[flows]` keys, so it may also add whole tables (`[radius.coa]`,
/// `[[radius.clients]]`, `[notify]`, ...).
pub fn config_ticking(data_dir: &Path, extra: &str, tick_ms: u64) -> Config {
    let toml = format!(
        r#"
data_dir = "{}"
[http]
bind = "127.0.0.1:0"
[radius]
accounting_bind = "127.0.0.1:0"
auth_bind = "127.0.0.1:0"
[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"
{extra}
[engine]
tick_ms = {tick_ms}
"#,
        data_dir.display()
    );
    Config::from_toml(&toml, "flows test", std::iter::empty()).expect("test config")
}

pub async fn start_server(data_dir: &Path) -> Server {
    start_with(config(data_dir)).await
}

pub async fn start_with(cfg: Config) -> Server {
    Server::start(
        cfg,
        StartOptions {
            admin_token: Some(ADMIN.into()),
        },
    )
    .await
    .expect("server starts")
}

/// An HTTP client of one server's API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(http_addr: SocketAddr) -> Api {
        Api {
            base: format!("http://{http_addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn try_get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// GET that must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.try_get(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// A write that must succeed (any 2xx).
    pub async fn write(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let (s, v) = self.try_send(method.clone(), path, body).await;
        assert!(s.is_success(), "{method} {path} {body}: {s}: {v}");
        v
    }

    /// A write that must answer 200.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let (s, v) = self.try_send(method.clone(), path, body).await;
        assert_eq!(s, StatusCode::OK, "{method} {path} {body}: {v}");
        v
    }

    /// The `flows` counters of `/api/v1/status`.
    pub async fn flow_counters(&self) -> BTreeMap<String, u64> {
        let s = self.get("/api/v1/status").await;
        s["flows"]
            .as_object()
            .expect("status has a flows map")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("counter")))
            .collect()
    }

    pub async fn counter(&self, name: &str) -> u64 {
        self.flow_counters().await.get(name).copied().unwrap_or(0)
    }

    /// Polls `/api/v1/status` until `pred` holds on the flow counters (10 s).
    pub async fn wait_counters(
        &self,
        what: &str,
        pred: impl Fn(&BTreeMap<String, u64>) -> bool,
    ) -> BTreeMap<String, u64> {
        let t0 = Instant::now();
        loop {
            let c = self.flow_counters().await;
            if pred(&c) {
                return c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}; flow counters: {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every unattributed flow the server keeps (newest first).
    pub async fn unattributed(&self) -> Vec<Flow> {
        let v = self.get("/api/v1/flows/unattributed?limit=1000").await;
        flows_of(&v)
    }

    /// Every flow kept for a device (newest first).
    pub async fn device_flows(&self, imsi: &str) -> Vec<Flow> {
        let v = self
            .get(&format!("/api/v1/devices/{imsi}/flows?limit=1000"))
            .await;
        flows_of(&v)
    }
}

/// A flow as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub bytes: u64,
    pub packets: u64,
    pub flags: u8,
    pub start: i64,
    pub end: i64,
    pub sampling: u32,
    /// "up", "down", or None (unattributed).
    pub direction: Option<String>,
}

fn time_of(v: &Value) -> i64 {
    let s = v.as_str().expect("time is a string");
    simguard_engine::time::parse_rfc3339(s).unwrap_or_else(|| panic!("not RFC 3339: {s}"))
}

pub fn flow_of(v: &Value) -> Flow {
    let num = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    };
    let ip = |k: &str| -> IpAddr {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
            .parse()
            .expect("address")
    };
    Flow {
        src: ip("src"),
        dst: ip("dst"),
        sport: num("src_port") as u16,
        dport: num("dst_port") as u16,
        proto: num("proto") as u8,
        bytes: num("bytes"),
        packets: num("packets"),
        flags: num("tcp_flags") as u8,
        start: time_of(&v["start"]),
        end: time_of(&v["end"]),
        sampling: num("sampling") as u32,
        direction: v["direction"].as_str().map(str::to_string),
    }
}

pub fn flows_of(page: &Value) -> Vec<Flow> {
    let items = page["items"].as_array().expect("a page of items");
    assert_eq!(
        page["total"].as_u64(),
        Some(items.len() as u64),
        "one page holds everything: {page}"
    );
    items.iter().map(flow_of).collect()
}

/// Polls an async condition every 20 ms for at most `limit`.
#[macro_export]
macro_rules! wait_until {
    ($what:expr, $limit:expr, $cond:expr) => {{
        let t0 = std::time::Instant::now();
        loop {
            if let Some(v) = $cond {
                break v;
            }
            assert!(
                t0.elapsed() < $limit,
                "timed out after {:?} waiting for {}",
                $limit,
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}

// ------------------------------------------------------------- radclient --

/// One accounting request for radclient's input file.
pub struct Acct<'a> {
    pub imsi: &'a str,
    pub ip: &'a str,
    /// "Start", "Interim-Update" or "Stop".
    pub status: &'a str,
    pub session: &'a str,
    /// Event-Timestamp, Unix seconds.
    pub time: i64,
    /// Acct-Session-Time (Interim/Stop), seconds.
    pub session_time: Option<i64>,
}

impl Acct<'_> {
    fn lines(&self) -> String {
        let mut s = format!(
            "3GPP-IMSI = \"{}\"\n\
             3GPP-RAT-Type = EUTRAN\n\
             3GPP-SGSN-MCC-MNC = \"90170\"\n\
             Framed-IP-Address = {}\n\
             Acct-Status-Type = {}\n\
             Acct-Session-Id = \"{}\"\n\
             Event-Timestamp = {}\n",
            self.imsi, self.ip, self.status, self.session, self.time
        );
        if let Some(t) = self.session_time {
            s.push_str(&format!(
                "Acct-Session-Time = {t}\nAcct-Input-Octets = 1000\nAcct-Output-Octets = 2000\n"
            ));
        }
        // radclient computes the real Message-Authenticator in place of 0x00.
        s.push_str("Message-Authenticator = 0x00\n");
        s
    }
}

fn which(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install it with `apt-get install -y {package}` (CI installs it)");
}

/// Runs a command to completion (killing it after `limit`); (status, stdout, stderr).
pub fn run(mut cmd: Command, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, to.join().unwrap(), te.join().unwrap())
}

/// Sends the requests with radclient, one at a time and in order, and
/// asserts that each one was answered (that is, journaled).
pub async fn radclient(acct: SocketAddr, dir: &Path, name: &str, requests: &[Acct<'_>]) {
    let file = dir.join(format!("{name}.radclient"));
    let text: Vec<String> = requests.iter().map(Acct::lines).collect();
    std::fs::write(&file, text.join("\n")).expect("write radclient file");
    let bin = which("radclient", "freeradius-utils");
    let n = requests.len();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(bin);
        cmd.args(["-x", "-p", "1", "-r", "3", "-t", "2", "-f"])
            .arg(&file)
            .arg(acct.to_string())
            .arg("acct")
            .arg(RADIUS_SECRET);
        let (status, out, err) = run(cmd, Duration::from_secs(30));
        let answered = out
            .lines()
            .filter(|l| l.starts_with("Received Accounting-Response"))
            .count();
        assert!(
            status.success() && answered == n,
            "radclient: {status}, {answered}/{n} answered\n{out}\n{err}"
        );
    })
    .await
    .expect("radclient task");
}

/// radclient Starts for `n` IMSIs (`first`..) that are not in the
/// inventory: one `unprovisioned` finding, hence one alert, each. Returns
/// the IMSIs.
pub async fn unprovisioned(server: &Server, dir: &Path, first: u64, n: u64) -> Vec<String> {
    let t = now_ms() / 1000;
    let imsis: Vec<String> = (first..first + n)
        .map(|i| format!("90170990000{i:04}"))
        .collect();
    let ips: Vec<String> = (0..n)
        .map(|i| format!("10.77.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let sess: Vec<String> = imsis.iter().map(|i| format!("n-{i}")).collect();
    let reqs: Vec<Acct> = (0..n as usize)
        .map(|i| Acct {
            imsi: &imsis[i],
            ip: &ips[i],
            status: "Start",
            session: &sess[i],
            time: t,
            session_time: None,
        })
        .collect();
    radclient(server.acct_addr, dir, &format!("n{first}"), &reqs).await;
    imsis
}

// ------------------------------------------------------------------ IPFIX --

/// Information elements the encoder knows (RFC 7012 ids).
pub const SRC4: u16 = 8;
pub const DST4: u16 = 12;
pub const SPORT: u16 = 7;
pub const DPORT: u16 = 11;
pub const PROTO: u16 = 4;
pub const FLAGS: u16 = 6;
pub const OCTETS: u16 = 1;
pub const PACKETS: u16 = 2;
pub const START_MS: u16 = 152;
pub const END_MS: u16 = 153;
pub const PADDING: u16 = 210;

/// A template layout: (element id, length) in order.
pub type Layout = &'static [(u16, u16)];

/// softflowd-like: addresses, ports, protocol, flags, 8-byte counters, ms times.
pub const LAYOUT_A: Layout = &[
    (SRC4, 4),
    (DST4, 4),
    (SPORT, 2),
    (DPORT, 2),
    (PROTO, 1),
    (FLAGS, 1),
    (OCTETS, 8),
    (PACKETS, 8),
    (START_MS, 8),
    (END_MS, 8),
];

/// The same elements in another order, 4-byte counters and padding: a record
/// of one layout read with the other gives nonsense.
pub const LAYOUT_B: Layout = &[
    (START_MS, 8),
    (END_MS, 8),
    (PACKETS, 4),
    (OCTETS, 4),
    (PROTO, 1),
    (PADDING, 3),
    (DPORT, 2),
    (SPORT, 2),
    (DST4, 4),
    (SRC4, 4),
    (FLAGS, 1),
];

/// What a hand-built record carries.
#[derive(Debug, Clone, Copy)]
pub struct Rec {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub flags: u8,
    pub bytes: u64,
    pub packets: u64,
    pub start: i64,
    pub end: i64,
}

impl Rec {
    pub fn encode(&self, layout: &[(u16, u16)]) -> Vec<u8> {
        let mut o = Vec::new();
        for &(ie, len) in layout {
            let v: u64 = match ie {
                SRC4 => u32::from_be_bytes(self.src).into(),
                DST4 => u32::from_be_bytes(self.dst).into(),
                SPORT => self.sport.into(),
                DPORT => self.dport.into(),
                PROTO => self.proto.into(),
                FLAGS => self.flags.into(),
                OCTETS => self.bytes,
                PACKETS => self.packets,
                START_MS => self.start as u64,
                END_MS => self.end as u64,
                PADDING => 0,
                other => panic!("encoder does not know element {other}"),
            };
            let b = v.to_be_bytes();
            o.extend_from_slice(&b[8 - usize::from(len)..]);
        }
        o
    }

    /// The flow the API should show for this record.
    pub fn flow(&self, direction: Option<&str>) -> Flow {
        Flow {
            src: IpAddr::from(self.src),
            dst: IpAddr::from(self.dst),
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            bytes: self.bytes,
            packets: self.packets,
            flags: self.flags,
            start: self.start,
            end: self.end,
            sampling: 1,
            direction: direction.map(str::to_string),
        }
    }
}

pub fn ip4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().expect("IPv4").octets()
}

/// An IPFIX message (RFC 7011) under construction.
pub struct Ipfix {
    pub domain: u32,
    pub seq: u32,
    sets: Vec<u8>,
}

impl Ipfix {
    pub fn new(domain: u32, seq: u32) -> Ipfix {
        Ipfix {
            domain,
            seq,
            sets: Vec::new(),
        }
    }

    /// Appends a set with this id and body.
    pub fn set(mut self, id: u16, body: &[u8]) -> Ipfix {
        self.sets.extend_from_slice(&id.to_be_bytes());
        self.sets
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.sets.extend_from_slice(body);
        self
    }

    /// A template set (id 2) with one template.
    pub fn template(self, id: u16, layout: Layout) -> Ipfix {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&(layout.len() as u16).to_be_bytes());
        for &(ie, len) in layout {
            b.extend_from_slice(&ie.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
        }
        self.set(2, &b)
    }

    /// A data set for template `id`.
    pub fn data(self, id: u16, layout: Layout, recs: &[Rec]) -> Ipfix {
        let body: Vec<u8> = recs.iter().flat_map(|r| r.encode(layout)).collect();
        self.set(id, &body)
    }

    pub fn build(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(16 + self.sets.len());
        o.extend_from_slice(&10u16.to_be_bytes());
        o.extend_from_slice(&((16 + self.sets.len()) as u16).to_be_bytes());
        o.extend_from_slice(&((now_ms() / 1000) as u32).to_be_bytes());
        o.extend_from_slice(&self.seq.to_be_bytes());
        o.extend_from_slice(&self.domain.to_be_bytes());
        o.extend_from_slice(&self.sets);
        o
    }
}

/// NetFlow v9 (RFC 3954) template layout: FIRST/LAST_SWITCHED (22/21) are
/// sysUptime milliseconds.
pub const LAYOUT_V9: Layout = &[
    (SRC4, 4),
    (DST4, 4),
    (SPORT, 2),
    (DPORT, 2),
    (PROTO, 1),
    (FLAGS, 1),
    (OCTETS, 4),
    (PACKETS, 4),
    (22, 4),
    (21, 4),
];

/// A NetFlow v9 export packet: header (sysUptime `uptime_ms` at Unix time
/// `unix_secs`), then flowsets.
pub struct V9 {
    pub source_id: u32,
    pub seq: u32,
    pub unix_secs: u32,
    pub uptime_ms: u32,
    count: u16,
    sets: Vec<u8>,
}

impl V9 {
    pub fn new(source_id: u32, seq: u32) -> V9 {
        V9 {
            source_id,
            seq,
            unix_secs: (now_ms() / 1000) as u32,
            uptime_ms: 100_000_000,
            count: 0,
            sets: Vec::new(),
        }
    }

    fn flowset(mut self, id: u16, mut body: Vec<u8>) -> V9 {
        while (body.len() + 4) % 4 != 0 {
            body.push(0);
        }
        self.sets.extend_from_slice(&id.to_be_bytes());
        self.sets
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.sets.extend_from_slice(&body);
        self
    }

    pub fn template(mut self, id: u16, layout: Layout) -> V9 {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&(layout.len() as u16).to_be_bytes());
        for &(ie, len) in layout {
            b.extend_from_slice(&ie.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
        }
        self.count += 1;
        self.flowset(0, b)
    }

    /// sysUptime of a Unix time in ms.
    fn uptime_at(&self, ms: i64) -> u32 {
        let age = i64::from(self.unix_secs) * 1000 - ms;
        (i64::from(self.uptime_ms) - age) as u32
    }

    pub fn data(mut self, id: u16, layout: Layout, recs: &[Rec]) -> V9 {
        let mut b = Vec::new();
        for r in recs {
            for &(ie, len) in layout {
                let v: u64 = match ie {
                    22 => self.uptime_at(r.start).into(),
                    21 => self.uptime_at(r.end).into(),
                    _ => {
                        let one = r.encode(&[(ie, 8)]);
                        u64::from_be_bytes(one.try_into().unwrap())
                    }
                };
                b.extend_from_slice(&v.to_be_bytes()[8 - usize::from(len)..]);
            }
        }
        self.count += recs.len() as u16;
        self.flowset(id, b)
    }

    pub fn build(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(20 + self.sets.len());
        o.extend_from_slice(&9u16.to_be_bytes());
        o.extend_from_slice(&self.count.to_be_bytes());
        o.extend_from_slice(&self.uptime_ms.to_be_bytes());
        o.extend_from_slice(&self.unix_secs.to_be_bytes());
        o.extend_from_slice(&self.seq.to_be_bytes());
        o.extend_from_slice(&self.source_id.to_be_bytes());
        o.extend_from_slice(&self.sets);
        o
    }
}

/// Sends datagrams from a socket bound to `from` (e.g. "127.0.0.1:0").
pub fn send_from(from: &str, to: SocketAddr, datagrams: &[Vec<u8>]) {
    let s = UdpSocket::bind(from).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    for d in datagrams {
        s.send_to(d, to).expect("send");
    }
}

pub fn send(to: SocketAddr, datagram: Vec<u8>) {
    send_from("127.0.0.1:0", to, &[datagram]);
}

// ------------------------------------------------------ external exporters --

pub fn python() -> PathBuf {
    let py = PathBuf::from("/usr/bin/python3");
    assert!(
        py.is_file(),
        "/usr/bin/python3 not found: apt-get install -y python3-scapy"
    );
    py
}

/// Writes a pcap with scapy: `script` gets the output path and `args`.
pub fn scapy(dir: &Path, name: &str, script: &str, args: &[String]) -> PathBuf {
    let pcap = dir.join(name);
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).arg(&pcap).args(args);
    let (status, out, err) = run(cmd, Duration::from_secs(60));
    assert!(
        status.success(),
        "scapy failed ({status}): {out}\n{err}\n(apt-get install -y python3-scapy)"
    );
    pcap
}

/// softflowd reads the pcap and exports NetFlow v5/v9 or IPFIX to `to`,
/// then exits.
pub fn softflowd(pcap: &Path, version: u16, to: SocketAddr) {
    let bin = which("softflowd", "softflowd");
    let mut cmd = Command::new(bin);
    // -c none: no control socket (it would otherwise wait on it forever).
    cmd.args(["-d", "-r"]).arg(pcap).args([
        "-n",
        &to.to_string(),
        "-v",
        &version.to_string(),
        "-A",
        "milli",
        "-c",
        "none",
    ]);
    let (status, out, err) = run(cmd, Duration::from_secs(30));
    assert!(
        status.success(),
        "softflowd -v {version}: {status}\n{out}\n{err}"
    );
}

/// pmacctd's nfprobe exports the pcap as IPFIX; the datagrams it sent, as
/// received on a socket of ours. Err when the run failed (pmacctd 1.7.7
/// sometimes stops the plugin before it flushes: exit 1, nothing sent).
pub fn pmacctd_ipfix(dir: &Path, pcap: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bin = which("pmacctd", "pmacct");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let conf = dir.join("pmacctd.conf");
    let log = dir.join("pmacctd.log");
    let _ = std::fs::remove_file(&log);
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\n\
             logfile: {}\n\
             pcap_savefile: {}\n\
             plugins: nfprobe[x]\n\
             nfprobe_receiver[x]: 127.0.0.1:{port}\n\
             nfprobe_version[x]: 10\n\
             nfprobe_timeouts[x]: tcp=5:udp=5:maxlife=10:expint=1\n",
            log.display(),
            pcap.display()
        ),
    )
    .expect("write conf");
    let mut child = Command::new(bin)
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pmacctd");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let t0 = Instant::now();
    let mut quiet_after_exit = 0;
    loop {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pmacctd did not finish in 30 s\n{}", log_text()));
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                got.push(buf[..n].to_vec());
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("pmacctd: recv: {e}"),
        }
        if let Some(status) = child.try_wait().expect("wait") {
            if !status.success() {
                return Err(format!("pmacctd exited with {status}\n{}", log_text()));
            }
            quiet_after_exit += 1;
            if quiet_after_exit >= 5 {
                break;
            }
        }
    }
    if got.is_empty() {
        return Err(format!("pmacctd sent nothing\n{}", log_text()));
    }
    Ok(got)
}

/// Where the shared test data lives.
pub fn shared_data() -> PathBuf {
    std::env::var_os("SIMGUARD_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        })
}
