//! Detection: learns how each device and group behaves and raises
//! [`Finding`]s when something deviates. Part of the engine, so it runs in
//! event time and the same journal always gives the same findings.
//!
//! The detectors (each switchable per group, see [`crate::Detector`]):
//! - **declared**: the group's declared volume per day (uplink), reporting
//!   interval, active hours and RATs;
//! - **location**: serving country/network outside the allowed set, and
//!   impossible travel between consecutive countries;
//! - **baseline**: uplink per report against the device's own learned high
//!   (its cohort's until it has `warmup_reports`), with hour-of-day and
//!   day-of-week seasonality from the group; reports far more often than
//!   the learned rhythm;
//! - **cohort**: a device whose typical report is far above its group's;
//! - **destinations**: uplink to a destination its group never used after
//!   the group's learning period, except a completed TCP session to a new
//!   address of a service (provider prefix, port, protocol) the group
//!   already reaches on other networks: cloud services rotate addresses;
//! - **policy**: flows outside the group's firewall policy;
//! - **botnet**: scanning (fan-out, unanswered attempts, IoT ports), floods
//!   (UDP, SYN, ACK, GRE towards one target) and DNS water torture;
//! - **identity**: the IMEI/TAC changed against the bound or first-seen one,
//!   and IMSIs that are not provisioned;
//! - **connectivity**: silence past the expected interval, and flapping;
//! - **overload**: attaches per cell, network or APN far above baseline.
//!
//! Anomalous observations are not learned, so one spike cannot poison a
//! baseline. All state is bounded; see `state`, `group` and `load`.

mod group;
mod load;
mod options;
mod state;

pub use group::GroupDetect;
pub use load::{Load, LoadKind};
pub use options::DetectOptions;
pub use state::{dequantize, quantize, Burst, DeviceDetect};

use crate::device::{Device, Sym};
use crate::event::{AcctRecord, AcctStatus, FlowRecord};
use crate::finding::{
    Detector, Evidence, Fact, Finding, FindingKind, RecordRef, Severity, Subject,
};
use crate::ids::{fnv1a, Cell, Digits};
use crate::inventory::{Group, Lifecycle};
use crate::time::DAY_MS;
use crate::traffic::{hash_addr, tcp_attempt, FlowDirection, TrafficProfile};
use crate::Output;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Where findings go: the event's output list, with ids from the event's
/// journal sequence number.
pub struct Sink<'a> {
    pub seq: u64,
    pub index: &'a mut usize,
    pub out: &'a mut Vec<Output>,
}

impl Sink<'_> {
    pub fn emit(&mut self, mut f: Finding) {
        f.id = Finding::make_id(self.seq, *self.index);
        *self.index += 1;
        self.out.push(Output::Finding(Box::new(f)));
    }
}

/// What the device half of the flow detectors leaves for the group half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLocal {
    /// The device half raised a finding on this flow.
    pub raised: bool,
    /// No scan or flood has been raised in the device's current window.
    pub quiet: bool,
}

/// Tenant and group names of a device, for findings.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub tenant: Option<&'a str>,
    pub group: Option<&'a str>,
}

/// A finding before it has an id and a subject.
struct Draft {
    kind: FindingKind,
    severity: Severity,
    confidence: u8,
    onset: i64,
    summary: String,
    facts: Vec<Fact>,
    baseline: String,
    records: Vec<RecordRef>,
    flows: Vec<FlowRecord>,
}

impl Draft {
    fn new(kind: FindingKind, severity: Severity, confidence: u8, summary: String) -> Draft {
        Draft {
            kind,
            severity,
            confidence,
            onset: 0,
            summary,
            facts: Vec::new(),
            baseline: String::new(),
            records: Vec::new(),
            flows: Vec::new(),
        }
    }

    fn fact(mut self, name: &str, observed: impl ToString, expected: Option<String>) -> Draft {
        self.facts.push(Fact {
            name: name.to_string(),
            observed: observed.to_string(),
            expected,
        });
        self
    }

    /// The device's recent flows as evidence, newest first, leaving out
    /// the `later` newest (flows after this one); `f` if none is left.
    fn with_evidence(mut self, traffic: &TrafficProfile, later: u64, f: &FlowRecord) -> Draft {
        self.flows = traffic
            .recent_flows()
            .skip(usize::try_from(later).unwrap_or(usize::MAX))
            .take(Evidence::MAX_FLOWS)
            .map(|r| r.flow)
            .collect();
        if self.flows.is_empty() {
            self.flows.push(*f);
        }
        self
    }

    fn with_flow(mut self, f: &FlowRecord) -> Draft {
        self.flows.push(*f);
        self
    }

    fn baseline(mut self, b: impl Into<String>) -> Draft {
        self.baseline = b.into();
        self
    }

    fn finish(self, subject: Subject, names: Names<'_>, time: i64) -> Finding {
        Finding {
            id: 0,
            kind: self.kind,
            subject,
            tenant: names.tenant.map(str::to_string),
            group: names.group.map(str::to_string),
            severity: self.severity,
            time,
            onset: if self.onset == 0 { time } else { self.onset },
            confidence: self.confidence.min(100),
            evidence: Evidence {
                summary: self.summary,
                facts: self.facts,
                baseline: self.baseline,
                records: self.records,
                flows: self.flows,
            },
        }
    }
}

