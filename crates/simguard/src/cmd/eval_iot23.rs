//! `simguard eval --iot23 DIR`: replays the labelled IoT-23 captures (Zeek
//! conn.log as CSV, see `crate::iot23`) through a real server over the
//! wire, and reports what detection found for each label.
//!
//! Per capture, in its own server (engine time never goes back, the
//! captures overlap in time and reuse the same private addresses, so
//! sharing one engine would mix them up):
//! 1. the device is the most frequent private originator; it gets a
//!    tenant, a group `iot23-<capture>` and a SIM through the API;
//! 2. RADIUS accounting binds the address to the SIM: a Start a minute
//!    before the first connection, Interims every `INTERIM_SECS` carrying
//!    the usage of the flows so far, each spread over its duration (as a
//!    packet gateway would count it), and a Stop
//!    after the last packet; each request waits for its answer;
//! 3. every row becomes IPFIX records (originator → responder, and back
//!    when the responder sent anything), sent in time order, paced by the
//!    server's applied-flows counter, and counted back to detect UDP loss;
//! 4. findings are read back from the API; each is matched to the row it
//!    was raised on (same device, same flow start) to report per label.
//!
//! The groups learn their destinations for `WARMUP_SECS` only (the default
//! is a day, longer than most captures): the first five minutes of a
//! capture are its learning period.

