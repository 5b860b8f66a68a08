//! IoT-23 (Stratosphere Laboratory, CTU Prague) labelled captures: Zeek
//! `conn.log` converted to CSV, one row per connection, with a label
//! (`benign` / `Malicious`, case varies) and a detailed label (`C&C`,
//! `DDoS`, `PartOfAHorizontalPortScan`, ... or `-`).
//!
//! Pure: text in, rows and IPFIX records out. `simguard eval --iot23`
//! (`cmd::eval_iot23`) does the I/O.

use simguard_sim::ipfix::FlowRecord;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Columns this module reads, by their Zeek names. Others are ignored.
const COLUMNS: [&str; 14] = [
    "ts",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "duration",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "label",
    "detailed-label",
];

/// IANA "reserved" protocol number, for Zeek's `unknown_transport`.
const PROTO_UNKNOWN: u8 = 255;

/// TCP flag bits (RFC 9293) as IPFIX tcpControlBits carries them.
const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;

/// A malformed line: which file, which line (1 = the header), which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: line {}: field {}: {}",
            self.file, self.line, self.field, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// The capture's verdict on a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Label {
    Benign,
    Malicious,
}

/// One connection (one row of the CSV).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    /// Line in the file (1 = the header).
    pub line: u64,
    /// First packet, Unix ms.
    pub ts_ms: i64,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 255 Zeek's unknown_transport).
    pub proto: u8,
    /// Empty in the log (a single packet, or no reply seen): 0.
    pub duration_ms: i64,
    /// Zeek's connection history (empty when missing).
    pub history: String,
    pub orig_pkts: u64,
    pub orig_ip_bytes: u64,
    pub resp_pkts: u64,
    pub resp_ip_bytes: u64,
    pub label: Label,
    /// `C&C`, `DDoS`, ...; None for `-` or empty.
    pub detailed: Option<String>,
}

impl Conn {
    /// The label the report groups rows by: `benign`, or the detailed label
    /// of a malicious row (`Malicious` when it has none).
    pub fn report_label(&self) -> String {
        match (self.label, &self.detailed) {
            (Label::Benign, _) => "benign".to_string(),
            (Label::Malicious, Some(d)) => d.clone(),
            (Label::Malicious, None) => "Malicious".to_string(),
        }
    }

    /// Last packet, Unix ms.
    pub fn end_ms(&self) -> i64 {
        self.ts_ms.saturating_add(self.duration_ms)
    }

    /// The IPFIX records of this connection: originator → responder with
    /// the originator's packets and IP bytes, and responder → originator
    /// when the responder sent anything. None for IPv6 (the exporter's
    /// template is IPv4 only); empty when neither side counted a packet.
    pub fn flow_records(&self) -> Option<Vec<FlowRecord>> {
        let (IpAddr::V4(o), IpAddr::V4(r)) = (self.orig_h, self.resp_h) else {
            return None;
        };
        let (of, rf) = if self.proto == 6 {
            tcp_flags(&self.history)
        } else {
            (0, 0)
        };
        let start = u64::try_from(self.ts_ms).unwrap_or(0);
        let end = u64::try_from(self.end_ms()).unwrap_or(start);
        let mut out = Vec::with_capacity(2);
        let mut push = |src: Ipv4Addr, dst: Ipv4Addr, sp, dp, flags, pkts, bytes| {
            if pkts > 0 || bytes > 0 {
                out.push(FlowRecord {
                    src,
                    dst,
                    src_port: sp,
                    dst_port: dp,
                    proto: self.proto,
                    tcp_flags: flags,
                    octets: bytes,
                    packets: pkts,
                    start_ms: start,
                    end_ms: end,
                });
            }
        };
        push(
            o,
            r,
            self.orig_p,
            self.resp_p,
            of,
            self.orig_pkts,
            self.orig_ip_bytes,
        );
        push(
            r,
            o,
            self.resp_p,
            self.orig_p,
            rf,
            self.resp_pkts,
            self.resp_ip_bytes,
        );
        Some(out)
    }
}