/// Human-readable byte counts for evidence.
pub fn bytes_text(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn duration_text(secs: u64) -> String {
    if secs >= 86_400 && secs % 3_600 == 0 || secs >= 172_800 {
        format!("{:.1} d", secs as f64 / 86_400.0)
    } else if secs >= 3_600 {
        format!("{:.1} h", secs as f64 / 3_600.0)
    } else if secs >= 120 {
        format!("{:.1} min", secs as f64 / 60.0)
    } else {
        format!("{secs} s")
    }
}

/// Quantized steps of a ratio given in percent (250 → log2(2.5) × 8).
fn ratio_steps(pct: u32) -> i32 {
    ((f64::from(pct) / 100.0).log2() * 8.0).round() as i32
}

fn acct_ref(seq: u64, r: &AcctRecord, up: u64) -> RecordRef {
    let mut detail = format!("session {} up +{}", r.session_id, bytes_text(up));
    if let Some(n) = r.network {
        detail.push_str(&format!(" network {n}"));
    }
    if let Some(i) = r.imeisv {
        detail.push_str(&format!(" imeisv {i}"));
    }
    if let Some(rat) = r.rat {
        detail.push_str(&format!(" rat {rat}"));
    }
    RecordRef {
        seq,
        time: r.time,
        what: r.status.as_str().to_string(),
        detail,
    }
}

fn tac_of(imei: Digits) -> Option<u32> {
    imei.prefix(8).map(|d| d.value() as u32)
}

pub fn cell_text(c: &Cell) -> String {
    format!("{}-{}-{}", c.plmn, c.area, c.id)
}

/// Uplink allowed per byte downloaded as acknowledgements, percent (TCP
/// ACKs of full-size segments cost 2-3% of the download).
const ACK_ALLOWANCE_PCT: u64 = 5;

/// Consecutive anomalous reports after which the new level is learned.
const RELEARN_AFTER: u8 = 8;

/// Networks and APNs carry many cells: their overload needs this many
/// times the cell minimum.
const WIDE_OVERLOAD_FACTOR: u32 = 10;

/// Average packet size below which an uplink flow is acknowledgements
/// (of a download), not data the device sends.
const MIN_DATA_PACKET_BYTES: u64 = 200;

/// A single flow this many times `ddos_min_pps` is a flood by itself.
const SINGLE_FLOW_FLOOD_FACTOR: u64 = 10;

/// Ports of bot command-and-control sessions (telnet, IRC, Mirai's report port).
const C2_PORTS: [u16; 5] = [23, 2323, 6667, 6697, 48101];

/// Attempts to one never-seen destination that make beaconing.
const BEACON_ATTEMPTS: u16 = 5;
/// ...within this long.
const BEACON_WINDOW_SECS: u32 = 3_600;

/// IoT services that Mirai-family bots scan for (telnet first).
const IOT_PORTS: [u16; 10] = [23, 2323, 22, 80, 8080, 81, 7547, 5555, 37215, 52869];

/// Engine-wide detection state.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Detection {
    /// Cohort state per group (by interned group id).
    groups: BTreeMap<Sym, GroupDetect>,
    /// Disabled detectors per group (bit mask of [`Detector::bit`]).
    disabled: BTreeMap<Sym, u16>,
    load: Load,
    /// Pending silence deadlines: (deadline, IMSI), one per device at most.
    pub(crate) silence: BTreeSet<(i64, Digits)>,
    /// Event time of the first accounting record (overload warm-up).
    first_event: i64,
    /// Accounting time: the newest accounting record or tick. Silence is
    /// judged against it, not against the engine clock, which flows also
    /// move: an exporter whose clock (or queue) runs ahead of the NAS must
    /// not make every device look silent.
    pub(crate) acct_clock: i64,
    pub findings: u64,
}

/// Everything the accounting detectors need about the record's device.
pub struct AcctCtx<'a> {
    pub record: &'a AcctRecord,
    /// Uplink and downlink bytes this record added to the device's usage.
    pub up: u64,
    pub down: u64,
    /// The group the device belongs to, if provisioned.
    pub group: Option<(Sym, &'a Group)>,
    pub bound_imei: Option<Digits>,
    pub names: Names<'a>,
    pub apn: Option<Sym>,
    /// The record is the first seen of a session that started earlier
    /// (simguard started, or missed the Start): its counters cover an
    /// unknown span, so they say nothing about a report or a day.
    pub picked_up: bool,
}

impl Detection {
    pub fn set_disabled(&mut self, group: Sym, detectors: &[Detector]) {
        let mask = detectors.iter().fold(0u16, |m, d| m | d.bit());
        if mask == 0 {
            self.disabled.remove(&group);
        } else {
            self.disabled.insert(group, mask);
        }
    }

    fn enabled(&self, group: Option<Sym>, d: Detector) -> bool {
        group
            .and_then(|g| self.disabled.get(&g))
            .is_none_or(|m| m & d.bit() == 0)
    }

    pub fn load_keys(&self) -> usize {
        self.load.len()
    }

    pub fn group_state(&self, group: Sym) -> Option<&GroupDetect> {
        self.groups.get(&group)
    }

    /// An IMSI that is not in the inventory was seen.
    pub fn on_unprovisioned(&mut self, sink: &mut Sink<'_>, r: &AcctRecord, seq: u64) {
        let mut d = Draft::new(
            FindingKind::Unprovisioned,
            Severity::Major,
            95,
            format!(
                "IMSI {} is using the network but is not provisioned",
                r.imsi
            ),
        )
        .fact("imsi", r.imsi, Some("a provisioned SIM".into()))
        .baseline("inventory");
        d.records.push(acct_ref(seq, r, 0));
        self.findings += 1;
        sink.emit(d.finish(
            Subject::Device(r.imsi),
            Names {
                tenant: None,
                group: None,
            },
            r.time,
        ));
    }

