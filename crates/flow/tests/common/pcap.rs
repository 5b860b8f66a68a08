//! Minimal pcap walker: Ethernet (+802.1Q), Linux SLL/SLL2, loopback, raw IP;
//! IPv4/IPv6; UDP payloads with the source address.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

#[derive(Debug, Clone)]
pub struct Udp {
    /// 1-based frame number, as tshark counts.
    pub frame: usize,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Capture timestamp, Unix ms.
    pub ts_ms: i64,
    pub payload: Vec<u8>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub fn udp_datagrams(path: &Path) -> Vec<Udp> {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = PcapReader::new(file).expect("pcap header");
    let link = r.header().datalink;
    let mut out = Vec::new();
    let mut frame = 0;
    while let Some(pkt) = r.next_raw_packet() {
        let pkt = pkt.expect("pcap record");
        frame += 1;
        let ts_ms = pkt.ts_sec as i64 * 1000 + pkt.ts_frac as i64 / 1000;
        if let Some((src, sp, dp, payload)) = udp_of(link, &pkt.data) {
            out.push(Udp {
                frame,
                src,
                src_port: sp,
                dst_port: dp,
                ts_ms,
                payload: payload.to_vec(),
            });
        }
    }
    out
}

fn udp_of(link: DataLink, frame: &[u8]) -> Option<(IpAddr, u16, u16, &[u8])> {
    let ip = match link {
        DataLink::ETHERNET => {
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
        DataLink::LINUX_SLL => frame.get(16..)?,
        DataLink::LINUX_SLL2 => frame.get(20..)?,
        DataLink::NULL | DataLink::LOOP => frame.get(4..)?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => frame,
        other => panic!("unsupported link type {other:?}"),
    };
    let (src, udp) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            let frag_offset = be16(ip, 6)? & 0x1fff;
            if *ip.get(9)? != 17 || frag_offset != 0 {
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
    let sp = be16(udp, 0)?;
    let dp = be16(udp, 2)?;
    let udp_len = usize::from(be16(udp, 4)?);
    let end = if udp_len >= 8 {
        udp_len.min(udp.len())
    } else {
        udp.len()
    };
    Some((src, sp, dp, udp.get(8..end)?))
}