/// TCP flags of the originator's and the responder's packets from Zeek's
/// history: uppercase letters are the originator's, lowercase the
/// responder's. S: SYN; H: SYN+ACK; A: ACK; D (data): PSH+ACK; F: FIN;
/// R: RST. The other letters (retransmissions, gaps, checksums, windows)
/// say nothing about flags.
pub fn tcp_flags(history: &str) -> (u16, u16) {
    let (mut orig, mut resp) = (0u16, 0u16);
    for c in history.chars() {
        let bits = match c.to_ascii_uppercase() {
            'S' => SYN,
            'H' => SYN | ACK,
            'A' => ACK,
            'D' => PSH | ACK,
            'F' => FIN,
            'R' => RST,
            _ => continue,
        };
        if c.is_ascii_uppercase() {
            orig |= bits;
        } else {
            resp |= bits;
        }
    }
    (orig, resp)
}

/// Parses one capture. `file` names it in errors. Rows come back in file
/// order (IoT-23 files are not sorted by time).
pub fn parse(file: &str, text: &str) -> Result<Vec<Conn>, ParseError> {
    let err = |line: u64, field: &str, message: String| ParseError {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| err(1, "header", e.to_string()))?
        .clone();
    let mut idx = [0usize; COLUMNS.len()];
    for (slot, name) in idx.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| err(1, name, "column missing from the header".into()))?;
    }
    let mut rows = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                return Err(err(line, "record", e.to_string()));
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        let get = |i: usize| -> (&'static str, &str) {
            let name = COLUMNS[i];
            let v = rec.get(idx[i]).unwrap_or("").trim();
            // Zeek writes "-" for a missing value; the conversion to CSV
            // mostly made those empty, but not everywhere.
            (name, if v == "-" { "" } else { v })
        };
        let required = |i: usize| -> Result<&str, ParseError> {
            let (name, v) = get(i);
            if v.is_empty() {
                Err(err(line, name, "missing value".into()))
            } else {
                Ok(v)
            }
        };
        let count = |i: usize| -> Result<u64, ParseError> {
            let (name, v) = get(i);
            if v.is_empty() {
                return Ok(0);
            }
            v.parse::<u64>()
                .map_err(|_| err(line, name, format!("{v:?} is not a count")))
        };
        let addr = |i: usize| -> Result<IpAddr, ParseError> {
            let v = required(i)?;
            v.parse::<IpAddr>()
                .map_err(|_| err(line, COLUMNS[i], format!("{v:?} is not an IP address")))
        };
        let port = |i: usize| -> Result<u16, ParseError> {
            let v = required(i)?;
            v.parse::<u16>()
                .map_err(|_| err(line, COLUMNS[i], format!("{v:?} is not a port")))
        };

        let ts = required(0)?;
        let ts_ms = decimal_ms(ts)
            .ok_or_else(|| err(line, "ts", format!("{ts:?} is not a Unix time in seconds")))?;
        let (_, dur) = get(6);
        let duration_ms = if dur.is_empty() {
            0
        } else {
            decimal_ms(dur)
                .ok_or_else(|| err(line, "duration", format!("{dur:?} is not a duration")))?
        };
        let proto = match required(5)?.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "unknown_transport" => PROTO_UNKNOWN,
            other => {
                return Err(err(
                    line,
                    "proto",
                    format!("{other:?} is not tcp, udp, icmp or unknown_transport"),
                ))
            }
        };
        let label_text = required(12)?;
        let label = if label_text.eq_ignore_ascii_case("benign") {
            Label::Benign
        } else if label_text.eq_ignore_ascii_case("malicious") {
            Label::Malicious
        } else {
            return Err(err(
                line,
                "label",
                format!("{label_text:?} is neither benign nor malicious"),
            ));
        };
        let (_, detailed) = get(13);
        rows.push(Conn {
            line,
            ts_ms,
            orig_h: addr(1)?,
            orig_p: port(2)?,
            resp_h: addr(3)?,
            resp_p: port(4)?,
            proto,
            duration_ms,
            history: get(7).1.to_string(),
            orig_pkts: count(8)?,
            orig_ip_bytes: count(9)?,
            resp_pkts: count(10)?,
            resp_ip_bytes: count(11)?,
            label,
            detailed: (!detailed.is_empty()).then(|| detailed.to_string()),
        });
    }
    Ok(rows)
}