    /// Runs the accounting detectors on one applied record.
    pub fn on_accounting(
        &mut self,
        opts: &DetectOptions,
        sink: &mut Sink<'_>,
        dev: &mut Device,
        cx: &AcctCtx<'_>,
    ) {
        let r = cx.record;
        if self.first_event == 0 {
            self.first_event = r.time;
        }
        self.acct_clock = self.acct_clock.max(r.time);
        let gsym = cx.group.map(|(s, _)| s);
        let on = |d: Detector| self.enabled(gsym, d);
        let (declared_on, location_on, baseline_on, cohort_on, identity_on, conn_on, load_on) = (
            on(Detector::Declared),
            on(Detector::Location),
            on(Detector::Baseline),
            on(Detector::Cohort),
            on(Detector::Identity),
            on(Detector::Connectivity),
            on(Detector::Overload),
        );
        let profile = cx.group.map(|(_, g)| &g.profile);
        let mut drafts: Vec<Draft> = Vec::new();
        let st = dev.detect.get_or_insert_with(Default::default);
        let mut gd = gsym.map(|g| self.groups.entry(g).or_default());
        let cool = opts.cooldown_secs;

        // ---- identity ----
        if let (Some(imei), Some(tac)) = (r.imeisv, r.imeisv.and_then(tac_of)) {
            let reference = cx.bound_imei.or(st.first_imei);
            if st.first_imei.is_none() {
                st.first_imei = Some(imei);
                if let Some(g) = gd.as_deref_mut() {
                    g.add_tac(tac);
                }
            }
            if let Some(reference) = reference {
                let rtac = tac_of(reference);
                if rtac != Some(tac) {
                    let known = gd
                        .as_deref()
                        .is_some_and(|g| g.tacs.get(&tac).copied().unwrap_or(0) > 0);
                    if identity_on && st.allow(FindingKind::SimSwap, r.time, 86_400) {
                        let (sev, conf, what) = if known {
                            (
                                Severity::Minor,
                                60,
                                "a model other devices of its group use (module swap?)",
                            )
                        } else {
                            (
                                Severity::Critical,
                                90,
                                "a kind of device its group has never used",
                            )
                        };
                        let d = Draft::new(
                            FindingKind::SimSwap,
                            sev,
                            conf,
                            format!(
                                "SIM now in a device with TAC {tac:08}, {what}; expected TAC {:08}",
                                rtac.unwrap_or(0)
                            ),
                        )
                        .fact("imeisv", imei, Some(reference.to_string()))
                        .fact("tac", format!("{tac:08}"), rtac.map(|t| format!("{t:08}")))
                        .baseline(if cx.bound_imei.is_some() {
                            "bound IMEI"
                        } else {
                            "first-seen IMEI"
                        });
                        drafts.push(d);
                    }
                } else if cx.bound_imei.is_some()
                    && imei.prefix(14) != reference.prefix(14)
                    && profile.is_some_and(|p| p.imei_lock)
                    && identity_on
                    && st.allow(FindingKind::SimSwap, r.time, 86_400)
                {
                    drafts.push(
                        Draft::new(
                            FindingKind::SimSwap,
                            Severity::Major,
                            75,
                            "SIM moved to another unit of the same model, against its IMEI lock"
                                .into(),
                        )
                        .fact("imeisv", imei, Some(reference.to_string()))
                        .baseline("bound IMEI (IMEI lock)"),
                    );
                }
            }
        }

        // ---- location ----
        if let Some(net) = r.network {
            let iso = net.country();
            if let (Some(p), true) = (profile, location_on) {
                let country_bad = !p.allowed_countries.is_empty()
                    && iso.is_none_or(|c| {
                        !p.allowed_countries
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(c))
                    });
                let network_bad =
                    !p.allowed_networks.is_empty() && !p.allowed_networks.contains(&net);
                if (country_bad || network_bad) && st.allow(FindingKind::Roaming, r.time, cool * 6)
                {
                    drafts.push(
                        Draft::new(
                            FindingKind::Roaming,
                            Severity::Major,
                            90,
                            format!(
                                "serving network {net} ({}) is outside the allowed {}",
                                iso.unwrap_or("unknown country"),
                                if country_bad { "countries" } else { "networks" }
                            ),
                        )
                        .fact("network", net, None)
                        .fact(
                            "country",
                            iso.unwrap_or("?"),
                            Some(p.allowed_countries.join(",")),
                        )
                        .baseline("declared profile: allowed countries and networks"),
                    );
                }
            }
            if let Some(iso) = iso {
                let code = [iso.as_bytes()[0], iso.as_bytes()[1]];
                if r.time >= st.country_time {
                    if let Some(prev) = st.country.filter(|p| *p != code) {
                        let prev_iso = String::from_utf8_lossy(&prev).into_owned();
                        if let (Some(a), Some(b)) =
                            (crate::geo::centroid(&prev_iso), crate::geo::centroid(iso))
                        {
                            let km = crate::geo::distance_km(a, b);
                            let hours = ((r.time - st.country_time) as f64 / 3.6e6).max(1.0 / 60.0);
                            let beyond = km - f64::from(opts.travel_slack_km);
                            let speed = beyond / hours;
                            if beyond > 0.0
                                && speed > f64::from(opts.travel_max_kmh)
                                && location_on
                                && st.allow(FindingKind::ImpossibleTravel, r.time, cool)
                            {
                                let mut d = Draft::new(
                                    FindingKind::ImpossibleTravel,
                                    Severity::Major,
                                    80,
                                    format!(
                                        "moved {prev_iso} → {iso} ({km:.0} km) in {}: at least {:.0} km/h",
                                        duration_text(((r.time - st.country_time) / 1000) as u64),
                                        speed
                                    ),
                                )
                                .fact("from", &prev_iso, None)
                                .fact("to", iso, None)
                                .fact("speed_kmh", format!("{speed:.0}"), Some(format!("at most {}", opts.travel_max_kmh)))
                                .baseline("country centroids, minus the slack for border distance");
                                d.onset = st.country_time;
                                drafts.push(d);
                            }
                        }
                    }
                    st.country = Some(code);
                    st.country_time = r.time;
                }
            }
        }
        if let (Some(p), Some(rat)) = (profile, r.rat) {
            if declared_on
                && !p.allowed_rats.is_empty()
                && !p.allowed_rats.contains(&rat)
                && st.allow(FindingKind::DisallowedRat, r.time, cool * 6)
            {
                drafts.push(
                    Draft::new(
                        FindingKind::DisallowedRat,
                        Severity::Minor,
                        90,
                        format!(
                            "radio access type {rat} is not among the group's allowed {:?}",
                            p.allowed_rats
                        ),
                    )
                    .fact("rat", rat, Some(format!("{:?}", p.allowed_rats)))
                    .baseline("declared profile: allowed RATs"),
                );
            }
        }

