//! A minimal IPFIX (RFC 7011) exporter encoding: one fixed template of IPv4 flow
//! records, messages of at most [`MAX_MESSAGE_BYTES`] for UDP transport.
//!
//! Template 256 carries, in this order (information element id, length in bytes):
//!
//! | field | IE | bytes |
//! | --- | --- | --- |
//! | sourceIPv4Address | 8 | 4 |
//! | destinationIPv4Address | 12 | 4 |
//! | sourceTransportPort | 7 | 2 |
//! | destinationTransportPort | 11 | 2 |
//! | protocolIdentifier | 4 | 1 |
//! | tcpControlBits | 6 | 2 |
//! | octetDeltaCount | 1 | 8 |
//! | packetDeltaCount | 2 | 8 |
//! | flowStartMilliseconds | 152 | 8 |
//! | flowEndMilliseconds | 153 | 8 |
//!
//! The template set goes into the first message and then into every
//! [`TEMPLATE_REFRESH_MESSAGES`]th message, as UDP exporters resend templates
//! (RFC 7011 §8.4). The sequence number of a message is the number of data records
//! exported in earlier messages of the observation domain, modulo 2^32 (§3.1).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// IPFIX version number in the message header.
pub const VERSION: u16 = 10;
/// Template id of the flow records (the first id available for templates).
pub const TEMPLATE_ID: u16 = 256;
/// Set id of a template set.
pub const TEMPLATE_SET_ID: u16 = 2;
/// No message is longer than this, so that it fits an Ethernet MTU with headers.
pub const MAX_MESSAGE_BYTES: usize = 1400;
/// The template is sent in message 0, 64, 128, ...
pub const TEMPLATE_REFRESH_MESSAGES: u64 = 64;
/// (information element id, length) of the template's fields, in record order.
pub const FIELDS: [(u16, u16); 10] = [
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 2),   // tcpControlBits
    (1, 8),   // octetDeltaCount
    (2, 8),   // packetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
];
/// Bytes of one data record.
pub const RECORD_BYTES: usize = 47;

const HEADER_BYTES: usize = 16;
const SET_HEADER_BYTES: usize = 4;
/// Template set: set header, template record header, 4 bytes per field.
const TEMPLATE_SET_BYTES: usize = SET_HEADER_BYTES + 4 + 4 * FIELDS.len();

/// One unidirectional flow, as the template describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowRecord {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number: 6 TCP, 17 UDP.
    pub proto: u8,
    /// Union of the TCP flags seen (0 for UDP).
    pub tcp_flags: u16,
    /// IP-layer bytes (headers included), like Acct-Input/Output-Octets.
    pub octets: u64,
    pub packets: u64,
    /// Unix milliseconds of the first and last packet.
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Records that fit into one message, with or without the template set.
pub const fn capacity(with_template: bool) -> usize {
    let fixed = HEADER_BYTES + SET_HEADER_BYTES;
    let room = MAX_MESSAGE_BYTES - fixed - if with_template { TEMPLATE_SET_BYTES } else { 0 };
    room / RECORD_BYTES
}