/// Seconds with an optional fraction ("1540469303", "0.114184") to whole
/// milliseconds, truncated. Exact: no floating point, so 1538478769.600293
/// does not become ...600.29299.
fn decimal_ms(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

/// The capture's device: the most frequent originator in private (RFC
/// 1918) IPv4 space, where the captured devices live (ties: the lowest address). None when no row has one.
pub fn device_address(rows: &[Conn]) -> Option<Ipv4Addr> {
    let mut n: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    for r in rows {
        if let IpAddr::V4(v) = r.orig_h {
            if v.is_private() {
                *n.entry(v).or_default() += 1;
            }
        }
    }
    // max_by_key keeps the last maximum; iterate in reverse so it is the lowest.
    n.into_iter().rev().max_by_key(|&(_, c)| c).map(|(a, _)| a)
}

/// The kind of finding a detailed label calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Scan,
    Ddos,
    CommandAndControl,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Scan => "scan",
            Family::Ddos => "DDoS",
            Family::CommandAndControl => "C&C",
        }
    }

    /// Finding types that count as flagging this family.
    pub fn accepted(self) -> &'static [&'static str] {
        match self {
            Family::Scan => &["scanning"],
            Family::Ddos => &["ddos"],
            Family::CommandAndControl => &["c2_channel", "new_destination"],
        }
    }

    /// The family of a detailed label (`C&C-HeartBeat`, `C&C-Torii` and
    /// `C&C-FileDownload` are C&C; `PartOfAHorizontalPortScan` is a scan);
    /// None for labels no detector is meant to cover (`FileDownload`,
    /// `Okiru`, `Attack`...).
    pub fn of(detailed: &str) -> Option<Family> {
        let d = detailed.to_ascii_lowercase();
        if d.starts_with("c&c") {
            Some(Family::CommandAndControl)
        } else if d.contains("ddos") {
            Some(Family::Ddos)
        } else if d.contains("scan") {
            Some(Family::Scan)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto,service,duration,orig_bytes,resp_bytes,conn_state,local_orig,local_resp,missed_bytes,history,orig_pkts,orig_ip_bytes,resp_pkts,resp_ip_bytes,tunnel_parents,label,detailed-label";

    fn text(lines: &[&str]) -> String {
        let mut s = String::from(HEADER);
        for l in lines {
            s.push('\n');
            s.push_str(l);
        }
        s.push('\n');
        s
    }

    #[test]
    fn parses_rows_with_empty_fields_and_both_label_cases() {
        let t = text(&[
            // Integer timestamp, lowercase label (honeypot 4-1).
            "1540469303,CGm6jB4dXK71ZDWUDh,192.168.1.132,58687,216.239.35.4,123,udp,,0.114184,48,48,SF,,,0,Dd,1,76,1,76,,benign,-",
            // Empty duration and byte counts, capitalised label (20-1).
            "1538479111.185870,C1,192.168.100.103,41234,66.85.157.90,443,tcp,,,,,S0,,,0,S,1,60,0,0,,Malicious,C&C-Torii",
            // Empty history (ICMP), Benign.
            "1537522822.965530,C2,192.168.2.3,8,8.8.8.8,0,icmp,,,,,OTH,,,0,,1,84,0,0,,Benign,-",
        ]);
        let rows = parse("x.csv", &t).unwrap();
        assert_eq!(rows.len(), 3);
        let a = &rows[0];
        assert_eq!(a.line, 2);
        assert_eq!(a.ts_ms, 1_540_469_303_000);
        assert_eq!(a.duration_ms, 114);
        assert_eq!(a.proto, 17);
        assert_eq!(a.label, Label::Benign);
        assert_eq!(a.detailed, None);
        assert_eq!(a.report_label(), "benign");
        let b = &rows[1];
        assert_eq!(b.line, 3);
        assert_eq!(b.ts_ms, 1_538_479_111_185);
        assert_eq!(b.duration_ms, 0);
        assert_eq!((b.orig_pkts, b.orig_ip_bytes, b.resp_pkts), (1, 60, 0));
        assert_eq!(b.label, Label::Malicious);
        assert_eq!(b.report_label(), "C&C-Torii");
        assert_eq!(b.resp_h, "66.85.157.90".parse::<IpAddr>().unwrap());
        let c = &rows[2];
        assert_eq!((c.proto, c.history.as_str()), (1, ""));
        assert_eq!(c.label, Label::Benign);
    }

    #[test]
    fn a_malformed_line_names_file_line_and_field() {
        let t = text(&[
            "1540469303,C,192.168.1.132,58687,216.239.35.4,123,udp,,0.1,48,48,SF,,,0,Dd,1,76,1,76,,benign,-",
            "1540469304,C,192.168.1.132,58687,216.239.35.4,123,udp,,0.1,48,48,SF,,,0,Dd,lots,76,1,76,,benign,-",
        ]);
        let e = parse("cap.csv", &t).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("cap.csv", 3, "orig_pkts")
        );
        assert!(
            e.to_string()
                .starts_with("cap.csv: line 3: field orig_pkts:"),
            "{e}"
        );

        let bad_ts =
            text(&["15404x,C,192.168.1.132,1,2.2.2.2,3,udp,,,,,S0,,,0,D,1,76,0,0,,benign,-"]);
        assert_eq!(parse("f", &bad_ts).unwrap_err().field, "ts");
        let bad_ip = text(&["1,C,192.168.1.300,1,2.2.2.2,3,udp,,,,,S0,,,0,D,1,76,0,0,,benign,-"]);
        assert_eq!(parse("f", &bad_ip).unwrap_err().field, "id.orig_h");
        let bad_label =
            text(&["1,C,192.168.1.3,1,2.2.2.2,3,udp,,,,,S0,,,0,D,1,76,0,0,,suspicious,-"]);
        assert_eq!(parse("f", &bad_label).unwrap_err().field, "label");
        let missing_port =
            text(&["1,C,192.168.1.3,,2.2.2.2,3,udp,,,,,S0,,,0,D,1,76,0,0,,benign,-"]);
        assert_eq!(parse("f", &missing_port).unwrap_err().field, "id.orig_p");
        let bad_proto = text(&["1,C,192.168.1.3,1,2.2.2.2,3,sctp,,,,,S0,,,0,D,1,76,0,0,,benign,-"]);
        assert_eq!(parse("f", &bad_proto).unwrap_err().field, "proto");
        // A short row is a CSV error on its own line.
        let short = text(&["1,C,192.168.1.3,1"]);
        let e = parse("f", &short).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "record"));
        // A header without a needed column.
        let e = parse("f", "ts,uid\n1,C\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "id.orig_h"));
    }

    #[test]
    fn exact_milliseconds() {
        assert_eq!(decimal_ms("1538478769.600293"), Some(1_538_478_769_600));
        assert_eq!(decimal_ms("3"), Some(3_000));
        assert_eq!(decimal_ms("0.5"), Some(500));
        assert_eq!(decimal_ms("41420.482745"), Some(41_420_482));
        assert_eq!(decimal_ms("-1"), None);
        assert_eq!(decimal_ms("1e9"), None);
        assert_eq!(decimal_ms(".5"), None);
    }

    #[test]
    fn history_to_flags() {
        // Full handshake with data and FINs both ways.
        assert_eq!(
            tcp_flags("ShADadfF"),
            (SYN | ACK | PSH | FIN, ACK | PSH | FIN | SYN | ACK)
        );
        // SYN only: an unanswered attempt.
        assert_eq!(tcp_flags("S"), (SYN, 0));
        // Responder reset; retransmission/gap letters ignored.
        assert_eq!(tcp_flags("ShADaCGr"), (SYN | ACK | PSH, SYN | ACK | RST));
        assert_eq!(tcp_flags("^d"), (0, PSH | ACK));
        assert_eq!(tcp_flags(""), (0, 0));
    }

    #[test]
    fn records_per_direction() {
        let t = text(&[
            "1547150789.067208,C,192.168.1.199,59222,46.101.251.172,80,tcp,http,1.686784,149,171750,SF,,,11584,ShADadttfF,122,7741,122,178102,,Malicious,C&C-FileDownload",
            "1547150790.793723,C,192.168.1.199,59224,46.101.251.172,80,tcp,,3.081233,0,0,S0,,,0,S,3,180,0,0,,Malicious,C&C",
            "1,C,fe80::1,5353,ff02::fb,5353,udp,,,,,S0,,,0,D,1,100,0,0,,benign,-",
        ]);
        let rows = parse("f", &t).unwrap();
        let r = rows[0].flow_records().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].src, Ipv4Addr::new(192, 168, 1, 199));
        assert_eq!((r[0].dst_port, r[0].packets, r[0].octets), (80, 122, 7741));
        assert_eq!(r[0].tcp_flags, SYN | ACK | PSH | FIN);
        assert_eq!(
            (r[0].start_ms, r[0].end_ms),
            (1_547_150_789_067, 1_547_150_790_753)
        );
        assert_eq!(r[1].src, Ipv4Addr::new(46, 101, 251, 172));
        assert_eq!((r[1].src_port, r[1].dst_port), (80, 59222));
        assert_eq!((r[1].packets, r[1].octets), (122, 178_102));
        assert_eq!(r[1].tcp_flags, SYN | ACK | PSH | FIN);
        // No answer: one record, SYN only.
        let r = rows[1].flow_records().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].tcp_flags, r[0].packets), (SYN, 3));
        // IPv6 is not exported.
        assert_eq!(rows[2].flow_records(), None);
    }

    #[test]
    fn device_is_the_most_frequent_private_originator() {
        let t = text(&[
            "1,C,0.0.0.0,68,255.255.255.255,67,udp,,,,,S0,,,0,D,1,300,0,0,,benign,-",
            "1,C,0.0.0.0,68,255.255.255.255,67,udp,,,,,S0,,,0,D,1,300,0,0,,benign,-",
            "1,C,0.0.0.0,68,255.255.255.255,67,udp,,,,,S0,,,0,D,1,300,0,0,,benign,-",
            "2,C,192.168.2.3,1,8.8.8.8,53,udp,,,,,S0,,,0,D,1,60,0,0,,benign,-",
            "3,C,192.168.2.3,2,8.8.8.8,53,udp,,,,,S0,,,0,D,1,60,0,0,,benign,-",
            "4,C,192.168.2.1,3,224.0.0.251,5353,udp,,,,,S0,,,0,D,1,60,0,0,,benign,-",
        ]);
        let rows = parse("f", &t).unwrap();
        assert_eq!(device_address(&rows), Some(Ipv4Addr::new(192, 168, 2, 3)));
        assert_eq!(device_address(&rows[..3]), None);
        // A tie goes to the lower address.
        assert_eq!(
            device_address(&[rows[4].clone(), rows[5].clone()]),
            Some(Ipv4Addr::new(192, 168, 2, 1))
        );
    }

    #[test]
    fn families() {
        assert_eq!(Family::of("C&C"), Some(Family::CommandAndControl));
        assert_eq!(Family::of("C&C-Torii"), Some(Family::CommandAndControl));
        assert_eq!(
            Family::of("C&C-FileDownload"),
            Some(Family::CommandAndControl)
        );
        assert_eq!(Family::of("DDoS"), Some(Family::Ddos));
        assert_eq!(Family::of("PartOfAHorizontalPortScan"), Some(Family::Scan));
        assert_eq!(Family::of("FileDownload"), None);
        assert_eq!(Family::of("Okiru"), None);
    }
}