        // ---- volume ----
        // What the device sent of its own: the uplink minus the
        // acknowledgements its downloads cost (a firmware update's ACKs are
        // not the device talking).
        let own_up = if cx.picked_up {
            0
        } else {
            cx.up
                .saturating_sub(cx.down.saturating_mul(ACK_ALLOWANCE_PCT) / 100)
        };
        // A device that is reconnecting over and over sends partial
        // reports: nothing to learn a normal level from.
        let flapping = st
            .starts_since(((r.time / 1000).max(0) as u32).saturating_sub(opts.flap_window_secs))
            + 1
            >= opts.flap_starts as usize;
        if own_up > 0 {
            let day = r.time.div_euclid(DAY_MS) as i32;
            if day > st.day {
                st.day = day;
                st.day_up = 0;
            }
            if day == st.day {
                st.day_up += own_up;
            }
            if let Some(max) = profile.and_then(|p| p.max_bytes_per_day) {
                if declared_on
                    && st.day_up > max
                    && day == st.day
                    && st.allow(FindingKind::DeclaredVolume, r.time, 86_400)
                {
                    let sev = if st.day_up > max.saturating_mul(10) {
                        Severity::Critical
                    } else {
                        Severity::Major
                    };
                    drafts.push(
                        Draft::new(
                            FindingKind::DeclaredVolume,
                            sev,
                            95,
                            format!(
                                "sent {} today (UTC), declared at most {} per day",
                                bytes_text(st.day_up),
                                bytes_text(max)
                            ),
                        )
                        .fact("uplink_today", bytes_text(st.day_up), Some(bytes_text(max)))
                        .baseline("declared profile: bytes per day"),
                    );
                }
            }
            let q = quantize(own_up);
            let season = gd.as_deref().map_or(0, |g| g.seasonal_offset(r.time, 50));
            let warm = st.volumes.len() >= opts.warmup_reports as usize;
            let expected = if warm {
                st.volumes.quantile(90).map(|h| {
                    (
                        h,
                        format!(
                            "learned baseline of this device ({} reports)",
                            st.volumes.len()
                        ),
                    )
                })
            } else {
                gd.as_deref()
                    .filter(|g| g.reports() >= opts.cohort_min_reports)
                    .and_then(|g| {
                        g.p95().map(|h| {
                            (
                                h,
                                format!("cohort baseline of its group ({} reports)", g.reports()),
                            )
                        })
                    })
            };
            let mut anomalous = false;
            if let Some((high, basis)) = expected {
                let threshold =
                    i32::from(high) + season.max(0) + ratio_steps(opts.volume_factor_pct);
                // Uplink that rides on a much larger download is its
                // acknowledgements (a firmware update), not the device talking.
                if i32::from(q) > threshold && own_up >= opts.volume_min_bytes {
                    anomalous = true;
                    if baseline_on && st.allow(FindingKind::VolumeAnomaly, r.time, cool) {
                        let high_b = state::dequantize(high);
                        let ratio = own_up as f64 / high_b.max(1) as f64;
                        let sev = if ratio >= 50.0 {
                            Severity::Critical
                        } else {
                            Severity::Major
                        };
                        let mut d = Draft::new(
                            FindingKind::VolumeAnomaly,
                            sev,
                            if warm { 85 } else { 70 },
                            format!(
                                "sent {} in one report, {ratio:.0}x its usual high of {}",
                                bytes_text(own_up),
                                bytes_text(high_b)
                            ),
                        )
                        .fact(
                            "uplink_per_report",
                            bytes_text(own_up),
                            Some(format!("at most {}", bytes_text(high_b))),
                        )
                        .baseline(basis);
                        if season != 0 {
                            d = d.fact("seasonal_offset_steps", season, None);
                        }
                        d.records.push(acct_ref(sink.seq, r, cx.up));
                        drafts.push(d);
                    }
                }
            }
            // An anomaly is not learned once the device has a baseline of its
            // own (one spike must not poison it). Before that, a device that
            // merely differs from its cohort still learns its own level.
            // A lasting change of level is learned after a run of anomalies
            // (it was reported once; reporting it every hour helps no one).
            st.anomaly_run = if anomalous {
                st.anomaly_run.saturating_add(1)
            } else {
                0
            };
            let relearn = st.anomaly_run >= RELEARN_AFTER;
            if (!anomalous || !warm || relearn) && !flapping {
                st.volumes.push(q);
            }
            if !anomalous && !flapping {
                if let Some(g) = gd.as_deref_mut() {
                    g.observe_volume(q, r.time);
                }
            }
            // Cohort: is this device's typical report unlike its group's?
            if let Some(g) = gd.as_deref() {
                if cohort_on && warm && g.reports() >= opts.cohort_min_reports {
                    if let (Some(m), Some(p90)) = (st.volumes.quantile(50), g.p90()) {
                        if i32::from(m) > i32::from(p90) + ratio_steps(opts.cohort_factor_pct)
                            && st.allow(FindingKind::CohortOutlier, r.time, 86_400)
                        {
                            drafts.push(
                                Draft::new(
                                    FindingKind::CohortOutlier,
                                    Severity::Minor,
                                    70,
                                    format!(
                                        "typical report of {} is far above its group's 90th percentile of {}",
                                        bytes_text(state::dequantize(m)),
                                        bytes_text(state::dequantize(p90))
                                    ),
                                )
                                .fact("median_report", bytes_text(state::dequantize(m)), Some(bytes_text(state::dequantize(p90))))
                                .baseline(format!("cohort of its group ({} reports)", g.reports())),
                            );
                        }
                    }
                }
            }
            // Active hours (declared, UTC).
            if let Some((from, to)) = profile.and_then(|p| p.active_hours) {
                let minute = r.time.div_euclid(60_000).rem_euclid(1_440) as i32;
                let slack = opts.active_hours_slack_mins as i32;
                // Minutes since the window opened (slack included), modulo a day.
                let since_open = (minute - i32::from(from) * 60 + slack).rem_euclid(1_440);
                let length =
                    i32::from(to).wrapping_sub(i32::from(from)).rem_euclid(24) * 60 + 2 * slack;
                let inside = |_: i32| length >= 1_440 || since_open < length;
                if from != to
                    && !inside(minute)
                    && declared_on
                    && st.allow(FindingKind::ActiveHours, r.time, 86_400)
                {
                    drafts.push(
                        Draft::new(
                            FindingKind::ActiveHours,
                            Severity::Warning,
                            70,
                            format!("traffic at {:02}:{:02} UTC, declared active {from:02}:00–{to:02}:00", minute / 60, minute % 60),
                        )
                        .fact("time_utc", format!("{:02}:{:02}", minute / 60, minute % 60), Some(format!("{from:02}:00–{to:02}:00")))
                        .baseline("declared profile: active hours"),
                    );
                }
            }
        }

        // ---- rhythm, flapping ----
        let late = r.time < st.last_report;
        if matches!(r.status, AcctStatus::Start | AcctStatus::Interim) && !late {
            let secs = (r.time / 1000).clamp(1, i64::from(u32::MAX)) as u32;
            let ivl = (st.last_report > 0).then(|| (r.time - st.last_report) / 1000);
            st.push_report(secs);
            if r.status == AcctStatus::Start {
                st.push_start(secs);
                let n = st.starts_since(secs.saturating_sub(opts.flap_window_secs));
                if n >= opts.flap_starts as usize
                    && conn_on
                    && st.allow(FindingKind::Flapping, r.time, cool)
                {
                    let mut d = Draft::new(
                        FindingKind::Flapping,
                        Severity::Minor,
                        85,
                        format!(
                            "{n} session starts within {}",
                            duration_text(u64::from(opts.flap_window_secs))
                        ),
                    )
                    .fact(
                        "session_starts",
                        n,
                        Some(format!("fewer than {}", opts.flap_starts)),
                    )
                    .baseline("connectivity: reconnect rate");
                    d.records.push(acct_ref(sink.seq, r, cx.up));
                    drafts.push(d);
                }
            }
            let declared = profile.and_then(|p| p.report_interval_secs);
            let learned = (st.intervals.len() >= opts.warmup_reports as usize)
                .then(|| st.intervals.quantile(50))
                .flatten()
                .map(|q| state::dequantize(q) as u32);
            let expected = declared.or(learned);
            let mut fast = false;
            if let (Some(span), Some(e)) = (st.report_span(), expected) {
                let n = (state::REPORTS - 1) as u64;
                if u64::from(span) * u64::from(opts.rhythm_factor) < n * u64::from(e) {
                    fast = true;
                    let kind = if declared.is_some() {
                        FindingKind::DeclaredRhythm
                    } else {
                        FindingKind::RhythmAnomaly
                    };
                    let on = if declared.is_some() {
                        declared_on
                    } else {
                        baseline_on
                    };
                    if on && st.allow(kind, r.time, cool) {
                        let every = u64::from(span) / n;
                        let mut d = Draft::new(
                            kind,
                            Severity::Major,
                            85,
                            format!(
                                "reports every {} on average, expected every {}",
                                duration_text(every),
                                duration_text(u64::from(e))
                            ),
                        )
                        .fact(
                            "interval",
                            duration_text(every),
                            Some(duration_text(u64::from(e))),
                        )
                        .baseline(if declared.is_some() {
                            "declared profile: reporting interval".to_string()
                        } else {
                            format!("learned rhythm ({} intervals)", st.intervals.len())
                        });
                        d.onset = st
                            .reports
                            .iter()
                            .min()
                            .map_or(r.time, |&s| i64::from(s) * 1000);
                        d.records.push(acct_ref(sink.seq, r, cx.up));
                        drafts.push(d);
                    }
                }
            }
            if let Some(i) = ivl.filter(|&i| i > 0 && !fast) {
                st.intervals.push(quantize(i as u64));
            }
            st.last_report = r.time;
        }

