//! NetFlow v5: fixed 24-byte header and 48-byte records, no templates, no state.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::FlowError;
use crate::{DecodeSummary, FlowRecord};

const HEADER: usize = 24;
const RECORD: usize = 48;

#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

pub(crate) fn decode(d: &[u8], out: &mut Vec<FlowRecord>) -> Result<DecodeSummary, FlowError> {
    if d.len() < HEADER {
        return Err(FlowError::TooShort {
            need: HEADER,
            got: d.len(),
        });
    }
    let count = u16_at(d, 2) as usize;
    let need = HEADER + count * RECORD;
    // Trailing bytes beyond the announced records are tolerated (some exporters
    // pad); fewer bytes than announced is a truncated datagram.
    if d.len() < need {
        return Err(FlowError::BadLength {
            declared: need,
            actual: d.len(),
        });
    }
    let uptime = u32_at(d, 4);
    let export_ms = u32_at(d, 8) as i64 * 1000 + (u32_at(d, 12) / 1_000_000) as i64;
    // Top 2 bits: sampling mode; low 14 bits: interval (0 = not sampled).
    let sampling = match u16_at(d, 22) & 0x3FFF {
        0 => 1,
        n => n as u32,
    };
    // First/Last are sysUptime ms; the signed 32-bit age survives counter wrap.
    let abs = |t: u32| export_ms - uptime.wrapping_sub(t) as i32 as i64;
    out.reserve(count);
    for r in d[HEADER..need].chunks_exact(RECORD) {
        out.push(FlowRecord {
            src: IpAddr::V4(Ipv4Addr::from(u32_at(r, 0))),
            dst: IpAddr::V4(Ipv4Addr::from(u32_at(r, 4))),
            input_if: u16_at(r, 12) as u32,
            output_if: u16_at(r, 14) as u32,
            packets: u32_at(r, 16) as u64,
            bytes: u32_at(r, 20) as u64,
            start_ms: abs(u32_at(r, 24)),
            end_ms: abs(u32_at(r, 28)),
            src_port: u16_at(r, 32),
            dst_port: u16_at(r, 34),
            tcp_flags: r.get(37).copied().unwrap_or(0),
            proto: r.get(38).copied().unwrap_or(0),
            tos: r.get(39).copied().unwrap_or(0),
            sampling,
            direction: None,
        });
    }
    Ok(DecodeSummary {
        version: 5,
        records: count,
        ..DecodeSummary::default()
    })
}