use crate::client::ApiClient;
use crate::cmd::eval::{fetch_findings, server_overrides};
use crate::iot23::{self, Conn, Family, Label};
use crate::score::Found;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use simguard_radius::acct::terminate_cause;
use simguard_radius::acct::StatusType;
use simguard_radius::{Accounting, Code, Packet, PacketWriter};
use simguard_server::config::{Config, TEMPLATE};
use simguard_server::{Server, StartOptions};
use simguard_sim::ipfix::{Encoder, FlowRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The groups' destination learning period for the replay, seconds
/// (`detection.destinations_warmup_secs`; the default of a day would
/// cover most captures whole).
pub const WARMUP_SECS: u32 = 300;

/// Acct-Interim-Interval of the replayed sessions, seconds: a common packet
/// gateway setting, declared as the groups' reporting interval.
pub const INTERIM_SECS: u32 = 900;

/// The Start goes this long before the first connection of a capture.
const START_LEAD_SECS: u32 = 60;

/// IMSIs come from the test network 001-01: 00101 923 and a 7-digit index.
const IMSI_PREFIX: &str = "00101923";

/// Most records sent and not yet applied by the engine. Well below the
/// socket buffer (32 MiB holds ~20,000 full datagrams) so UDP never drops.
const MAX_IN_FLIGHT: u64 = 4_096;

/// Tenant of every replayed capture.
const TENANT: &str = "iot23";

/// The IoT-23 directory when `--iot23` is given without one:
/// `$SIMGUARD_SHARED_DATA/iot23`, else `../shared/data/iot23` from the
/// current directory (the repository root), else from this source tree.
pub fn default_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("SIMGUARD_SHARED_DATA") {
        return Ok(PathBuf::from(d).join("iot23"));
    }
    let candidates = [
        PathBuf::from("../shared/data/iot23"),
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/iot23"
        )),
    ];
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .with_context(|| {
            format!(
                "no IoT-23 directory at {}; give it with --iot23 DIR or set SIMGUARD_SHARED_DATA",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dir: String,
    pub destinations_warmup_secs: u32,
    pub interim_secs: u32,
    pub captures: Vec<CaptureResult>,
    /// The results as Markdown tables (what is printed).
    pub table: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaptureResult {
    pub capture: String,
    pub file: String,
    /// The device address (None: no private IPv4 originator; skipped).
    pub device: Option<String>,
    pub imsi: Option<String>,
    pub group: Option<String>,
    pub rows: usize,
    /// Rows not exported: IPv6 (the exporter's template is IPv4 only).
    pub rows_ipv6: usize,
    /// First and last packet of the capture, Unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub accounting_requests: u64,
    pub records_sent: u64,
    /// Records the server's collector decoded (`flows.records`).
    pub records_received: u64,
    /// Records the engine applied (attributed + unattributed).
    pub records_applied: u64,
    pub records_attributed: u64,
    /// Sent and never received (UDP loss).
    pub records_lost: u64,
    /// The server's flow drop counters that are not zero, by reason.
    pub dropped: BTreeMap<String, u64>,
    pub labels: Vec<LabelResult>,
    /// Findings on the capture's device, by type.
    pub findings: BTreeMap<String, usize>,
    /// Findings on any other subject.
    pub other_findings: usize,
    /// Findings on the device that match no row (accounting detectors).
    pub unmatched: BTreeMap<String, usize>,
    pub families: Vec<FamilyResult>,
    /// "met", "missed" or "skipped".
    pub verdict: String,
    pub reason: String,
    /// Every finding on the device: time, type, label of its row, summary.
    pub finding_list: Vec<String>,
    pub wall_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelResult {
    pub label: String,
    pub rows: usize,
    /// Findings raised on rows of this label, by type.
    pub findings: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FamilyResult {
    pub family: String,
    /// Detailed labels of the capture in this family.
    pub labels: Vec<String>,
    pub accepted: Vec<String>,
    /// Accepted findings on the device, wherever raised.
    pub found: usize,
    /// Of them, raised on rows of this family's labels.
    pub on_labelled_rows: usize,
    /// At least one accepted finding on the family's rows.
    pub flagged: bool,
}

impl Report {
    pub fn all_met(&self) -> bool {
        self.captures.iter().all(|c| c.verdict != "missed")
    }

    /// What `simguard eval` prints.
    pub fn text(&self) -> String {
        let mut s = format!(
            "IoT-23 replay ({}), destinations learned for the first {} s of each capture\n\n",
            self.dir, self.destinations_warmup_secs
        );
        s.push_str(&self.table);
        for c in &self.captures {
            if !c.finding_list.is_empty() {
                let _ = writeln!(
                    s,
                    "\nfindings on {} ({}):",
                    c.capture,
                    c.device.as_deref().unwrap_or("-")
                );
                for f in &c.finding_list {
                    let _ = writeln!(s, "  {f}");
                }
            }
        }
        s
    }
}

fn counts_text(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "none".to_string();
    }
    m.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown tables: verdict per capture, then findings per label.
pub fn tables(captures: &[CaptureResult]) -> String {
    let mut s = String::new();
    s.push_str("| capture | device | rows | flow records sent / lost | findings on the device | expected | verdict |\n");
    s.push_str("|---|---|---:|---:|---|---|---|\n");
    for c in captures {
        let expected = if c.families.is_empty() {
            "no finding (benign)".to_string()
        } else {
            c.families
                .iter()
                .map(|f| format!("{}: {}", f.family, f.accepted.join(" or ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {} | {} | {} | {} |",
            c.capture,
            c.device.as_deref().unwrap_or("-"),
            if c.rows_ipv6 > 0 {
                format!("{} ({} IPv6, not exported)", c.rows, c.rows_ipv6)
            } else {
                c.rows.to_string()
            },
            c.records_sent,
            c.records_lost,
            counts_text(&c.findings),
            expected,
            if c.reason.is_empty() {
                c.verdict.clone()
            } else {
                format!("{} ({})", c.verdict, c.reason)
            }
        );
    }
    s.push_str("\n| capture | label | rows | findings raised on these rows |\n");
    s.push_str("|---|---|---:|---|\n");
    for c in captures {
        for l in &c.labels {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                c.capture,
                l.label,
                l.rows,
                counts_text(&l.findings)
            );
        }
        if !c.unmatched.is_empty() {
            let _ = writeln!(
                s,
                "| {} | (accounting, no row) | – | {} |",
                c.capture,
                counts_text(&c.unmatched)
            );
        }
    }
    s
}

/// Replays every `*.csv` in `dir` (in name order) and reports.
pub async fn run(dir: &Path, data_dir: Option<&Path>) -> Result<Report> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the IoT-23 directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .csv files in {}", dir.display());
    }
    let mut captures = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rows = iot23::parse(&path.display().to_string(), &text)?;
        let capture = file
            .trim_end_matches(".csv")
            .trim_end_matches("-labeled")
            .to_string();
        eprintln!("eval: IoT-23 {capture}: {} rows", rows.len());
        let result = replay_capture(i + 1, &capture, &file, rows, data_dir).await?;
        eprintln!(
            "eval: IoT-23 {capture}: {} ({} records sent, {} lost, {:.1} s)",
            result.verdict, result.records_sent, result.records_lost, result.wall_seconds
        );
        captures.push(result);
    }
    Ok(Report {
        dir: dir.display().to_string(),
        destinations_warmup_secs: WARMUP_SECS,
        interim_secs: INTERIM_SECS,
        table: tables(&captures),
        captures,
    })
}

/// The group id of a capture: `iot23-` and the capture name as a slug.
fn group_id(capture: &str) -> String {
    let slug: String = capture
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("iot23-{slug}");
    id.truncate(64);
    id
}

/// One exported record with the direction it has for the device.
struct Export {
    rec: FlowRecord,
    /// 1: from the device (uplink), -1: to it, 0: neither.
    dir: i8,
}

#[derive(Default)]
struct Usage {
    up: u64,
    down: u64,
    up_pkts: u64,
    down_pkts: u64,
}

async fn replay_capture(
    index: usize,
    capture: &str,
    file: &str,
    mut rows: Vec<Conn>,
    data_dir: Option<&Path>,
) -> Result<CaptureResult> {
    let started = Instant::now();
    // Zeek writes a connection when it ends: the files are not in time order.
    rows.sort_by_key(|r| (r.ts_ms, r.line));
    let mut result = CaptureResult {
        capture: capture.to_string(),
        file: file.to_string(),
        device: None,
        imsi: None,
        group: None,
        rows: rows.len(),
        rows_ipv6: 0,
        start_ms: rows.first().map_or(0, |r| r.ts_ms),
        end_ms: rows.iter().map(Conn::end_ms).max().unwrap_or(0),
        accounting_requests: 0,
        records_sent: 0,
        records_received: 0,
        records_applied: 0,
        records_attributed: 0,
        records_lost: 0,
        dropped: BTreeMap::new(),
        labels: Vec::new(),
        findings: BTreeMap::new(),
        other_findings: 0,
        unmatched: BTreeMap::new(),
        families: Vec::new(),
        verdict: "skipped".into(),
        reason: String::new(),
        finding_list: Vec::new(),
        wall_seconds: 0.0,
    };
    let Some(device) = iot23::device_address(&rows) else {
        result.reason = "no originator in private IPv4 space to bind to a SIM".into();
        result.labels = label_rows(&rows);
        return Ok(result);
    };
    let imsi = format!("{IMSI_PREFIX}{index:07}");
    let group = group_id(capture);
    result.device = Some(device.to_string());
    result.imsi = Some(imsi.clone());
    result.group = Some(group.clone());

    let mut exports = Vec::new();
    for r in &rows {
        match r.flow_records() {
            None => result.rows_ipv6 += 1,
            Some(recs) => exports.extend(recs.into_iter().map(|rec| Export {
                dir: if rec.src == device {
                    1
                } else if rec.dst == device {
                    -1
                } else {
                    0
                },
                rec,
            })),
        }
    }

    let tmp;
    let dir = match data_dir {
        Some(d) => d.join(&group),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary data directory")?;
            tmp.path().to_path_buf()
        }
    };
    let mut overrides = server_overrides(&dir);
    overrides.push((
        "SIMGUARD_DETECTION__DESTINATIONS_WARMUP_SECS".into(),
        WARMUP_SECS.to_string(),
    ));
    let cfg = Config::from_toml(TEMPLATE, "built-in default", overrides.into_iter())?;
    let secret = cfg
        .radius
        .clients
        .iter()
        .find(|c| c.address.contains(&IpAddr::from([127, 0, 0, 1])))
        .map(|c| c.secret.clone())
        .context("the configuration has no RADIUS client for 127.0.0.1")?;
    let token = "eval-admin-token".to_string();
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(token.clone()),
        },
    )
    .await?;
    let api = ApiClient::new(&format!("http://{}", server.http_addr), &token)?;
    let replayed = replay(
        &api,
        server.acct_addr,
        server.ipfix_addr,
        secret.as_bytes(),
        capture,
        &group,
        &imsi,
        device,
        &exports,
        &mut result,
    )
    .await;
    let found = match replayed {
        Ok(()) => fetch_findings(&api).await,
        Err(e) => Err(e),
    };
    server.shutdown().await;
    let found = found?;

    score_capture(&mut result, &rows, device, &imsi, &found);
    result.wall_seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn replay(
    api: &ApiClient,
    acct: SocketAddr,
    ipfix: SocketAddr,
    secret: &[u8],
    capture: &str,
    group: &str,
    imsi: &str,
    device: Ipv4Addr,
    exports: &[Export],
    result: &mut CaptureResult,
) -> Result<()> {
    api.send(
        reqwest::Method::PUT,
        &format!("/api/v1/tenants/{TENANT}"),
        &serde_json::json!({ "name": "IoT-23 replay" }),
    )
    .await?;
    api.send(
        reqwest::Method::PUT,
        &format!("/api/v1/groups/{group}"),
        &serde_json::json!({
            "tenant": TENANT,
            "name": capture,
            "profile": { "report_interval_secs": INTERIM_SECS },
        }),
    )
    .await?;
    api.send(
        reqwest::Method::POST,
        "/api/v1/devices",
        &serde_json::json!({ "devices": [{
            "imsi": imsi,
            "tenant": TENANT,
            "group": group,
            "label": format!("{capture} {device}"),
        }]}),
    )
    .await?;

    let first_s = u32::try_from(result.start_ms.div_euclid(1000))
        .context("capture time before 1970 or after 2106")?;
    let last_s =
        u32::try_from((result.end_ms + 999).div_euclid(1000)).context("capture time after 2106")?;
    let start_s = first_s.saturating_sub(START_LEAD_SECS);
    let stop_s = last_s + 1;

    let mut radius = RadiusClient::new(acct, secret, imsi, device).await?;
    radius
        .send(StatusType::Start, start_s, start_s, &Usage::default())
        .await?;

    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .context("binding the IPFIX exporter socket")?;
    let mut enc = Encoder::new(23);
    let mut batch: Vec<FlowRecord> = Vec::new();
    let mut buf = Vec::new();
    let mut sent: u64 = 0;
    let mut next_interim = start_s + INTERIM_SECS;
    let mut messages = 0u64;
    for (i, e) in exports.iter().enumerate() {
        let t_s = e.rec.start_ms / 1000;
        while u64::from(next_interim) <= t_s && next_interim < stop_s {
            flush(&sock, ipfix, &mut enc, &mut batch, &mut buf, &mut sent).await?;
            let usage = usage_at(&exports[..i], u64::from(next_interim) * 1000);
            radius
                .send(StatusType::InterimUpdate, next_interim, start_s, &usage)
                .await?;
            next_interim += INTERIM_SECS;
        }
        batch.push(e.rec);
        if batch.len() >= enc.capacity() {
            flush(&sock, ipfix, &mut enc, &mut batch, &mut buf, &mut sent).await?;
            messages += 1;
            if messages % 16 == 0 {
                wait_applied(api, sent.saturating_sub(MAX_IN_FLIGHT)).await?;
            }
        }
    }
    flush(&sock, ipfix, &mut enc, &mut batch, &mut buf, &mut sent).await?;
    while next_interim < stop_s {
        let usage = usage_at(exports, u64::from(next_interim) * 1000);
        radius
            .send(StatusType::InterimUpdate, next_interim, start_s, &usage)
            .await?;
        next_interim += INTERIM_SECS;
    }
    // Every flow in before the session ends.
    wait_applied(api, sent).await?;
    let usage = usage_at(exports, u64::from(stop_s) * 1000);
    radius
        .send(StatusType::Stop, stop_s, start_s, &usage)
        .await?;
    result.accounting_requests = radius.requests;
    result.records_sent = sent;

    let status = drain(api).await?;
    let flows = &status["flows"];
    let n = |k: &str| flows[k].as_u64().unwrap_or(0);
    result.records_received = n("records");
    result.records_attributed = n("attributed");
    result.records_applied = n("attributed") + n("unattributed");
    result.records_lost = sent.saturating_sub(result.records_received);
    if let Some(m) = flows.as_object() {
        for (k, v) in m {
            if let (Some(reason), Some(v)) = (k.strip_prefix("dropped_"), v.as_u64()) {
                if v > 0 {
                    result.dropped.insert(reason.to_string(), v);
                }
            }
        }
    }
    Ok(())
}

/// The device's usage up to `t_ms` from the flows that started by then,
/// each spread evenly over its duration: a gateway counts the bytes of a
/// twelve-hour session as they pass, not all at its first packet.
fn usage_at(started: &[Export], t_ms: u64) -> Usage {
    let mut u = Usage::default();
    for e in started {
        let r = &e.rec;
        let share = |v: u64| -> u64 {
            if t_ms >= r.end_ms || r.end_ms <= r.start_ms {
                v
            } else {
                let done = t_ms.saturating_sub(r.start_ms);
                (u128::from(v) * u128::from(done) / u128::from(r.end_ms - r.start_ms)) as u64
            }
        };
        match e.dir {
            1 => {
                u.up += share(r.octets);
                u.up_pkts += share(r.packets);
            }
            -1 => {
                u.down += share(r.octets);
                u.down_pkts += share(r.packets);
            }
            _ => {}
        }
    }
    u
}

async fn flush(
    sock: &UdpSocket,
    to: SocketAddr,
    enc: &mut Encoder,
    batch: &mut Vec<FlowRecord>,
    buf: &mut Vec<u8>,
    sent: &mut u64,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    // Export time: the newest flow of the message, as an exporter would stamp it.
    let export_secs = batch
        .iter()
        .map(|r| r.end_ms / 1000)
        .max()
        .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX));
    enc.encode(export_secs, batch, buf);
    sock.send_to(buf, to)
        .await
        .with_context(|| format!("sending IPFIX to {to}"))?;
    *sent += batch.len() as u64;
    batch.clear();
    Ok(())
}

