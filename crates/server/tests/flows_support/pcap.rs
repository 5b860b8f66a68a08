//! The UDP payloads of a classic pcap file (Ethernet with 802.1Q, Linux
//! SLL, raw IP; IPv4 and IPv6), in capture order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Udp {
    pub src: IpAddr,
    pub payload: Vec<u8>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub fn udp_payloads(path: &Path) -> Vec<Udp> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(b.len() >= 24, "{}: no pcap header", path.display());
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2c3d4 | 0xa1b23c4d => true,
        0xd4c3b2a1 | 0x4d3cb2a1 => false,
        m => panic!("{}: not a classic pcap (magic {m:#x})", path.display()),
    };
    let u32_at = |at: usize| -> u32 {
        let a: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(20);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32_at(at + 8) as usize;
        let frame = &b[at + 16..(at + 16 + caplen).min(b.len())];
        at += 16 + caplen;
        if let Some((src, payload)) = udp_of(link, frame) {
            out.push(Udp {
                src,
                payload: payload.to_vec(),
            });
        }
    }
    out
}

fn udp_of(link: u32, frame: &[u8]) -> Option<(IpAddr, &[u8])> {
    let ip = match link {
        1 => {
            let mut at = 12;
            let mut ethertype = be16(frame, at)?;
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                at += 4;
                ethertype = be16(frame, at)?;
            }
            match ethertype {
                0x0800 | 0x86dd => frame.get(at + 2..)?,
                _ => return None,
            }
        }
        113 => frame.get(16..)?,
        276 => frame.get(20..)?,
        101 | 228 | 229 => frame,
        other => panic!("unsupported pcap link type {other}"),
    };
    let (src, udp) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            if *ip.get(9)? != 17 || be16(ip, 6)? & 0x1fff != 0 {
                return None;
            }
            let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(a)),
                ip.get(ihl..total.min(ip.len()))?,
            )
        }
        6 => {
            let payload_len = usize::from(be16(ip, 4)?);
            let mut next = *ip.get(6)?;
            let mut at = 40;
            while matches!(next, 0 | 43 | 60) {
                next = *ip.get(at)?;
                at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
            }
            if next != 17 {
                return None;
            }
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(a)),
                ip.get(at..(40 + payload_len).min(ip.len()))?,
            )
        }
        _ => return None,
    };
    let udp_len = usize::from(be16(udp, 4)?);
    let end = if udp_len >= 8 {
        udp_len.min(udp.len())
    } else {
        udp.len()
    };
    Some((src, udp.get(8..end)?))
}
