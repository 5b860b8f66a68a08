//! From a decoded RADIUS Accounting-Request to an engine event.
//!
//! This is where protocol detail stops: the engine sees IMSIs, cells and
//! counters, not attributes.

use simguard_engine::{
    AcctRecord, AcctStatus, Cell, CellKind, Digits, Event, NasReset, Plmn, TimeZone,
};
use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::{self, UserLocationInfo};
use simguard_radius::Accounting;

/// Why a well-formed, authenticated request still cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("no Acct-Status-Type")]
    NoStatus,
    #[error("Acct-Status-Type {0} is not one simguard records")]
    UnsupportedStatus(u32),
    #[error("no Acct-Session-Id")]
    NoSessionId,
    #[error("no IMSI (neither 3GPP-IMSI nor a numeric User-Name)")]
    NoImsi,
}

fn plmn(p: tgpp::Plmn) -> Option<Plmn> {
    Plmn::new(p.mcc, p.mnc, p.mnc_digits)
}

/// The serving cell from 3GPP-User-Location-Info.
pub fn cell(uli: &UserLocationInfo) -> Option<Cell> {
    let c = |kind, p: tgpp::Plmn, area: u32, id: u64| {
        plmn(p).map(|plmn| Cell {
            kind,
            plmn,
            area,
            id,
        })
    };
    match *uli {
        UserLocationInfo::Cgi { plmn, lac, ci } => c(CellKind::Cgi, plmn, lac.into(), ci.into()),
        UserLocationInfo::Sai { plmn, lac, sac } => c(CellKind::Sai, plmn, lac.into(), sac.into()),
        UserLocationInfo::Rai { plmn, lac, rac } => c(CellKind::Rai, plmn, lac.into(), rac.into()),
        UserLocationInfo::Tai { plmn, tac } => c(CellKind::Tai, plmn, tac.into(), 0),
        UserLocationInfo::Ecgi { plmn, eci } => c(CellKind::Ecgi, plmn, 0, eci.into()),
        UserLocationInfo::TaiEcgi {
            tac,
            ecgi_plmn,
            eci,
            ..
        } => c(CellKind::Ecgi, ecgi_plmn, tac.into(), eci.into()),
        UserLocationInfo::Ncgi { plmn, nci } => c(CellKind::Ncgi, plmn, 0, nci),
        UserLocationInfo::FiveGsTai { plmn, tac } => c(CellKind::Tai, plmn, tac, 0),
        UserLocationInfo::Other { .. } => None,
    }
}

fn digits_only(s: &str) -> Option<Digits> {
    Digits::parse(s)
}

/// Builds the journal event for one request. `received_ms` is the server's
/// receive time; `nas` the allow-list name of the sender.
pub fn to_event(a: &Accounting<'_>, nas: &str, received_ms: i64) -> Result<Event, MapError> {
    let status = match a.status_type.ok_or(MapError::NoStatus)? {
        StatusType::Start => AcctStatus::Start,
        StatusType::InterimUpdate => AcctStatus::Interim,
        StatusType::Stop => AcctStatus::Stop,
        StatusType::AccountingOn | StatusType::AccountingOff => {
            return Ok(Event::NasReset(NasReset {
                time: event_time(a, received_ms),
                nas: nas.to_string(),
                on: matches!(a.status_type, Some(StatusType::AccountingOn)),
            }))
        }
        StatusType::Other(v) => return Err(MapError::UnsupportedStatus(v)),
    };
    let session_id = a.session_id.ok_or(MapError::NoSessionId)?;
    // Some gateways carry the IMSI only in User-Name (often "IMSI@realm").
    let imsi = a
        .imsi
        .and_then(digits_only)
        .or_else(|| {
            a.user_name
                .map(|u| u.split('@').next().unwrap_or(u))
                .filter(|u| (6..=15).contains(&u.len()))
                .and_then(digits_only)
        })
        .ok_or(MapError::NoImsi)?;
    Ok(Event::Accounting(AcctRecord {
        time: event_time(a, received_ms),
        received: received_ms,
        nas: nas.to_string(),
        status,
        session_id: session_id.to_string(),
        imsi,
        imeisv: a.imeisv.and_then(digits_only),
        msisdn: a
            .calling_station_id
            .map(|s| s.trim_start_matches('+'))
            .and_then(digits_only),
        apn: a.called_station_id.map(str::to_string),
        framed_ip: a.framed_ip,
        up_octets: a.input_octets.unwrap_or(0),
        down_octets: a.output_octets.unwrap_or(0),
        up_packets: a.input_packets.map_or(0, u64::from),
        down_packets: a.output_packets.map_or(0, u64::from),
        session_time: a.session_time,
        terminate_cause: a.terminate_cause,
        interim_interval: a.interim_interval,
        charging_id: a.charging_id,
        network: a
            .sgsn_mcc_mnc
            .and_then(plmn)
            .or_else(|| a.uli.as_ref().and_then(|u| u.plmn()).and_then(plmn)),
        rat: a.rat_type.map(|r| r.0),
        cell: a.uli.as_ref().and_then(cell),
        time_zone: a.ms_timezone.map(|t| TimeZone {
            offset_minutes: t.offset_minutes,
            dst_hours: t.dst_hours,
        }),
    }))
}

/// Event-Timestamp minus Acct-Delay-Time when sent (RFC 2869 §5.3, RFC 2866 §5.2),
/// else the receive time minus the delay.
fn event_time(a: &Accounting<'_>, received_ms: i64) -> i64 {
    let delay = i64::from(a.delay_time.unwrap_or(0)) * 1000;
    match a.event_timestamp {
        Some(ts) => i64::from(ts) * 1000 - delay,
        None => received_ms - delay,
    }
}