/// Records the engine has applied, and the status it read them from.
async fn applied(api: &ApiClient) -> Result<(u64, serde_json::Value)> {
    let status = api.get("/api/v1/status").await?;
    let f = &status["flows"];
    let n = f["attributed"].as_u64().unwrap_or(0) + f["unattributed"].as_u64().unwrap_or(0);
    Ok((n, status))
}

/// Waits until the engine has applied at least `target` records, or until
/// nothing has moved for two seconds (records lost on the way: the caller
/// counts them at the end).
async fn wait_applied(api: &ApiClient, target: u64) -> Result<()> {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let (n, _) = applied(api).await?;
        if n >= target {
            return Ok(());
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the server is quiet: the received and applied flow counters,
/// the journal position and the stored findings unchanged for two seconds.
async fn drain(api: &ApiClient) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = None;
    let mut stable = 0;
    loop {
        let (n, status) = applied(api).await?;
        let received = status["flows"]["records"].as_u64().unwrap_or(0);
        let seq = status["engine_seq"].as_u64().unwrap_or(0);
        let total = api.get("/api/v1/findings/summary").await?["total"]
            .as_u64()
            .unwrap_or(0);
        let now = Some((n, received, seq, total));
        if n >= received && now == last {
            stable += 1;
            // The store sink commits findings once a second: the count
            // must hold for longer than that.
            if stable >= 4 {
                return Ok(status);
            }
        } else {
            stable = 0;
        }
        last = now;
        if Instant::now() > deadline {
            bail!("the server did not finish applying the capture within 5 minutes ({n} of {received} records applied)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A NAS with one session: the device's.
struct RadiusClient {
    sock: UdpSocket,
    to: SocketAddr,
    secret: Vec<u8>,
    imsi: String,
    session_id: String,
    device: Ipv4Addr,
    identifier: u8,
    requests: u64,
}

impl RadiusClient {
    async fn new(
        to: SocketAddr,
        secret: &[u8],
        imsi: &str,
        device: Ipv4Addr,
    ) -> Result<RadiusClient> {
        Ok(RadiusClient {
            sock: UdpSocket::bind("127.0.0.1:0")
                .await
                .context("binding the RADIUS client socket")?,
            to,
            secret: secret.to_vec(),
            imsi: imsi.to_string(),
            session_id: format!("iot23-{imsi}"),
            device,
            identifier: 0,
            requests: 0,
        })
    }

    /// Sends one Accounting-Request and waits for its answer (retransmitting
    /// like a NAS: the answer only comes once the record is durable).
    async fn send(&mut self, status: StatusType, at_s: u32, start_s: u32, u: &Usage) -> Result<()> {
        let counters = status != StatusType::Start;
        let a = Accounting {
            status_type: Some(status),
            session_id: Some(&self.session_id),
            user_name: Some(&self.imsi),
            nas_ip: Some(Ipv4Addr::LOCALHOST),
            nas_identifier: Some("iot23-replay"),
            framed_ip: Some(self.device),
            called_station_id: Some("iot23.test"),
            input_octets: counters.then_some(u.up),
            output_octets: counters.then_some(u.down),
            input_packets: counters.then(|| u32::try_from(u.up_pkts).unwrap_or(u32::MAX)),
            output_packets: counters.then(|| u32::try_from(u.down_pkts).unwrap_or(u32::MAX)),
            session_time: counters.then_some(at_s.saturating_sub(start_s)),
            terminate_cause: (status == StatusType::Stop).then_some(terminate_cause::USER_REQUEST),
            interim_interval: (status != StatusType::Stop).then_some(INTERIM_SECS),
            event_timestamp: Some(at_s),
            imsi: Some(&self.imsi),
            ..Accounting::default()
        };
        let id = self.identifier;
        self.identifier = self.identifier.wrapping_add(1);
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, id, [0u8; 16]);
        w.message_authenticator()?;
        a.write_attributes(&mut w)?;
        let pkt = w.finish_request(&self.secret).to_vec();
        let mut auth = [0u8; 16];
        auth.copy_from_slice(pkt.get(4..20).context("short RADIUS packet")?);
        self.requests += 1;
        let mut rbuf = vec![0u8; 4096];
        for _ in 0..5 {
            self.sock
                .send_to(&pkt, self.to)
                .await
                .with_context(|| format!("sending RADIUS to {}", self.to))?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            loop {
                let got = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut rbuf)).await;
                let Ok(got) = got else { break };
                let (n, _) = got.context("receiving the Accounting-Response")?;
                let Some(bytes) = rbuf.get(..n) else { continue };
                let Ok(p) = Packet::parse(bytes) else {
                    continue;
                };
                if p.code() == Code::AccountingResponse
                    && p.identifier() == id
                    && p.verify_response_authenticator(&auth, &self.secret)
                {
                    return Ok(());
                }
            }
        }
        bail!(
            "no Accounting-Response to the {status:?} of {} after 5 tries",
            self.imsi
        )
    }
}

/// Rows per report label, in a stable order (benign first).
fn label_rows(rows: &[Conn]) -> Vec<LabelResult> {
    let mut n: BTreeMap<(bool, String), usize> = BTreeMap::new();
    for r in rows {
        *n.entry((r.label == Label::Malicious, r.report_label()))
            .or_default() += 1;
    }
    n.into_iter()
        .map(|((_, label), rows)| LabelResult {
            label,
            rows,
            findings: BTreeMap::new(),
        })
        .collect()
}

/// The row a device finding was raised on: flow findings carry the flow's
/// start as their time; among rows of the device starting then, the one
/// whose remote address the summary names. None for accounting findings.
fn row_of<'a>(rows: &'a [Conn], device: Ipv4Addr, f: &Found) -> Option<&'a Conn> {
    let dev = IpAddr::V4(device);
    let lo = rows.partition_point(|r| r.ts_ms < f.time_ms);
    let same: Vec<&Conn> = rows[lo..]
        .iter()
        .take_while(|r| r.ts_ms == f.time_ms)
        .filter(|r| r.orig_h == dev || r.resp_h == dev)
        .collect();
    let remote = |r: &Conn| if r.orig_h == dev { r.resp_h } else { r.orig_h };
    same.iter()
        .find(|r| f.summary.contains(&format!("{} ", remote(r))))
        .or(same.first())
        .copied()
}

