//! JSON views of engine state. Numbers that people read (times, PLMNs, RAT)
//! are rendered for people; the raw values stay alongside where tools need them.

use serde::Serialize;
use simguard_engine::device::Device;
use simguard_engine::locate::Position;
use simguard_engine::time::{month_start, rfc3339};
use simguard_engine::{inventory, Cell, CellKind, Engine, Group, Plmn};
use simguard_radius::tgpp::RatType;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct NetworkView {
    /// MCC-MNC, e.g. "262-01".
    pub plmn: String,
    pub mcc: String,
    /// Kept as text: "01" and "001" are different networks.
    pub mnc: String,
    /// ISO 3166 alpha-2 of the MCC, when the MCC belongs to a country.
    pub country: Option<&'static str>,
    pub country_name: Option<&'static str>,
}

impl NetworkView {
    pub fn of(p: Plmn) -> NetworkView {
        let c = simguard_engine::mcc::country(p.mcc);
        NetworkView {
            plmn: p.to_string(),
            mcc: format!("{:03}", p.mcc),
            mnc: p.mnc_string(),
            country: c.map(|c| c.iso),
            country_name: c.map(|c| c.name),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RatView {
    /// 3GPP RAT-Type value (6 EUTRAN, 8 NB-IoT, 9 LTE-M, 10 NR ...).
    pub code: u8,
    pub name: &'static str,
}

pub fn rat_view(code: u8) -> RatView {
    RatView {
        code,
        name: RatType(code).name(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CellView {
    /// CGI, SAI, RAI, TAI, ECGI or NCGI.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub plmn: String,
    /// LAC (2G/3G) or TAC (LTE/5G); null when not sent.
    pub lac: Option<u32>,
    pub tac: Option<u32>,
    /// CI (2G), SAC (3G), RAC, ECI (LTE, 28 bits) or NCI (5G, 36 bits).
    pub ci: Option<u64>,
    pub sac: Option<u64>,
    pub rac: Option<u64>,
    pub eci: Option<u64>,
    pub nci: Option<u64>,
    /// For LTE: eNodeB id (ECI >> 8) and local cell id (ECI & 0xff).
    pub enb: Option<u64>,
}

pub fn cell_view(c: &Cell) -> CellView {
    let mut v = CellView {
        kind: c.kind.as_str(),
        plmn: c.plmn.to_string(),
        lac: None,
        tac: None,
        ci: None,
        sac: None,
        rac: None,
        eci: None,
        nci: None,
        enb: None,
    };
    match c.kind {
        CellKind::Cgi => (v.lac, v.ci) = (Some(c.area), Some(c.id)),
        CellKind::Sai => (v.lac, v.sac) = (Some(c.area), Some(c.id)),
        CellKind::Rai => (v.lac, v.rac) = (Some(c.area), Some(c.id)),
        CellKind::Tai => v.tac = Some(c.area),
        CellKind::Ecgi => {
            v.tac = (c.area != 0).then_some(c.area);
            v.eci = Some(c.id);
            v.enb = Some(c.id >> 8);
        }
        CellKind::Ncgi => {
            v.tac = (c.area != 0).then_some(c.area);
            v.nci = Some(c.id);
        }
    }
    v
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    /// The NAS (allow-list name) that owns the session: CoA goes there.
    pub nas: String,
    pub apn: Option<String>,
    pub framed_ip: Option<String>,
    pub charging_id: Option<u32>,
    pub start: String,
    pub last_update: String,
    pub interim_interval_secs: u32,
    /// Cumulative octets of the session, from the device.
    pub up_octets: u64,
    pub down_octets: u64,
    pub up_packets: u64,
    pub down_packets: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    /// Billing period (calendar month, UTC), e.g. "2026-11".
    pub period: String,
    pub period_start: String,
    pub period_up_octets: u64,
    pub period_down_octets: u64,
    pub period_sessions: u32,
    pub total_up_octets: u64,
    pub total_down_octets: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TimeZoneView {
    pub offset_minutes: i16,
    pub dst_hours: u8,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub imsi: String,
    /// False for an IMSI seen on the network but absent from the inventory.
    pub provisioned: bool,
    pub iccid: Option<String>,
    pub msisdn: Option<String>,
    pub bound_imei: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub label: Option<String>,
    /// active, throttled, quarantined, blocked or retired; null when unprovisioned.
    pub lifecycle: Option<&'static str>,
    /// online, offline or never_seen.
    pub status: &'static str,
    /// Why the device is offline (session_stopped, interim_timeout, nas_reset, never_seen).
    pub offline_reason: Option<&'static str>,
    /// IMEISV reported by the network.
    pub imeisv: Option<String>,
    /// The 8-digit Type Allocation Code of the reported IMEISV (device model).
    pub tac: Option<String>,
    /// MSISDN reported by the network (Calling-Station-Id).
    pub msisdn_seen: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// When the device counts as offline unless a report arrives.
    pub online_until: Option<String>,
    pub network: Option<NetworkView>,
    pub rat: Option<RatView>,
    pub cell: Option<CellView>,
    pub time_zone: Option<TimeZoneView>,
    pub sessions: Vec<SessionView>,
    pub usage: UsageView,
    /// Where the device is: the newest point of its location trail; null
    /// when it was never located.
    pub position: Option<PositionView>,
}

#[derive(Serialize, ToSchema, Clone, Debug, PartialEq)]
pub struct PositionView {
    /// Degrees, WGS 84.
    pub lat: f64,
    pub lon: f64,
    /// Radius around (lat, lon) the device is likely within, metres: the
    /// cell's range, or the country's size when only the country is known.
    pub accuracy_m: u32,
    /// cell (the serving cell is in the cell table) or country (the serving
    /// network's country centroid).
    pub source: &'static str,
    /// When the device got there (event time of the record that moved it).
    pub time: String,
    pub time_ms: i64,
}

pub fn position_view(time: i64, p: &Position) -> PositionView {
    PositionView {
        lat: p.lat,
        lon: p.lon,
        accuracy_m: p.accuracy_m,
        source: p.source.as_str(),
        time: rfc3339(time),
        time_ms: time,
    }
}

/// Connectivity status of a device at engine time `now`.
pub fn status(d: &Device, now: i64) -> &'static str {
    if d.is_online(now) {
        "online"
    } else if d.last_seen.is_none() {
        "never_seen"
    } else {
        "offline"
    }
}

pub fn device_view(e: &Engine, d: &Device) -> DeviceView {
    let syms = e.syms();
    let now = e.clock();
    let p = d.provisioning.as_ref();
    let st = status(d, now);
    DeviceView {
        imsi: d.imsi.to_string(),
        provisioned: p.is_some(),
        iccid: p.and_then(|p| p.iccid.as_deref().map(str::to_string)),
        msisdn: p.and_then(|p| p.msisdn.map(|m| m.to_string())),
        bound_imei: p.and_then(|p| p.bound_imei.map(|m| m.to_string())),
        tenant: p.map(|p| syms.resolve(p.tenant).to_string()),
        group: p.map(|p| syms.resolve(p.group).to_string()),
        label: p.and_then(|p| p.label.as_deref().map(str::to_string)),
        lifecycle: p.map(|p| p.lifecycle.as_str()),
        status: st,
        offline_reason: (st != "online").then(|| d.offline_reason.as_str()),
        imeisv: d.imeisv.map(|x| x.to_string()),
        tac: d.tac().map(|x| x.to_string()),
        msisdn_seen: d.msisdn_seen.map(|x| x.to_string()),
        first_seen: d.first_seen.map(rfc3339),
        last_seen: d.last_seen.map(rfc3339),
        online_until: (!d.sessions.is_empty() && d.deadline > 0).then(|| rfc3339(d.deadline)),
        network: d.network.map(NetworkView::of),
        rat: d.rat.map(rat_view),
        cell: d.cell.as_ref().map(cell_view),
        time_zone: d.time_zone.map(|t| TimeZoneView {
            offset_minutes: t.offset_minutes,
            dst_hours: t.dst_hours,
        }),
        sessions: d
            .sessions
            .iter()
            .map(|s| SessionView {
                session_id: s.id.to_string(),
                nas: syms.resolve(s.nas).to_string(),
                apn: s.apn.map(|a| syms.resolve(a).to_string()),
                framed_ip: s.framed_ip.map(|ip| ip.to_string()),
                charging_id: s.charging_id,
                start: rfc3339(s.start),
                last_update: rfc3339(s.last),
                interim_interval_secs: s.interim_interval,
                up_octets: s.up,
                down_octets: s.down,
                up_packets: s.up_packets,
                down_packets: s.down_packets,
            })
            .collect(),
        usage: {
            let u = d.usage;
            let start = month_start(u.period);
            UsageView {
                period: rfc3339(start)[..7].to_string(),
                period_start: rfc3339(start),
                period_up_octets: u.period_up,
                period_down_octets: u.period_down,
                period_sessions: u.period_sessions,
                total_up_octets: u.total_up,
                total_down_octets: u.total_down,
            }
        },
        // Filled from the store by the handler (the engine has no positions).
        position: None,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub max_bytes_per_day: Option<u64>,
    pub report_interval_secs: Option<u32>,
    /// [start, end) hours UTC.
    pub active_hours: Option<(u8, u8)>,
    pub allowed_countries: Vec<String>,
    pub allowed_networks: Vec<String>,
    pub allowed_rats: Vec<u8>,
    pub imei_lock: bool,
}

#[derive(Serialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub profile: ProfileView,
    /// Detectors switched off for this group.
    pub disabled_detectors: Vec<String>,
}

pub fn group_view(g: &Group) -> GroupView {
    let p = &g.profile;
    GroupView {
        id: g.id.clone(),
        tenant: g.tenant.clone(),
        name: g.name.clone(),
        profile: ProfileView {
            max_bytes_per_day: p.max_bytes_per_day,
            report_interval_secs: p.report_interval_secs,
            active_hours: p.active_hours,
            allowed_countries: p.allowed_countries.clone(),
            allowed_networks: p.allowed_networks.iter().map(|n| n.to_string()).collect(),
            allowed_rats: p.allowed_rats.clone(),
            imei_lock: p.imei_lock,
        },
        disabled_detectors: g
            .disabled_detectors
            .iter()
            .map(|d| d.as_str().to_string())
            .collect(),
    }
}

/// Parses a RAT filter: a number or a name ("NB-IoT", "lte-m", "EUTRAN").
pub fn parse_rat(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    (0..=255u8)
        .find(|c| RatType(*c).name().eq_ignore_ascii_case(s) && RatType(*c).name() != "unknown")
}

pub fn lifecycle_of(s: &str) -> Option<inventory::Lifecycle> {
    s.parse().ok()
}