        // ---- silence: arm the deadline ----
        if r.time >= st.last_heard {
            st.last_heard = r.time;
            let declared = profile.and_then(|p| p.report_interval_secs);
            let learned = (st.intervals.len() >= opts.warmup_reports as usize)
                .then(|| st.intervals.quantile(50))
                .flatten()
                .map(|q| state::dequantize(q) as u32);
            if let Some(e) = declared.or(learned) {
                let wait = i64::from(e) * 1000 * i64::from(opts.silent_factor_pct) / 100
                    + i64::from(opts.silent_grace_secs) * 1000;
                st.silent_deadline = r.time + wait;
                st.silent_reported = false;
                if !st.silent_armed {
                    st.silent_armed = true;
                    self.silence.insert((st.silent_deadline, dev.imsi));
                }
            }
        }

        // ---- overload ----
        if r.status == AcctStatus::Start && load_on {
            let judge = r.time - self.first_event >= i64::from(opts.overload_warmup_secs) * 1000;
            let window = i64::from(opts.overload_window_secs) * 1000;
            let mut keys: Vec<(LoadKind, u64, Subject)> = Vec::with_capacity(3);
            if let Some(c) = r.cell {
                let t = cell_text(&c);
                keys.push((LoadKind::Cell, fnv1a(&[t.as_bytes()]), Subject::Cell(t)));
            }
            if let Some(n) = r.network {
                keys.push((
                    LoadKind::Network,
                    u64::from(n.mcc) << 16 | u64::from(n.mnc),
                    Subject::Network(n.to_string()),
                ));
            }
            if let (Some(a), Some(apn)) = (cx.apn, r.apn.as_deref()) {
                keys.push((LoadKind::Apn, u64::from(a), Subject::Apn(apn.to_string())));
            }
            for (kind, key, subject) in keys {
                let min = if kind == LoadKind::Cell {
                    opts.overload_min_attaches
                } else {
                    opts.overload_min_attaches
                        .saturating_mul(WIDE_OVERLOAD_FACTOR)
                };
                if let Some(o) =
                    self.load
                        .attach(kind, key, r.time, window, min, opts.overload_factor, judge)
                {
                    let base = o
                        .baseline
                        .map_or("no history".to_string(), |b| format!("{b:.1} per window"));
                    let d = Draft::new(
                        FindingKind::Overload,
                        Severity::Major,
                        75,
                        format!(
                            "{} attaches within {} on {}, baseline {base}",
                            o.count,
                            duration_text(u64::from(opts.overload_window_secs)),
                            match &subject {
                                Subject::Cell(c) => format!("cell {c}"),
                                Subject::Network(n) => format!("network {n}"),
                                Subject::Apn(a) => format!("APN {a}"),
                                Subject::Device(d) => d.to_string(),
                            }
                        ),
                    )
                    .fact("attaches", o.count, Some(base.clone()))
                    .baseline("attach rate of this key");
                    self.findings += 1;
                    let onset = r.time.div_euclid(window) * window;
                    let mut f = d.finish(
                        subject,
                        Names {
                            tenant: None,
                            group: None,
                        },
                        r.time,
                    );
                    f.onset = onset;
                    sink.emit(f);
                }
            }
        }