fn score_capture(
    result: &mut CaptureResult,
    rows: &[Conn],
    device: Ipv4Addr,
    imsi: &str,
    found: &[Found],
) {
    result.labels = label_rows(rows);
    let mut mine: Vec<&Found> = found
        .iter()
        .filter(|f| f.subject_type == "device" && f.subject == imsi)
        .collect();
    mine.sort_by_key(|f| f.time_ms);
    result.other_findings = found.len() - mine.len();
    // (report label, type) of every finding on the device.
    let mut on_rows: Vec<(Option<String>, &str)> = Vec::new();
    for f in &mine {
        *result.findings.entry(f.kind.clone()).or_default() += 1;
        let label = row_of(rows, device, f).map(Conn::report_label);
        match &label {
            Some(l) => {
                if let Some(lr) = result.labels.iter_mut().find(|x| &x.label == l) {
                    *lr.findings.entry(f.kind.clone()).or_default() += 1;
                }
            }
            None => *result.unmatched.entry(f.kind.clone()).or_default() += 1,
        }
        result.finding_list.push(format!(
            "{} {} [{}] {}",
            simguard_engine::time::rfc3339(f.time_ms),
            f.kind,
            label.as_deref().unwrap_or("no row"),
            f.summary
        ));
        on_rows.push((label, f.kind.as_str()));
    }

    let mut families: BTreeMap<Family, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.label == Label::Malicious) {
        if let Some(fam) = r.detailed.as_deref().and_then(Family::of) {
            families.entry(fam).or_default().insert(r.report_label());
        }
    }
    for (fam, labels) in families {
        let accepted = fam.accepted();
        let found = on_rows.iter().filter(|(_, k)| accepted.contains(k)).count();
        let on_labelled_rows = on_rows
            .iter()
            .filter(|(l, k)| accepted.contains(k) && l.as_ref().is_some_and(|l| labels.contains(l)))
            .count();
        result.families.push(FamilyResult {
            family: fam.as_str().to_string(),
            labels: labels.into_iter().collect(),
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
            found,
            on_labelled_rows,
            // A finding of the family raised on some other (benign) row is
            // not a detection of the labelled traffic.
            flagged: on_labelled_rows > 0,
        });
    }

    let infected = rows.iter().any(|r| r.label == Label::Malicious);
    let mut reasons = Vec::new();
    if infected {
        for f in result.families.iter().filter(|f| !f.flagged) {
            reasons.push(if f.found > 0 {
                format!(
                    "no {} finding on its rows ({} on other rows)",
                    f.family, f.found
                )
            } else {
                format!("no {} finding", f.family)
            });
        }
        if result.families.is_empty() {
            reasons.push("malicious labels of no scored family".into());
        }
        // Not part of the verdict, but a false finding all the same.
        let on_benign = on_rows
            .iter()
            .filter(|(l, _)| l.as_deref() == Some("benign"))
            .count();
        if on_benign > 0 {
            reasons.push(format!("{on_benign} finding(s) on benign rows"));
        }
    } else if !mine.is_empty() {
        reasons.push(format!("{} finding(s) on a benign device", mine.len()));
    }
    if result.records_lost > 0 {
        reasons.push(format!("{} flow records lost", result.records_lost));
    }
    let met = if infected {
        !result.families.is_empty() && result.families.iter().all(|f| f.flagged)
    } else {
        mine.is_empty()
    };
    result.verdict = if met { "met" } else { "missed" }.into();
    result.reason = reasons.join("; ");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(dir: i8, start_ms: u64, end_ms: u64, octets: u64) -> Export {
        Export {
            rec: FlowRecord {
                src: Ipv4Addr::new(192, 168, 1, 2),
                dst: Ipv4Addr::new(198, 51, 100, 1),
                src_port: 1,
                dst_port: 2,
                proto: 6,
                tcp_flags: 0,
                octets,
                packets: octets / 100,
                start_ms,
                end_ms,
            },
            dir,
        }
    }

    #[test]
    fn usage_is_spread_over_each_flow() {
        let flows = [
            export(1, 0, 10_000, 1_000),
            export(1, 5_000, 5_000, 300),
            export(-1, 0, 20_000, 2_000),
            export(0, 0, 1, 7),
        ];
        let u = usage_at(&flows, 5_000);
        assert_eq!((u.up, u.up_pkts), (500 + 300, 5 + 3));
        assert_eq!((u.down, u.down_pkts), (500, 5));
        let u = usage_at(&flows, 30_000);
        assert_eq!((u.up, u.down), (1_300, 2_000));
        assert_eq!(usage_at(&flows[..1], 0).up, 0);
    }

    #[test]
    fn group_ids_are_slugs() {
        assert_eq!(
            group_id("CTU-Malware-Capture-44-1"),
            "iot23-ctu-malware-capture-44-1"
        );
        assert!(simguard_engine::inventory::validate_slug("group", &group_id("A b.C")).is_ok());
    }
}