/// Encodes one message into `out` (cleared first). `records` must not exceed
/// [`capacity`]`(with_template)`; an empty slice gives a message without a data set.
pub fn encode_message(
    domain: u32,
    sequence: u32,
    export_secs: u32,
    with_template: bool,
    records: &[FlowRecord],
    out: &mut Vec<u8>,
) {
    debug_assert!(records.len() <= capacity(with_template));
    out.clear();
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // length, patched below
    out.extend_from_slice(&export_secs.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&domain.to_be_bytes());
    if with_template {
        out.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
        out.extend_from_slice(&(TEMPLATE_SET_BYTES as u16).to_be_bytes());
        out.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        out.extend_from_slice(&(FIELDS.len() as u16).to_be_bytes());
        for (id, len) in FIELDS {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if !records.is_empty() {
        let set_len = SET_HEADER_BYTES + RECORD_BYTES * records.len();
        out.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        out.extend_from_slice(&(set_len as u16).to_be_bytes());
        for r in records {
            out.extend_from_slice(&r.src.octets());
            out.extend_from_slice(&r.dst.octets());
            out.extend_from_slice(&r.src_port.to_be_bytes());
            out.extend_from_slice(&r.dst_port.to_be_bytes());
            out.push(r.proto);
            out.extend_from_slice(&r.tcp_flags.to_be_bytes());
            out.extend_from_slice(&r.octets.to_be_bytes());
            out.extend_from_slice(&r.packets.to_be_bytes());
            out.extend_from_slice(&r.start_ms.to_be_bytes());
            out.extend_from_slice(&r.end_ms.to_be_bytes());
        }
    }
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
}

/// The exporter's state for one observation domain: sequence number and template refresh.
#[derive(Clone, Debug)]
pub struct Encoder {
    domain: u32,
    records: u64,
    messages: u64,
}

impl Encoder {
    pub fn new(observation_domain: u32) -> Encoder {
        Encoder {
            domain: observation_domain,
            records: 0,
            messages: 0,
        }
    }

    /// True if the next message carries the template set.
    pub fn next_has_template(&self) -> bool {
        self.messages % TEMPLATE_REFRESH_MESSAGES == 0
    }

    /// Most records the next message can take.
    pub fn capacity(&self) -> usize {
        capacity(self.next_has_template())
    }

    /// Encodes the next message with `records` (at most [`Encoder::capacity`]) into `out`.
    pub fn encode(&mut self, export_secs: u32, records: &[FlowRecord], out: &mut Vec<u8>) {
        let template = self.next_has_template();
        encode_message(
            self.domain,
            self.records as u32,
            export_secs,
            template,
            records,
            out,
        );
        self.messages += 1;
        self.records += records.len() as u64;
    }

    /// Messages encoded so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Data records encoded so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> FlowRecord {
        FlowRecord {
            src: Ipv4Addr::new(10, 45, (i >> 8) as u8, i as u8),
            dst: Ipv4Addr::new(198, 51, 100, 10),
            src_port: 49_152 + i as u16,
            dst_port: 443,
            proto: 6,
            tcp_flags: 0x1b,
            octets: 1_000 + i * 7,
            packets: 10 + i,
            start_ms: 1_735_689_600_000 + i,
            end_ms: 1_735_689_660_000 + i,
        }
    }

    #[test]
    fn layout_and_limits() {
        assert_eq!(
            FIELDS.iter().map(|f| usize::from(f.1)).sum::<usize>(),
            RECORD_BYTES
        );
        assert_eq!(capacity(true), 28);
        assert_eq!(capacity(false), 29);
        let mut out = Vec::new();
        let recs: Vec<FlowRecord> = (0..29).map(rec).collect();
        encode_message(7, 5, 9, true, &recs[..28], &mut out);
        assert!(out.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(out.len(), 16 + 48 + 4 + 28 * 47);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]) as usize, out.len());
        encode_message(7, 5, 9, false, &recs, &mut out);
        assert!(out.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(out.len(), 16 + 4 + 29 * 47);
        // Set header of the data set, then the first record's source address.
        assert_eq!(&out[16..18], &TEMPLATE_ID.to_be_bytes());
        assert_eq!(&out[20..24], &[10, 45, 0, 0]);
    }

    #[test]
    fn sequence_counts_records_and_template_is_refreshed() {
        let mut e = Encoder::new(3);
        let mut out = Vec::new();
        let mut with_template = Vec::new();
        let mut expected_seq = 0u32;
        for m in 0..200u64 {
            let n = (m % 5) as usize + 1;
            let recs: Vec<FlowRecord> = (0..n as u64).map(rec).collect();
            e.encode(1_000 + m as u32, &recs, &mut out);
            assert_eq!(
                u32::from_be_bytes(out[8..12].try_into().unwrap()),
                expected_seq
            );
            assert_eq!(u32::from_be_bytes(out[12..16].try_into().unwrap()), 3);
            assert_eq!(
                u32::from_be_bytes(out[4..8].try_into().unwrap()),
                1_000 + m as u32
            );
            expected_seq += n as u32;
            if out[16..18] == TEMPLATE_SET_ID.to_be_bytes() {
                with_template.push(m);
            }
        }
        assert_eq!(with_template, vec![0, 64, 128, 192]);
        assert_eq!(e.messages(), 200);
        assert_eq!(e.records(), u64::from(expected_seq));
    }

    /// Wraps IPFIX messages into UDP/IPv4/Ethernet frames in a pcap file.
    fn write_pcap(path: &std::path::Path, messages: &[Vec<u8>]) {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&0i32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&65_535u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        for (i, m) in messages.iter().enumerate() {
            let mut frame = Vec::new();
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
            let total = 20 + 8 + m.len();
            let mut ip = vec![
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                i as u8,
                0x40,
                0,
                64,
                17,
                0,
                0,
                127,
                0,
                0,
                1,
                127,
                0,
                0,
                2,
            ];
            let mut sum = 0u32;
            for w in ip.chunks(2) {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            let ck = !(sum as u16);
            ip[10..12].copy_from_slice(&ck.to_be_bytes());
            frame.extend_from_slice(&ip);
            let udp_len = (8 + m.len()) as u16;
            frame.extend_from_slice(&50_000u16.to_be_bytes());
            frame.extend_from_slice(&4739u16.to_be_bytes());
            frame.extend_from_slice(&udp_len.to_be_bytes());
            frame.extend_from_slice(&[0, 0]); // no UDP checksum
            frame.extend_from_slice(m);
            f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(&frame);
        }
        std::fs::write(path, f).unwrap();
    }

    #[test]
    fn tshark_decodes_what_was_encoded() {
        let tshark = std::env::var_os("TSHARK").unwrap_or_else(|| "tshark".into());
        let probe = std::process::Command::new(&tshark)
            .arg("--version")
            .output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "this test needs tshark (Wireshark's command-line tool) on PATH, or its path \
             in TSHARK: install it with `apt-get install tshark` ({probe:?})"
        );

        // Three messages: template + 28 records, 29 records relying on the cached
        // template, 3 records; UDP and TCP, big counters and ms timestamps.
        let mut recs: Vec<FlowRecord> = (0..60).map(rec).collect();
        recs[5].proto = 17;
        recs[5].tcp_flags = 0;
        recs[5].dst_port = 5004;
        recs[7].octets = 6_000_000_000;
        recs[7].packets = 4_615_385;
        recs[8].src = Ipv4Addr::new(203, 0, 113, 80);
        recs[8].dst = Ipv4Addr::new(10, 45, 3, 4);
        let mut e = Encoder::new(42);
        let mut messages = Vec::new();
        let mut at = 0;
        for n in [28, 29, 3] {
            let mut m = Vec::new();
            assert!(n <= e.capacity());
            e.encode(1_735_689_700 + at as u32, &recs[at..at + n], &mut m);
            messages.push(m);
            at += n;
        }
        let recs = &recs[..at];
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("ipfix.pcap");
        write_pcap(&pcap, &messages);

        let fields = [
            "cflow.version",
            "cflow.od_id",
            "cflow.sequence",
            "cflow.exporttime",
            "cflow.srcaddr",
            "cflow.dstaddr",
            "cflow.srcport",
            "cflow.dstport",
            "cflow.protocol",
            "cflow.tcpflags",
            "cflow.octets",
            "cflow.packets",
            "cflow.abstimestart",
            "cflow.abstimeend",
        ];
        let mut cmd = std::process::Command::new(&tshark);
        cmd.env("TZ", "UTC")
            .arg("-n")
            .arg("-r")
            .arg(&pcap)
            .args(["-d", "udp.port==4739,cflow", "-T", "fields"])
            .args([
                "-E",
                "aggregator=|",
                "-E",
                "separator=/t",
                "-E",
                "occurrence=a",
            ]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("run tshark");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        let mut seq = 0u64;
        let mut decoded: Vec<FlowRecord> = Vec::new();
        for (k, line) in lines.iter().enumerate() {
            let cols: Vec<Vec<&str>> = line
                .split('\t')
                .map(|c| c.split('|').filter(|s| !s.is_empty()).collect())
                .collect();
            assert_eq!(cols.len(), fields.len(), "{line}");
            assert_eq!(cols[0], vec!["10"], "{line}");
            assert_eq!(cols[1], vec!["42"]);
            assert_eq!(cols[2], vec![seq.to_string()]);
            let export: u64 = 1_735_689_700 + [0u64, 28, 57][k];
            assert_eq!(cols[3], vec![export.to_string()], "{line}");
            let n = cols[4].len();
            assert_eq!(n, [28, 29, 3][k], "{line}");
            for c in &cols[4..] {
                assert_eq!(c.len(), n, "every record decodes every field: {line}");
            }
            for i in 0..n {
                // The record's fields, from srcaddr on.
                let row: Vec<&str> = cols[4..].iter().map(|c| c[i]).collect();
                let num = |j: usize| -> u64 {
                    let s = row[j];
                    s.strip_prefix("0x")
                        .map(|h| u64::from_str_radix(h, 16).unwrap())
                        .unwrap_or_else(|| s.parse().unwrap_or_else(|_| panic!("{s}")))
                };
                decoded.push(FlowRecord {
                    src: row[0].parse().unwrap(),
                    dst: row[1].parse().unwrap(),
                    src_port: num(2) as u16,
                    dst_port: num(3) as u16,
                    proto: num(4) as u8,
                    tcp_flags: num(5) as u16,
                    octets: num(6),
                    packets: num(7),
                    start_ms: parse_time_ms(row[8]),
                    end_ms: parse_time_ms(row[9]),
                });
            }
            seq += n as u64;
        }
        assert_eq!(decoded, recs);
    }

    /// Parses tshark's absolute time ("Jan  1, 2025 00:01:40.123000000 UTC") into Unix ms.
    fn parse_time_ms(s: &str) -> u64 {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let p: Vec<&str> = s.split_whitespace().collect();
        assert!(p.len() >= 4 && p.get(4).is_none_or(|z| *z == "UTC"), "{s}");
        let month = MONTHS.iter().position(|m| *m == p[0]).expect(s) as i64 + 1;
        let day: i64 = p[1].trim_end_matches(',').parse().expect(s);
        let year: i64 = p[2].parse().expect(s);
        let (hms, frac) = p[3].split_once('.').unwrap_or((p[3], "0"));
        let t: Vec<i64> = hms.split(':').map(|x| x.parse().expect(s)).collect();
        let ms: i64 = format!("{frac:0<3}")[..3].parse().expect(s);
        // Days from civil (Howard Hinnant).
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        ((days * 86_400 + t[0] * 3_600 + t[1] * 60 + t[2]) * 1_000 + ms) as u64
    }
}