        let imsi = dev.imsi;
        for mut d in drafts {
            if d.records.is_empty() {
                d.records.push(acct_ref(sink.seq, r, cx.up));
            }
            self.findings += 1;
            sink.emit(d.finish(Subject::Device(imsi), cx.names, r.time));
        }
    }

    /// Fires silence deadlines at or before `now`.
    pub(crate) fn due_silence(&mut self, now: i64) -> Vec<(i64, Digits)> {
        let mut due = Vec::new();
        while let Some(&(t, imsi)) = self.silence.first() {
            if t > now {
                break;
            }
            self.silence.pop_first();
            due.push((t, imsi));
        }
        due
    }

    /// A silence deadline fired for `dev`; re-arms it when it moved.
    pub(crate) fn on_silence(
        &mut self,
        opts: &DetectOptions,
        sink: &mut Sink<'_>,
        dev: &mut Device,
        group: Option<Sym>,
        names: Names<'_>,
        now: i64,
    ) {
        let enabled = self.enabled(group, Detector::Connectivity);
        let active = dev.lifecycle().is_none_or(|l| l == Lifecycle::Active);
        let imsi = dev.imsi;
        let Some(st) = dev.detect.as_deref_mut() else {
            return;
        };
        if st.silent_deadline > now {
            self.silence.insert((st.silent_deadline, imsi));
            return;
        }
        st.silent_armed = false;
        if st.silent_reported || st.silent_deadline == 0 || !enabled || !active {
            return;
        }
        st.silent_reported = true;
        let silent_for = (now - st.last_heard) / 1000;
        let expected = (st.silent_deadline - st.last_heard) / 1000;
        let _ = opts;
        let mut d = Draft::new(
            FindingKind::Silent,
            Severity::Major,
            80,
            format!(
                "no record for {}, expected within {}",
                duration_text(silent_for.max(0) as u64),
                duration_text(expected.max(0) as u64)
            ),
        )
        .fact("last_heard", crate::time::rfc3339(st.last_heard), None)
        .baseline("expected reporting interval (declared, else learned), with grace");
        d.onset = st.last_heard;
        self.findings += 1;
        sink.emit(d.finish(Subject::Device(imsi), names, st.silent_deadline.min(now)));
    }

    /// The device half of the flow detectors, on one attributed flow (after
    /// the device's traffic profile took it): scanning, floods, C2 sessions
    /// and DNS water torture, which read and write only this device's state.
    /// `emit` gets the findings (without ids), in the order they are raised.
    /// Returns what the group half ([`Detection::on_flow_group`]) needs, for
    /// uplink flows. Shared state is only read, so the engine runs this for
    /// different partitions on different threads. Cheap unless a threshold
    /// is crossed.
    #[allow(clippy::too_many_arguments)]
    pub fn on_flow_device(
        &self,
        opts: &DetectOptions,
        emit: &mut dyn FnMut(Finding),
        imsi: Digits,
        st: &mut DeviceDetect,
        traffic: &TrafficProfile,
        group: Option<Sym>,
        names: impl Fn() -> (Option<String>, Option<String>),
        f: &FlowRecord,
        dir: FlowDirection,
        time: i64,
    ) -> Option<FlowLocal> {
        if dir != FlowDirection::Up {
            return None;
        }
        let (remote, port) = dir.remote(f);
        let window = i64::from(opts.burst_window_secs) * 1000;
        let b = st.burst.get_or_insert_with(Default::default);
        if time >= b.start + window {
            b.reset(time.div_euclid(window) * window);
        }
        b.flows += 1;
        b.packets += f.packets;
        b.bytes += f.bytes;
        let h = hash_addr(remote);
        b.remotes.insert_hash(h);
        b.ports.insert_port(port);
        if h == b.target {
            b.target_votes += f.packets;
            b.target_packets += f.packets;
        } else if b.target_votes <= f.packets {
            b.target = h;
            b.target_votes = f.packets;
            b.target_packets = f.packets;
        } else {
            b.target_votes -= f.packets;
        }
        match f.proto {
            6 => {
                let (attempt, unanswered) = tcp_attempt(f, dir);
                if attempt {
                    b.attempts += 1;
                    b.unanswered += u32::from(unanswered);
                    if IOT_PORTS.contains(&port) {
                        b.iot_attempts += 1;
                    }
                    b.syn += f.packets;
                } else if f.tcp_flags & 0x10 != 0 && f.tcp_flags & 0x02 == 0 {
                    b.ack += f.packets;
                }
            }
            17 => {
                b.udp += f.packets;
                if port == 53 {
                    b.dns += 1;
                    b.resolvers.insert_hash(h);
                }
            }
            47 => b.gre += f.packets,
            _ => {}
        }
        let botnet = self.enabled(group, Detector::Botnet);
        let secs = u64::from(opts.burst_window_secs);
        let mut drafts = Vec::new();

        // Scanning: many destinations, mostly unanswered attempts.
        if b.raised & Burst::SCAN == 0 && b.attempts >= opts.scan_min_destinations {
            let fanout = b.remotes.estimate();
            let unanswered_pct = u64::from(b.unanswered) * 100 / u64::from(b.attempts.max(1));
            if fanout >= f64::from(opts.scan_min_destinations)
                && unanswered_pct >= u64::from(opts.scan_unanswered_pct)
            {
                b.raised |= Burst::SCAN;
                let b = b.clone();
                if botnet && st.allow(FindingKind::Scanning, time, opts.cooldown_secs) {
                    let iot_pct = u64::from(b.iot_attempts) * 100 / u64::from(b.attempts.max(1));
                    let sev = if iot_pct >= 50 {
                        Severity::Critical
                    } else {
                        Severity::Major
                    };
                    let mut d = Draft::new(
                        FindingKind::Scanning,
                        sev,
                        if iot_pct >= 50 { 95 } else { 80 },
                        format!(
                            "{} connection attempts to ~{fanout:.0} addresses in {}, {unanswered_pct}% unanswered, {iot_pct}% to telnet/IoT ports",
                            b.attempts,
                            duration_text(secs)
                        ),
                    )
                    .fact("distinct_destinations", format!("{fanout:.0}"), Some(format!("fewer than {}", opts.scan_min_destinations)))
                    .fact("unanswered_pct", unanswered_pct, Some(format!("below {}", opts.scan_unanswered_pct)))
                    .fact("iot_port_pct", iot_pct, None)
                    .baseline("botnet heuristics (Mirai: telnet 23/2323 fan-out, SYN-only)");
                    d.onset = b.start;
                    drafts.push(d);
                }
            }
        }
        let b = st.burst.get_or_insert_with(Default::default);
        // Floods: many packets to one target.
        if b.raised & Burst::DDOS == 0 && b.packets >= u64::from(opts.ddos_min_pps) * secs {
            let share = b.target_packets * 100 / b.packets.max(1);
            let ports = b.ports.estimate();
            let vectors = [
                ("udp", b.udp),
                ("syn", b.syn),
                ("ack", b.ack),
                ("gre", b.gre),
            ];
            let (vector, vp) = vectors
                .iter()
                .copied()
                .max_by_key(|v| v.1)
                .unwrap_or(("udp", 0));
            let shaped = vector == "gre" || ports >= f64::from(opts.ddos_min_ports);
            if share >= u64::from(opts.ddos_target_share_pct) && shaped && vp * 2 >= b.packets {
                b.raised |= Burst::DDOS;
                let b = b.clone();
                if botnet && st.allow(FindingKind::Ddos, time, opts.cooldown_secs) {
                    let pps = b.packets / secs.max(1);
                    let mut d = Draft::new(
                        FindingKind::Ddos,
                        Severity::Critical,
                        90,
                        format!(
                            "{vector} flood: {pps} packets/s, {share}% to one target, ~{ports:.0} destination ports"
                        ),
                    )
                    .fact("vector", vector, None)
                    .fact("packets_per_second", pps, Some(format!("below {}", opts.ddos_min_pps)))
                    .fact("target_share_pct", share, None)
                    .fact("target", remote, None)
                    .baseline("botnet heuristics (Mirai attack vectors)");
                    d.onset = b.start;
                    drafts.push(d);
                }
            }
        }
        // A single flow that is a flood on its own (Mirai's "UDP plain":
        // kernel sockets, one fixed port, the highest packet rate): far
        // beyond any device's stream, whatever its ports.
        let b = st.burst.get_or_insert_with(Default::default);
        let flow_ms = (f.end - f.start).max(1_000) as u64;
        let flow_pps = f.packets.saturating_mul(1_000) / flow_ms;
        if b.raised & Burst::DDOS == 0
            && flow_pps >= u64::from(opts.ddos_min_pps) * SINGLE_FLOW_FLOOD_FACTOR
        {
            b.raised |= Burst::DDOS;
            if botnet && st.allow(FindingKind::Ddos, time, opts.cooldown_secs) {
                let vector = match (f.proto, f.tcp_flags & 0x12) {
                    (47, _) => "gre",
                    (6, 0x02) => "syn",
                    (6, _) => "ack",
                    _ => "udp",
                };
                let mut d = Draft::new(
                    FindingKind::Ddos,
                    Severity::Critical,
                    85,
                    format!(
                        "{vector} flood: one flow of {flow_pps} packets/s ({}) to {remote} port {port}",
                        bytes_text(f.bytes)
                    ),
                )
                .fact("vector", vector, None)
                .fact(
                    "packets_per_second",
                    flow_pps,
                    Some(format!(
                        "below {}",
                        u64::from(opts.ddos_min_pps) * SINGLE_FLOW_FLOOD_FACTOR
                    )),
                )
                .fact("target", remote, None)
                .baseline("botnet heuristics (Mirai attack vectors: UDP plain)");
                d.onset = f.start.max(0);
                drafts.push(d);
            }
        }
        // Command and control: the device holds a TCP session to a
        // telnet or IRC port. IoT devices do not log in anywhere by telnet;
        // Mirai's bots keep their C2 session on 23, IoT-23's on 6667.
        if f.proto == 6
            && C2_PORTS.contains(&port)
            && (f.tcp_flags & 0x12 == 0x12 || f.end - f.start >= 60_000)
            && f.packets > 2
            && botnet
            && st.allow(FindingKind::CommandAndControl, time, opts.cooldown_secs)
        {
            let mut d = Draft::new(
                FindingKind::CommandAndControl,
                Severity::Critical,
                80,
                format!(
                    "TCP session to {remote} port {port} for {} ({} packets): a bot's command-and-control channel",
                    duration_text(((f.end - f.start) / 1000).max(0) as u64),
                    f.packets
                ),
            )
            .fact("remote", format!("{remote}:{port}/tcp"), Some("no telnet/IRC sessions from an IoT device".into()))
            .baseline("botnet heuristics (Mirai C2 on 23, IRC on 6667, scan reports on 48101)");
            d.onset = f.start.max(0);
            drafts.push(d);
        }
        let b = st.burst.get_or_insert_with(Default::default);
        // DNS water torture: a query flood to resolvers.
        if b.raised & Burst::DNS == 0 && u64::from(b.dns) >= u64::from(opts.dns_min_qps) * secs {
            let resolvers = b.resolvers.estimate();
            if resolvers <= 4.5 {
                b.raised |= Burst::DNS;
                let b = b.clone();
                if botnet && st.allow(FindingKind::DnsWaterTorture, time, opts.cooldown_secs) {
                    let qps = u64::from(b.dns) / secs.max(1);
                    let mut d = Draft::new(
                        FindingKind::DnsWaterTorture,
                        Severity::Critical,
                        85,
                        format!("{qps} DNS queries/s to {resolvers:.0} resolver(s)"),
                    )
                    .fact("queries_per_second", qps, Some(format!("below {}", opts.dns_min_qps)))
                    .fact("resolver", remote, None)
                    .baseline("botnet heuristics (DNS water torture: unique subdomains via public resolvers)");
                    d.onset = b.start;
                    drafts.push(d);
                }
            }
        }

        let raised = !drafts.is_empty();
        if raised {
            let (tenant, group_name) = names();
            let names = Names {
                tenant: tenant.as_deref(),
                group: group_name.as_deref(),
            };
            for d in drafts {
                emit(
                    d.with_evidence(traffic, 0, f)
                        .finish(Subject::Device(imsi), names, time),
                );
            }
        }
        Some(FlowLocal {
            raised,
            quiet: st.burst.as_ref().is_none_or(|b| b.raised == 0),
        })
    }

    /// The group half of the flow detectors, run after
    /// [`Detection::on_flow_device`] for each uplink flow of a device in a
    /// group, in journal order: new destinations and beacons against what
    /// the group learned, and the learning itself. It touches the device
    /// (`st`, `traffic`) only when a destination is new to the group, so the
    /// common case costs a lookup in the group's sets. `flows_at` is the
    /// profile's flow count just after this flow: the device half of later
    /// flows may have run already, and the evidence skips them.
    #[allow(clippy::too_many_arguments)]
    pub fn on_flow_group(
        &mut self,
        opts: &DetectOptions,
        sink: &mut Sink<'_>,
        imsi: Digits,
        gs: Sym,
        st: &mut Option<Box<DeviceDetect>>,
        traffic: &Option<Box<TrafficProfile>>,
        flows_at: u64,
        local: FlowLocal,
        names: impl Fn() -> (Option<String>, Option<String>),
        f: &FlowRecord,
        dir: FlowDirection,
        time: i64,
    ) {
        let (remote, port) = dir.remote(f);
        let mut drafts: Vec<Draft> = Vec::new();
        let dest_on = self.enabled(Some(gs), Detector::Destinations);
        {
            let g = self.groups.entry(gs).or_default();
            if g.first_flow == 0 {
                g.first_flow = time;
            }
            let key = dest_key(remote);
            let learning = time < g.first_flow + i64::from(opts.destinations_warmup_secs) * 1000;
            // A TCP session the device completed (its SYN and its ACK in one
            // flow): the remote answered, so this is a service, not a
            // beacon into the void. Continuations of long sessions (no SYN)
            // are not counted: they add no new network.
            let attempt = tcp_attempt(f, dir);
            let completed = attempt == (true, false);
            // Only completed sessions use the service (its key hashes 24 bytes).
            let service = if completed {
                service_key(remote, port, f.proto, opts)
            } else {
                0
            };
            // Read before this flow's learning; only used after the learning period.
            let known = g.destinations.0.contains(&key);
            // A new network of a service the group already reaches on
            // other networks of the same provider prefix, same port and
            // protocol: cloud services rotate their addresses (the IoT-23
            // Echo's Amazon endpoints). Only completed sessions qualify;
            // unanswered attempts stay beacon candidates below.
            let known_service = completed
                && opts.known_service_min_networks > 0
                && g.service_networks_besides(service, key)
                    >= opts.known_service_min_networks as usize;
            if learning {
                g.learn_destination(key);
                if completed {
                    g.learn_service(service, key);
                }
            } else if attempt == (true, true) && !known && dest_on {
                // Beaconing: repeated TCP connection attempts that nobody
                // answers, to the same never-seen destination (a bot polling
                // its C2, retried SYNs). Answered sessions are judged by the
                // data they carry (below); UDP is left out because devices
                // ask DNS and NTP servers again and again, and pools rotate.
                let now_s = (time / 1000).clamp(0, i64::from(u32::MAX)) as u32;
                let st = st.get_or_insert_with(Default::default);
                let c = &mut st.burst.get_or_insert_with(Default::default).beacon;
                if c.key == key && now_s.saturating_sub(c.first) <= BEACON_WINDOW_SECS {
                    c.count = c.count.saturating_add(1);
                } else if c.count < 2 || now_s.saturating_sub(c.first) > BEACON_WINDOW_SECS {
                    *c = state::Beacon {
                        key,
                        first: now_s,
                        count: 1,
                    };
                }
                let (count, first) = (c.count, c.first);
                if count == BEACON_ATTEMPTS
                    && st
                        .burst
                        .get_or_insert_with(Default::default)
                        .allow_new_destination(time, opts.cooldown_secs * 6)
                {
                    let mut d = Draft::new(
                        FindingKind::NewDestination,
                        Severity::Major,
                        70,
                        format!(
                            "{BEACON_ATTEMPTS} connections to {remote} port {port}/{} within {}, a destination its group never used (C&C-like)",
                            f.proto,
                            duration_text(u64::from(now_s.saturating_sub(first)))
                        ),
                    )
                    .fact("destination", format!("{remote}:{port}/{}", f.proto), Some("destinations of the group".into()))
                    .fact("attempts", BEACON_ATTEMPTS, None)
                    .baseline(format!("destinations its group used ({} known)", g.destinations.0.len()));
                    d.onset = i64::from(first) * 1000;
                    drafts.push(d);
                }
            }
            if !learning && f.bytes >= opts.new_destination_min_bytes
                // Data, not the acknowledgements of a download: pure ACK
                // streams average 40-70 bytes a packet.
                && f.bytes >= f.packets.saturating_mul(MIN_DATA_PACKET_BYTES)
                && !known
                && !known_service
                && dest_on
                && st
                    .get_or_insert_with(Default::default)
                    .burst
                    .get_or_insert_with(Default::default)
                    .allow_new_destination(time, opts.cooldown_secs * 6)
            {
                let d = Draft::new(
                    FindingKind::NewDestination,
                    Severity::Major,
                    75,
                    format!(
                        "sent {} to {remote} port {port}/{}, a destination its group never used",
                        bytes_text(f.bytes),
                        f.proto
                    ),
                )
                .fact(
                    "destination",
                    format!("{remote}:{port}/{}", f.proto),
                    Some("destinations of the group".into()),
                )
                .fact("bytes", bytes_text(f.bytes), None)
                .baseline(format!(
                    "destinations its group used ({} known)",
                    g.destinations.0.len()
                ));
                drafts.push(d);
            }
            // After the learning period the group keeps learning where its
            // services are, from completed sessions that were not
            // anomalous: no finding on this flow, no scan or flood in this
            // window, and not an upload that is itself a new destination
            // (whether or not its cooldown let a finding out).
            let new_upload = f.bytes >= opts.new_destination_min_bytes
                && f.bytes >= f.packets.saturating_mul(MIN_DATA_PACKET_BYTES)
                && !known
                && !known_service;
            if !learning
                && completed
                && !local.raised
                && drafts.is_empty()
                && local.quiet
                && !new_upload
            {
                g.learn_service(service, key);
            }
        }

        if drafts.is_empty() {
            return;
        }
        let (tenant, group_name) = names();
        let names = Names {
            tenant: tenant.as_deref(),
            group: group_name.as_deref(),
        };
        let later = traffic
            .as_deref()
            .map_or(0, |t| t.flows().saturating_sub(flows_at));
        for d in drafts {
            let d = match traffic.as_deref() {
                Some(t) => d.with_evidence(t, later, f),
                None => d.with_flow(f),
            };
            self.findings += 1;
            sink.emit(d.finish(Subject::Device(imsi), names, time));
        }
    }

    /// A flow broke its group's firewall policy.
    #[allow(clippy::too_many_arguments)]
    pub fn on_violation(
        &self,
        opts: &DetectOptions,
        emit: &mut dyn FnMut(Finding),
        imsi: Digits,
        st: &mut DeviceDetect,
        group: Sym,
        names: Names<'_>,
        f: &FlowRecord,
        dir: FlowDirection,
        rule: Option<usize>,
        time: i64,
    ) {
        if !self.enabled(Some(group), Detector::Policy)
            || !st.allow(FindingKind::PolicyViolation, time, opts.cooldown_secs)
        {
            return;
        }
        let (remote, port) = dir.remote(f);
        let mut d = Draft::new(
            FindingKind::PolicyViolation,
            Severity::Minor,
            95,
            format!(
                "{} flow {} {remote} port {port}/{} is outside its group's firewall policy",
                dir.as_str(),
                if dir == FlowDirection::Up {
                    "to"
                } else {
                    "from"
                },
                f.proto
            ),
        )
        .fact("remote", format!("{remote}:{port}/{}", f.proto), None)
        .fact(
            "rule",
            rule.map_or("default deny".to_string(), |r| format!("deny rule {r}")),
            None,
        )
        .baseline("group firewall policy");
        d.flows.push(*f);
        emit(d.finish(Subject::Device(imsi), names, time));
    }

    /// Counts findings raised on other threads (the device half of the
    /// flow detectors), for [`Detection::findings`].
    pub fn count_findings(&mut self, n: u64) {
        self.findings += n;
    }
}

/// A service as a group remembers it: the remote's provider prefix
/// (`known_service_prefix_v4` / `_v6` bits), the remote port and the
/// protocol. The prefix is a configured length, not the provider's real
/// allocation (flows carry no routing data): /16 covers a cloud region's
/// service block without reaching across providers.
fn service_key(remote: IpAddr, port: u16, proto: u8, opts: &DetectOptions) -> u64 {
    let (family, bits, mut octets) = match remote.to_canonical() {
        IpAddr::V4(v) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&v.octets());
            (4u8, opts.known_service_prefix_v4, o)
        }
        IpAddr::V6(v) => (6u8, opts.known_service_prefix_v6, v.octets()),
    };
    let bits = bits.min(128) as usize;
    for (i, b) in octets.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= !(0xffu16 >> keep) as u8;
    }
    fnv1a(&[&[family, bits as u8, proto], &port.to_be_bytes(), &octets])
}

/// A destination as a group remembers it: the remote /24 (IPv4) or /48
/// (IPv6). Ports are left out: a service the group already uses that adds
/// a port (RTP next to TLS) is not a new destination; a new network is.
fn dest_key(remote: IpAddr) -> u64 {
    let net: [u8; 8] = match remote.to_canonical() {
        IpAddr::V4(v) => {
            let o = v.octets();
            [4, o[0], o[1], o[2], 0, 0, 0, 0]
        }
        IpAddr::V6(v) => {
            let o = v.octets();
            [6, o[0], o[1], o[2], o[3], o[4], o[5], 0]
        }
    };
    fnv1a(&[&net])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_the_prefix_port_and_protocol() {
        let o = DetectOptions::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let k = |s: &str, port, proto| service_key(ip(s), port, proto, &o);
        // Same /16, any address in it: one service.
        assert_eq!(k("52.94.228.52", 443, 6), k("52.94.240.174", 443, 6));
        assert_eq!(k("52.94.0.0", 443, 6), k("52.94.255.255", 443, 6));
        assert_eq!(k("::ffff:52.94.1.1", 443, 6), k("52.94.2.2", 443, 6));
        // Another /16, port or protocol: another service.
        assert_ne!(k("52.94.228.52", 443, 6), k("52.95.228.52", 443, 6));
        assert_ne!(k("52.94.228.52", 443, 6), k("52.94.228.52", 8443, 6));
        assert_ne!(k("52.94.228.52", 443, 6), k("52.94.228.52", 443, 17));
        // IPv6: the /32.
        assert_eq!(
            k("2a05:d018:1::1", 443, 6),
            k("2a05:d018:ffff:ffff::2", 443, 6)
        );
        assert_ne!(k("2a05:d018::1", 443, 6), k("2a05:d019::1", 443, 6));
        // A prefix length that is not a whole number of octets.
        let o20 = DetectOptions {
            known_service_prefix_v4: 20,
            ..o
        };
        let k20 = |s: &str| service_key(ip(s), 443, 6, &o20);
        assert_eq!(k20("10.1.16.1"), k20("10.1.31.255"));
        assert_ne!(k20("10.1.16.1"), k20("10.1.32.1"));
    }
}
