//! Hand-built datagrams for each version and each feature, with exact expected
//! values, plus malformed datagrams that must leave the collector untouched.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{f, fe, v5, Msg, Rec, V5Rec};
use simguard_flow::{
    Collector, CollectorOptions, DecodeSummary, ExporterKey, FlowError, FlowRecord,
};

const NOW: i64 = 1_700_000_100_000;
const EXPORT: u32 = 1_700_000_000;
const EXPORT_MS: i64 = EXPORT as i64 * 1000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn exporter() -> IpAddr {
    ip("192.0.2.1")
}

/// The IPv4 5-tuple + counters + ms times template softflowd and most probes use.
const V4_TEMPLATE: &[common::F] = &[
    f(8, 4),
    f(12, 4),
    f(7, 2),
    f(11, 2),
    f(4, 1),
    f(6, 1),
    f(5, 1),
    f(1, 8),
    f(2, 8),
    f(152, 8),
    f(153, 8),
    f(10, 4),
    f(14, 4),
    f(61, 1),
];

#[allow(clippy::too_many_arguments)]
fn v4_rec(
    src: &str,
    dst: &str,
    sp: u16,
    dp: u16,
    proto: u8,
    bytes: u64,
    packets: u64,
    start: i64,
) -> Vec<u8> {
    Rec::new()
        .ip(ip(src))
        .ip(ip(dst))
        .u(sp as u64, 2)
        .u(dp as u64, 2)
        .u(proto as u64, 1)
        .u(0x12, 1)
        .u(0x28, 1)
        .u(bytes, 8)
        .u(packets, 8)
        .u(start as u64, 8)
        .u(start as u64 + 1500, 8)
        .u(3, 4)
        .u(7, 4)
        .u(1, 1)
        .done()
}

fn decode(c: &mut Collector, d: &[u8]) -> (DecodeSummary, Vec<FlowRecord>) {
    let mut out = Vec::new();
    let s = c.decode(exporter(), d, NOW, &mut out).expect("decodes");
    (s, out)
}

// ---------------------------------------------------------------------------
// NetFlow v5

#[test]
fn v5_records_times_and_sampling() {
    let recs = [
        V5Rec {
            src: [10, 45, 0, 7],
            dst: [93, 184, 216, 34],
            input: 2,
            output: 3,
            packets: 12,
            bytes: 4321,
            first: 990_000,
            last: 999_500,
            sport: 40001,
            dport: 443,
            flags: 0x1b,
            proto: 6,
            tos: 0x20,
        },
        V5Rec {
            src: [10, 45, 0, 7],
            dst: [8, 8, 8, 8],
            packets: 1,
            bytes: 58,
            // sysUptime wrapped between first packet and export.
            first: u32::MAX - 999,
            last: 500,
            sport: 5353,
            dport: 53,
            proto: 17,
            ..V5Rec::default()
        },
    ];
    // Mode bits 01 (deterministic) + interval 100 in the low 14 bits.
    let d = v5(1_000_000, EXPORT, 250_000_000, 0x4000 | 100, &recs);
    let mut c = Collector::default();
    let (s, out) = decode(&mut c, &d);
    assert_eq!(
        s,
        DecodeSummary {
            version: 5,
            records: 2,
            ..Default::default()
        }
    );
    let export = EXPORT_MS + 250;
    assert_eq!(
        out[0],
        FlowRecord {
            src: ip("10.45.0.7"),
            dst: ip("93.184.216.34"),
            src_port: 40001,
            dst_port: 443,
            proto: 6,
            tcp_flags: 0x1b,
            tos: 0x20,
            bytes: 4321,
            packets: 12,
            sampling: 100,
            start_ms: export - 10_000,
            end_ms: export - 500,
            input_if: 2,
            output_if: 3,
            direction: None,
        }
    );
    // Uptime 500 at export vs first = 2^32 - 1000: the counter wrapped in
    // between; the flow started 1500 ms before export.
    let d = v5(500, EXPORT, 0, 0, &recs[1..]);
    let (_, out) = decode(&mut c, &d);
    assert_eq!(out[0].start_ms, EXPORT_MS - 1500);
    assert_eq!(out[0].end_ms, EXPORT_MS);
    assert_eq!(out[0].sampling, 1, "sampling field 0 means unsampled");
    assert_eq!(c.template_count(), 0);
}

#[test]
fn v5_truncated() {
    let mut c = Collector::default();
    let mut out = Vec::new();
    let d = v5(1, EXPORT, 0, 0, &[V5Rec::default(), V5Rec::default()]);
    assert_eq!(
        c.decode(exporter(), &d[..24 + 48 + 10], NOW, &mut out),
        Err(FlowError::BadLength {
            declared: 24 + 96,
            actual: 24 + 58
        })
    );
    assert_eq!(
        c.decode(exporter(), &d[..20], NOW, &mut out),
        Err(FlowError::TooShort { need: 24, got: 20 })
    );
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// NetFlow v9

#[test]
fn v9_template_and_data_in_one_datagram() {
    let mut m = Msg::v9(1_000_000, EXPORT, 7);
    m.template(
        300,
        &[
            f(8, 4),
            f(12, 4),
            f(7, 2),
            f(11, 2),
            f(4, 1),
            f(6, 1),
            f(5, 1),
            f(1, 4),
            f(2, 4),
            f(22, 4),
            f(21, 4),
            f(10, 2),
            f(14, 2),
            f(61, 1),
        ],
    );
    let r = Rec::new()
        .ip(ip("10.45.0.7"))
        .ip(ip("93.184.216.34"))
        .u(40001, 2)
        .u(443, 2)
        .u(6, 1)
        .u(0x02, 1)
        .u(0, 1)
        .u(1500, 4)
        .u(3, 4)
        .u(990_000, 4)
        .u(995_000, 4)
        .u(4, 2)
        .u(5, 2)
        .u(1, 1)
        .done();
    m.data(300, &[r.clone(), r]);
    let mut c = Collector::default();
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(
        s,
        DecodeSummary {
            version: 9,
            records: 2,
            templates: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        out[1],
        FlowRecord {
            src: ip("10.45.0.7"),
            dst: ip("93.184.216.34"),
            src_port: 40001,
            dst_port: 443,
            proto: 6,
            tcp_flags: 2,
            tos: 0,
            bytes: 1500,
            packets: 3,
            sampling: 1,
            start_ms: EXPORT_MS - 10_000,
            end_ms: EXPORT_MS - 5_000,
            input_if: 4,
            output_if: 5,
            direction: Some(1),
        }
    );
    assert_eq!(c.template_count(), 1);
    assert_eq!(
        c.template_ids(
            9,
            ExporterKey {
                exporter: exporter(),
                domain: 7
            }
        ),
        vec![300]
    );
}

#[test]
fn v9_template_with_both_families_picks_the_used_one() {
    // Cisco IOS-XR template 313 carries IPv4 and IPv6 addresses; the unused family is zero.
    let tpl = [f(27, 16), f(28, 16), f(8, 4), f(12, 4), f(1, 4)];
    let mut m = Msg::v9(1000, EXPORT, 0);
    m.template(313, &tpl);
    let v6 = Rec::new()
        .ip(ip("2001:db8::1"))
        .ip(ip("2001:db8::2"))
        .ip(ip("0.0.0.0"))
        .ip(ip("0.0.0.0"))
        .u(60, 4)
        .done();
    let v4 = Rec::new()
        .ip(ip("::"))
        .ip(ip("::"))
        .ip(ip("10.0.0.1"))
        .ip(ip("10.0.0.2"))
        .u(61, 4)
        .done();
    m.data(313, &[v6, v4]);
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(
        (out[0].src, out[0].dst, out[0].bytes),
        (ip("2001:db8::1"), ip("2001:db8::2"), 60)
    );
    assert_eq!(
        (out[1].src, out[1].dst, out[1].bytes),
        (ip("10.0.0.1"), ip("10.0.0.2"), 61)
    );
}

#[test]
fn v9_options_sampling() {
    let key = ExporterKey {
        exporter: exporter(),
        domain: 3,
    };
    let mut c = Collector::default();
    // Options template 256: scope System (type 1, 4 bytes), SAMPLING_INTERVAL (34)
    // and SAMPLING_ALGORITHM (35): an exporter-wide rate.
    let mut m = Msg::v9(5000, EXPORT, 3);
    m.options_template(256, &[f(1, 4)], &[f(34, 4), f(35, 1)]);
    m.data(256, &[Rec::new().u(0, 4).u(64, 4).u(2, 1).done()]);
    // Options template 257: FLOW_SAMPLER_ID + MODE + RANDOM_INTERVAL (Cisco sampler table).
    m.options_template(257, &[f(1, 4)], &[f(48, 1), f(49, 1), f(50, 4)]);
    m.data(257, &[Rec::new().u(0, 4).u(5, 1).u(2, 1).u(1000, 4).done()]);
    // Data template naming the sampler, and one that does not.
    m.template(400, &[f(8, 4), f(1, 4), f(48, 1)]);
    m.template(401, &[f(8, 4), f(1, 4)]);
    m.template(402, &[f(8, 4), f(1, 4), f(34, 2)]);
    m.data(
        400,
        &[Rec::new().ip(ip("10.0.0.1")).u(100, 4).u(5, 1).done()],
    );
    m.data(
        400,
        &[Rec::new().ip(ip("10.0.0.2")).u(100, 4).u(9, 1).done()],
    );
    m.data(401, &[Rec::new().ip(ip("10.0.0.3")).u(100, 4).done()]);
    m.data(
        402,
        &[Rec::new().ip(ip("10.0.0.4")).u(100, 4).u(10, 2).done()],
    );
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.records, s.options_records, s.templates), (4, 2, 5));
    let rates: Vec<u32> = out.iter().map(|r| r.sampling).collect();
    // sampler 5 → 1000; unknown sampler 9 → the exporter-wide 64; no id → 64;
    // in-record SAMPLING_INTERVAL → 10.
    assert_eq!(rates, vec![1000, 64, 64, 10]);
    assert_eq!(c.sampling_rate(9, key, false, Some(5)), Some(1000));
    assert_eq!(c.sampling_rate(9, key, false, None), Some(64));
    // The scope field (type 1 = System) must not be read as IN_BYTES.
    assert_eq!(out[2].bytes, 100);
}

// ---------------------------------------------------------------------------
// IPFIX

#[test]
fn ipfix_basic_and_summary() {
    let mut m = Msg::ipfix(EXPORT, 42);
    m.template(256, V4_TEMPLATE);
    let start = EXPORT_MS - 60_000;
    m.data(
        256,
        &[
            v4_rec("10.45.0.7", "93.184.216.34", 40001, 443, 6, 6260, 19, start),
            v4_rec("10.45.0.7", "8.8.8.8", 5353, 53, 17, 438, 6, start + 1),
        ],
    );
    let mut c = Collector::default();
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(
        s,
        DecodeSummary {
            version: 10,
            records: 2,
            templates: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        out[0],
        FlowRecord {
            src: ip("10.45.0.7"),
            dst: ip("93.184.216.34"),
            src_port: 40001,
            dst_port: 443,
            proto: 6,
            tcp_flags: 0x12,
            tos: 0x28,
            bytes: 6260,
            packets: 19,
            sampling: 1,
            start_ms: start,
            end_ms: start + 1500,
            input_if: 3,
            output_if: 7,
            direction: Some(1),
        }
    );
    assert_eq!(out[1].start_ms, start + 1);
    assert_eq!(c.templates_changed(), 1);
}

#[test]
fn ipfix_time_encodings() {
    let ntp = |unix_ms: i64| -> u64 {
        let secs = (unix_ms / 1000) as u64 + 2_208_988_800;
        let frac = ((unix_ms % 1000) as u64 * (1u64 << 32)) / 1000 + 1;
        (secs << 32) | frac
    };
    let t0: i64 = 1_699_999_000_250;
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(150, 4), f(151, 4)]); // seconds
    m.template(257, &[f(154, 8), f(155, 8)]); // µs (NTP)
    m.template(258, &[f(156, 8), f(157, 8)]); // ns (NTP)
    m.template(259, &[f(22, 4), f(21, 4), f(160, 8)]); // sysUpTime + in-record init
    m.template(260, &[f(22, 4), f(21, 4)]); // sysUpTime, init from options
    m.template(261, &[f(8, 4)]); // no times
    m.template(262, &[f(158, 4), f(159, 4)]); // delta µs before export
    m.data(
        256,
        &[Rec::new().u(1_699_999_000, 4).u(1_699_999_001, 4).done()],
    );
    m.data(257, &[Rec::new().u(ntp(t0), 8).u(ntp(t0 + 7), 8).done()]);
    m.data(258, &[Rec::new().u(ntp(t0), 8).u(ntp(t0 + 9), 8).done()]);
    m.data(
        259,
        &[Rec::new()
            .u(1000, 4)
            .u(2000, 4)
            .u(1_600_000_000_000, 8)
            .done()],
    );
    m.data(260, &[Rec::new().u(1000, 4).u(2000, 4).done()]);
    m.data(261, &[Rec::new().ip(ip("1.2.3.4")).done()]);
    m.data(262, &[Rec::new().u(5_000_000, 4).u(1_000, 4).done()]);
    let (_, out) = decode(&mut c, &m.build());
    let times: Vec<(i64, i64)> = out.iter().map(|r| (r.start_ms, r.end_ms)).collect();
    assert_eq!(
        times,
        vec![
            (1_699_999_000_000, 1_699_999_001_000),
            (t0, t0 + 7),
            (t0, t0 + 9),
            (1_600_000_001_000, 1_600_000_002_000),
            // systemInitTimeMilliseconds unknown: export time.
            (EXPORT_MS, EXPORT_MS),
            (EXPORT_MS, EXPORT_MS),
            (EXPORT_MS - 5_000, EXPORT_MS - 1),
        ]
    );
    // Cisco sends systemInitTimeMilliseconds in an options record (template 338 in
    // pmacct's capture 112): later sysUpTime records become absolute.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.options_template(338, &[f(149, 4)], &[f(160, 8)]);
    m.data(338, &[Rec::new().u(1, 4).u(1_650_000_000_000, 8).done()]);
    m.data(260, &[Rec::new().u(1000, 4).u(2000, 4).done()]);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(s.options_records, 1);
    assert_eq!(
        (out[0].start_ms, out[0].end_ms),
        (1_650_000_001_000, 1_650_000_002_000)
    );
}

#[test]
fn ipfix_variable_length_and_enterprise_fields() {
    let tpl = [
        f(8, 4),
        f(82, 65535),           // interfaceName, variable
        fe(7, 2, 9),            // enterprise 9 element 7: NOT sourceTransportPort
        fe(1000, 65535, 29305), // enterprise variable-length
        f(7, 2),
        f(11, 2),
        f(94, 65535), // applicationDescription, variable
        f(1, 4),
    ];
    let long = vec![b'x'; 300];
    let r1 = Rec::new()
        .ip(ip("10.1.1.1"))
        .varlen(b"Gi0/0/0")
        .u(9999, 2)
        .varlen(b"")
        .u(1234, 2)
        .u(80, 2)
        .varlen(&long) // 3-byte length form
        .u(777, 4)
        .done();
    let r2 = Rec::new()
        .ip(ip("10.1.1.2"))
        .varlen3(b"Te0/1") // 3-byte form for a short value is legal
        .u(8888, 2)
        .varlen(b"abc")
        .u(4321, 2)
        .u(443, 2)
        .varlen(b"")
        .u(888, 4)
        .done();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &tpl);
    m.data(256, &[r1, r2]);
    let mut c = Collector::default();
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(s.records, 2);
    let got: Vec<(IpAddr, u16, u16, u64)> = out
        .iter()
        .map(|r| (r.src, r.src_port, r.dst_port, r.bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            (ip("10.1.1.1"), 1234, 80, 777),
            (ip("10.1.1.2"), 4321, 443, 888)
        ]
    );
}

#[test]
fn ipfix_enterprise_fields_in_fixed_template() {
    // A PEN field with a standard-looking id must be skipped, its 4-byte PEN
    // consumed in the template, and later offsets stay right.
    let tpl = [fe(8, 4, 2011), f(8, 4), fe(1, 8, 2011), f(1, 4)];
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &tpl);
    m.data(
        256,
        &[Rec::new()
            .ip(ip("9.9.9.9"))
            .ip(ip("10.0.0.9"))
            .u(u64::MAX, 8)
            .u(55, 4)
            .done()],
    );
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!((out[0].src, out[0].bytes), (ip("10.0.0.9"), 55));
}

#[test]
fn ipfix_reduced_size_encoding() {
    // octetDeltaCount in 3 bytes, packetDeltaCount in 1, ports in 1, interfaces in 2,
    // tcpControlBits in 2 (IPFIX's size), protocol in 1.
    let tpl = [
        f(8, 4),
        f(1, 3),
        f(2, 1),
        f(7, 1),
        f(11, 2),
        f(10, 2),
        f(14, 1),
        f(6, 2),
        f(4, 1),
        f(85, 5),
    ];
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &tpl);
    m.data(
        256,
        &[Rec::new()
            .ip(ip("10.0.0.1"))
            .u(0x0A_BCDE, 3)
            .u(200, 1)
            .u(53, 1)
            .u(1024, 2)
            .u(515, 2)
            .u(9, 1)
            .u(0x0112, 2)
            .u(17, 1)
            .u(0x01_0000_0000, 5)
            .done()],
    );
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    let r = out[0];
    assert_eq!(
        (r.bytes, r.packets, r.src_port, r.dst_port),
        (0x0A_BCDE, 200, 53, 1024)
    );
    assert_eq!(
        (r.input_if, r.output_if, r.tcp_flags, r.proto),
        (515, 9, 0x12, 17)
    );
}

#[test]
fn ipfix_total_counts_are_a_fallback() {
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(85, 8), f(86, 8), f(23, 8), f(24, 8)]);
    m.template(257, &[f(85, 8), f(1, 8)]);
    m.data(
        256,
        &[Rec::new().u(1000, 8).u(10, 8).u(5, 8).u(6, 8).done()],
    );
    m.data(257, &[Rec::new().u(1000, 8).u(400, 8).done()]);
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(
        (out[0].bytes, out[0].packets),
        (1000, 10),
        "post* counts ignored"
    );
    assert_eq!(out[1].bytes, 400, "delta wins over total");
}

#[test]
fn repeated_elements_keep_the_last_occurrence() {
    // Huawei/Cisco tunnel templates: outer IPv6 header, then inner IPv4 5-tuple
    // repeating ports/protocol. pmacct reports the inner flow; so do we.
    let tpl = [
        f(27, 16),
        f(28, 16),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
    ];
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &tpl);
    m.data(
        256,
        &[Rec::new()
            .ip(ip("2001:db8:53::1"))
            .ip(ip("2001:db8:9:e140::"))
            .u(0, 2)
            .u(0, 2)
            .u(4, 1)
            .ip(ip("192.0.2.110"))
            .ip(ip("192.0.2.14"))
            .u(2222, 2)
            .u(1111, 2)
            .u(17, 1)
            .done()],
    );
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    let r = out[0];
    assert_eq!(
        (r.src, r.dst, r.src_port, r.dst_port, r.proto),
        (ip("192.0.2.110"), ip("192.0.2.14"), 2222, 1111, 17)
    );
}

#[test]
fn ipfix_ipv6_and_ip_version_field() {
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(60, 1), f(8, 4), f(12, 4), f(27, 16), f(28, 16)]);
    m.data(
        256,
        &[Rec::new()
            .u(6, 1)
            .ip(ip("10.0.0.1"))
            .ip(ip("10.0.0.2"))
            .ip(ip("2001:db8::a"))
            .ip(ip("2001:db8::b"))
            .done()],
    );
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(
        out[0].src,
        IpAddr::V6("2001:db8::a".parse::<Ipv6Addr>().unwrap())
    );
}

#[test]
fn template_withdrawal_and_redefinition() {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(8, 4), f(1, 4)]);
    m.template(257, &[f(8, 4)]);
    decode(&mut c, &m.build());
    assert_eq!((c.template_count(), c.templates_changed()), (2, 2));

    // A byte-identical refresh changes nothing.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(8, 4), f(1, 4)]);
    let (s, _) = decode(&mut c, &m.build());
    assert_eq!(s.templates, 1);
    assert_eq!((c.template_count(), c.templates_changed()), (2, 2));

    // Redefinition: same id, new layout, applies to data after it in the same datagram.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.data(256, &[Rec::new().ip(ip("10.0.0.1")).u(5, 4).done()]);
    m.template(256, &[f(1, 2), f(8, 4)]);
    m.data(256, &[Rec::new().u(6, 2).ip(ip("10.0.0.2")).done()]);
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(
        out.iter().map(|r| (r.src, r.bytes)).collect::<Vec<_>>(),
        vec![(ip("10.0.0.1"), 5), (ip("10.0.0.2"), 6)]
    );
    assert_eq!((c.template_count(), c.templates_changed()), (2, 3));

    // Withdrawal: data after it waits for a new definition.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.withdraw(256);
    m.data(256, &[Rec::new().u(7, 2).ip(ip("10.0.0.3")).done()]);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.records, s.pending_sets, out.len()), (0, 1, 0));
    assert_eq!((c.template_count(), c.templates_changed()), (1, 4));
    assert_eq!(
        c.template_ids(
            10,
            ExporterKey {
                exporter: exporter(),
                domain: 1
            }
        ),
        vec![257]
    );

    // "Withdraw all data templates" (template id 2, RFC 7011 §8.1) keeps options templates.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.options_template(300, &[f(302, 4)], &[f(34, 4)]);
    m.set(2, &[0, 2, 0, 0]);
    let (s, _) = decode(&mut c, &m.build());
    assert_eq!(s.templates, 2);
    assert_eq!(
        c.template_ids(
            10,
            ExporterKey {
                exporter: exporter(),
                domain: 1
            }
        ),
        vec![300]
    );
}

#[test]
fn templates_are_scoped_by_exporter_and_domain() {
    let mut c = Collector::default();
    let mut out = Vec::new();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(8, 4)]);
    c.decode(ip("192.0.2.1"), &m.build(), NOW, &mut out)
        .unwrap();
    let mut d = Msg::ipfix(EXPORT, 1);
    d.data(256, &[Rec::new().ip(ip("10.0.0.1")).done()]);
    let d1 = d.build();
    let mut d = Msg::ipfix(EXPORT, 2);
    d.data(256, &[Rec::new().ip(ip("10.0.0.1")).done()]);
    let d2 = d.build();
    // Other exporter, same domain: unknown.
    assert_eq!(
        c.decode(ip("192.0.2.2"), &d1, NOW, &mut out)
            .unwrap()
            .pending_sets,
        1
    );
    // Same exporter, other domain: unknown.
    assert_eq!(
        c.decode(ip("192.0.2.1"), &d2, NOW, &mut out)
            .unwrap()
            .pending_sets,
        1
    );
    // Same exporter seen through a dual-stack socket: same scope.
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(c.decode(mapped, &d1, NOW, &mut out).unwrap().records, 1);
    // NetFlow v9 with the same numeric source id is a different scope.
    let mut v9 = Msg::v9(0, EXPORT, 1);
    v9.data(256, &[Rec::new().ip(ip("10.0.0.1")).done()]);
    assert_eq!(
        c.decode(ip("192.0.2.1"), &v9.build(), NOW, &mut out)
            .unwrap()
            .pending_sets,
        1
    );
}

#[test]
fn ipfix_options_sampling_selector_and_sampler() {
    let key = ExporterKey {
        exporter: exporter(),
        domain: 0,
    };
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 0);
    // Cisco IOS-XR (pmacct capture 104): selectorId scope, random n-out-of-N.
    m.options_template(
        257,
        &[f(302, 4)],
        &[f(305, 4), f(304, 2), f(309, 4), f(310, 4), f(335, 65535)],
    );
    m.data(
        257,
        &[Rec::new()
            .u(1, 4)
            .u(1, 4)
            .u(3, 2)
            .u(1, 4)
            .u(256, 4)
            .varlen(b"SAMPLER")
            .done()],
    );
    // Systematic count-based: 1 taken, 99 skipped → 1 in 100.
    m.options_template(258, &[f(302, 4)], &[f(305, 4), f(306, 4)]);
    m.data(258, &[Rec::new().u(2, 4).u(1, 4).u(99, 4).done()]);
    // samplerId (48) with samplerRandomInterval (50).
    m.options_template(259, &[f(48, 2)], &[f(50, 4)]);
    m.data(259, &[Rec::new().u(7, 2).u(512, 4).done()]);
    let (s, _) = decode(&mut c, &m.build());
    assert_eq!((s.templates, s.options_records, s.records), (3, 3, 0));
    assert_eq!(c.sampling_rate(10, key, true, Some(1)), Some(256));
    assert_eq!(c.sampling_rate(10, key, true, Some(2)), Some(100));
    assert_eq!(c.sampling_rate(10, key, false, Some(7)), Some(512));
    let changed = c.templates_changed();

    // Data in a later datagram links through selectorId / samplerId.
    let mut m = Msg::ipfix(EXPORT, 0);
    m.template(342, &[f(8, 4), f(2, 8), f(302, 4)]);
    m.template(343, &[f(8, 4), f(2, 8), f(48, 1)]);
    m.data(
        342,
        &[
            Rec::new().ip(ip("10.0.0.1")).u(60, 8).u(1, 4).done(),
            Rec::new().ip(ip("10.0.0.2")).u(60, 8).u(2, 4).done(),
            Rec::new().ip(ip("10.0.0.3")).u(60, 8).u(77, 4).done(),
        ],
    );
    m.data(343, &[Rec::new().ip(ip("10.0.0.4")).u(1, 8).u(7, 1).done()]);
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(
        out.iter().map(|r| r.sampling).collect::<Vec<_>>(),
        vec![256, 100, 1, 512]
    );
    assert_eq!(out[0].packets, 60, "counters are not scaled");
    assert_eq!(c.templates_changed(), changed + 2);

    // Re-announcing the same rates is not a change; a new rate is.
    let mut m = Msg::ipfix(EXPORT, 0);
    m.data(258, &[Rec::new().u(2, 4).u(1, 4).u(99, 4).done()]);
    decode(&mut c, &m.build());
    assert_eq!(c.templates_changed(), changed + 2);
    let mut m = Msg::ipfix(EXPORT, 0);
    m.data(258, &[Rec::new().u(2, 4).u(1, 4).u(9, 4).done()]);
    decode(&mut c, &m.build());
    assert_eq!(c.sampling_rate(10, key, true, Some(2)), Some(10));
    assert_eq!(c.templates_changed(), changed + 3);
}

#[test]
fn data_before_template_is_held_then_released() {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 5);
    m.data(
        256,
        &[v4_rec("10.45.0.7", "1.1.1.1", 1, 2, 6, 100, 1, EXPORT_MS)],
    );
    m.data(
        256,
        &[v4_rec("10.45.0.7", "1.1.1.2", 1, 2, 6, 200, 2, EXPORT_MS)],
    );
    // Options data before its options template, too: applied on release.
    m.data(300, &[Rec::new().u(0, 4).u(10, 4).done()]);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.records, s.pending_sets, out.len()), (0, 3, 0));
    assert_eq!(c.pending_sets(), 3);

    let mut m = Msg::ipfix(EXPORT + 1, 5);
    m.options_template(300, &[f(149, 4)], &[f(34, 4)]);
    m.template(256, V4_TEMPLATE);
    m.data(
        256,
        &[v4_rec("10.45.0.7", "1.1.1.3", 1, 2, 6, 300, 3, EXPORT_MS)],
    );
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.records, s.released_records, s.templates), (1, 2, 2));
    assert_eq!(out.len(), 3);
    // This datagram's own record first, then the released ones in arrival order;
    // released records use the exporter-wide rate from the released options record.
    assert_eq!(
        out.iter()
            .map(|r| (r.bytes, r.sampling))
            .collect::<Vec<_>>(),
        vec![(300, 1), (100, 10), (200, 10)]
    );
    assert_eq!(c.pending_sets(), 0);
    assert_eq!(c.pending_bytes(), 0);
}

#[test]
fn data_before_template_in_the_same_datagram() {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 5);
    m.data(
        256,
        &[v4_rec("10.45.0.7", "1.1.1.1", 1, 2, 6, 100, 1, EXPORT_MS)],
    );
    m.template(256, V4_TEMPLATE);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(
        (s.records, s.pending_sets, s.released_records, out.len()),
        (0, 1, 1, 1)
    );
    assert_eq!(c.pending_sets(), 0);
}

#[test]
fn pending_expiry_and_bounds() {
    let opts = CollectorOptions {
        pending_max_packets: 2,
        pending_max_age_ms: 30_000,
        ..Default::default()
    };
    let mut c = Collector::new(opts);
    let mut out = Vec::new();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.data(256, &[Rec::new().u(1, 4).done()]);
    c.decode(exporter(), &m.build(), 1_000, &mut out).unwrap();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.data(257, &[Rec::new().u(2, 4).done()]);
    m.data(258, &[Rec::new().u(3, 4).done()]);
    let s = c.decode(exporter(), &m.build(), 20_000, &mut out).unwrap();
    assert_eq!(
        (s.pending_sets, s.pending_dropped),
        (2, 1),
        "oldest (256) dropped"
    );
    assert_eq!(c.pending_sets(), 2);
    assert_eq!(c.expire(50_000), 0, "age 30 s is not older than 30 s");
    assert_eq!(c.expire(50_001), 2);
    assert_eq!((c.pending_sets(), c.pending_bytes()), (0, 0));
    // The template arrives too late: nothing is released.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(257, &[f(1, 4)]);
    let s = c.decode(exporter(), &m.build(), 60_000, &mut out).unwrap();
    assert_eq!(s.released_records, 0);
    assert!(out.is_empty());
}

#[test]
fn max_templates_refuses_new_ones() {
    let mut c = Collector::new(CollectorOptions {
        max_templates: 1,
        ..Default::default()
    });
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(8, 4)]);
    m.template(257, &[f(8, 4)]);
    m.data(257, &[Rec::new().ip(ip("10.0.0.1")).done()]);
    let (s, out) = decode(&mut c, &m.build());
    // The datagram's own data still decodes with its template; it is just not kept.
    assert_eq!((s.templates_refused, s.records, out.len()), (1, 1, 1));
    assert_eq!(c.template_count(), 1);
    // Redefining a kept one is still allowed.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &[f(12, 4)]);
    let (s, _) = decode(&mut c, &m.build());
    assert_eq!(s.templates_refused, 0);
}

#[test]
fn template_set_padding_and_reserved_sets() {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    // Template record followed by 4 zero bytes of padding in the same set.
    let mut body = vec![1, 0, 0, 1, 0, 8, 0, 4];
    body.extend_from_slice(&[0, 0, 0, 0]);
    m.set(2, &body);
    m.set(100, &[1, 2, 3, 4]); // reserved set id: skipped
    let (s, _) = decode(&mut c, &m.build());
    assert_eq!((s.templates, s.skipped_sets), (1, 1));
    assert_eq!(c.template_count(), 1);
}

// ---------------------------------------------------------------------------
// State persistence

#[test]
fn export_import_roundtrip() {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 9);
    m.template(256, V4_TEMPLATE);
    m.template(
        260,
        &[f(8, 4), f(82, 65535), fe(5, 4, 2011), f(302, 4), f(22, 4)],
    );
    m.options_template(257, &[f(302, 4)], &[f(305, 4), f(306, 4)]);
    m.data(257, &[Rec::new().u(1, 4).u(1, 4).u(31, 4).done()]);
    m.options_template(338, &[f(149, 4)], &[f(160, 8)]);
    m.data(338, &[Rec::new().u(9, 4).u(1_650_000_000_000, 8).done()]);
    decode(&mut c, &m.build());
    let mut v9 = Msg::v9(1000, EXPORT, 3);
    v9.options_template(256, &[f(1, 4)], &[f(34, 4)]);
    v9.data(256, &[Rec::new().u(0, 4).u(8, 4).done()]);
    v9.template(300, &[f(8, 4), f(1, 4)]);
    c.decode(ip("2001:db8::7"), &v9.build(), NOW, &mut Vec::new())
        .unwrap();

    let state = c.export_state();
    assert_eq!(state, c.export_state(), "deterministic");
    let mut d = Collector::default();
    assert_eq!(d.import_state(&state), Ok(6));
    assert_eq!(d.template_count(), 6);
    assert_eq!(d.export_state(), state);
    assert_eq!(
        d.templates_changed(),
        0,
        "importing is not a change to persist"
    );

    // The restored collector decodes data without waiting for templates, with
    // the restored sampling rate and system init time.
    let mut m = Msg::ipfix(EXPORT, 9);
    m.data(
        260,
        &[Rec::new()
            .ip(ip("10.0.0.1"))
            .varlen(b"x")
            .u(0, 4)
            .u(1, 4)
            .u(500, 4)
            .done()],
    );
    let mut out = Vec::new();
    let s = d.decode(exporter(), &m.build(), NOW, &mut out).unwrap();
    assert_eq!(s.records, 1);
    assert_eq!((out[0].sampling, out[0].start_ms), (32, 1_650_000_000_500));
    let mut v9 = Msg::v9(1000, EXPORT, 3);
    v9.data(300, &[Rec::new().ip(ip("10.0.0.2")).u(10, 4).done()]);
    out.clear();
    d.decode(ip("2001:db8::7"), &v9.build(), NOW, &mut out)
        .unwrap();
    assert_eq!((out[0].bytes, out[0].sampling), (10, 8));

    // Garbage and truncations are refused and change nothing.
    let before = d.export_state();
    for bad in [&b"nope"[..], &state[..state.len() - 1], &[]] {
        assert!(matches!(d.import_state(bad), Err(FlowError::BadState(_))));
    }
    let mut longer = state.clone();
    longer.push(0);
    assert_eq!(
        d.import_state(&longer),
        Err(FlowError::BadState("trailing bytes"))
    );
    assert_eq!(d.export_state(), before);
    // Too many templates for this collector's bound.
    let mut small = Collector::new(CollectorOptions {
        max_templates: 2,
        ..Default::default()
    });
    assert!(small.import_state(&state).is_err());
    assert_eq!(small.template_count(), 0);
}

// ---------------------------------------------------------------------------
// Malformed datagrams: an error, and no state change at all.

struct Snapshot {
    state: Vec<u8>,
    pending: usize,
    changed: u64,
    count: usize,
}

fn snapshot(c: &Collector) -> Snapshot {
    Snapshot {
        state: c.export_state(),
        pending: c.pending_sets(),
        changed: c.templates_changed(),
        count: c.template_count(),
    }
}

fn assert_rejected(c: &mut Collector, d: &[u8], want: &str) -> FlowError {
    let before = snapshot(c);
    let mut out = vec![FlowRecord::default()];
    let err = c
        .decode(exporter(), d, NOW, &mut out)
        .expect_err("must be rejected");
    assert_eq!(err.reason(), want, "{err}");
    assert_eq!(out, vec![FlowRecord::default()], "out untouched");
    let after = snapshot(c);
    assert_eq!(before.state, after.state, "state unchanged after {err}");
    assert_eq!(
        (before.pending, before.changed, before.count),
        (after.pending, after.changed, after.count)
    );
    err
}

/// A collector with some state, so "unchanged" means something.
fn seeded() -> Collector {
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, V4_TEMPLATE);
    m.options_template(257, &[f(302, 4)], &[f(34, 4)]);
    m.data(257, &[Rec::new().u(1, 4).u(100, 4).done()]);
    m.data(999, &[Rec::new().u(1, 4).done()]); // held
    decode(&mut c, &m.build());
    assert_eq!((c.template_count(), c.pending_sets()), (2, 1));
    c
}

/// Valid state-changing sets (new template, redefinition, withdrawal, new
/// sampling rate, held data) followed by `tail`: the tail's error must undo all.
fn with_changes_then(tail: impl FnOnce(&mut Msg)) -> Vec<u8> {
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(300, &[f(8, 4)]);
    m.template(256, &[f(12, 4)]);
    m.data(257, &[Rec::new().u(1, 4).u(7, 4).done()]);
    m.withdraw(257);
    m.data(998, &[Rec::new().u(1, 4).done()]);
    m.data(300, &[Rec::new().ip(ip("10.0.0.1")).done()]);
    tail(&mut m);
    m.build()
}

#[test]
fn malformed_headers() {
    let mut c = seeded();
    assert_eq!(
        assert_rejected(&mut c, &[], "too_short"),
        FlowError::TooShort { need: 2, got: 0 }
    );
    let ipfix = with_changes_then(|_| {});
    assert_rejected(&mut c, &ipfix[..10], "too_short");
    let mut v9 = Msg::v9(0, EXPORT, 0).build();
    v9.truncate(19);
    assert_rejected(&mut c, &v9, "too_short");
    assert_eq!(
        assert_rejected(&mut c, &[0, 7, 0, 0], "bad_version"),
        FlowError::BadVersion(7)
    );
    // IPFIX length larger than the datagram (truncated in transit).
    let mut d = ipfix.clone();
    d.truncate(d.len() - 3);
    assert_rejected(&mut c, &d, "bad_length");
    // Length below the header size.
    let mut d = ipfix.clone();
    d[2..4].copy_from_slice(&12u16.to_be_bytes());
    assert_rejected(&mut c, &d, "bad_length");
}

#[test]
fn malformed_sets_undo_everything() {
    let mut c = seeded();
    // A set whose length overruns the message.
    let d = with_changes_then(|m| {
        m.sets.extend_from_slice(&[1, 0, 0, 40, 0, 0, 0, 0]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_set");
    // A zero-length set (an endless loop for a naive parser).
    let d = with_changes_then(|m| {
        m.sets.extend_from_slice(&[1, 0, 0, 0]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_set");
    // Set length 2 (< header).
    let d = with_changes_then(|m| {
        m.sets.extend_from_slice(&[1, 0, 0, 2]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_set");
    // Trailing 2 bytes in an IPFIX message.
    let d = with_changes_then(|m| {
        m.sets.extend_from_slice(&[0, 0]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_set");
    // Template with a field count far beyond its set.
    let d = with_changes_then(|m| {
        m.set(2, &[1, 44, 0x40, 0, 0, 8, 0, 4]);
    });
    assert_eq!(
        assert_rejected(&mut c, &fix_len(d), "bad_template"),
        FlowError::BadTemplate {
            id: 300,
            reason: "field count overruns set"
        }
    );
    // Options template with scope count > field count, and scope 0.
    for scope in [3u16, 0] {
        let d = with_changes_then(|m| {
            let mut b = vec![1, 45, 0, 2];
            b.extend_from_slice(&scope.to_be_bytes());
            b.extend_from_slice(&[0, 8, 0, 4, 0, 12, 0, 4]);
            m.set(3, &b);
        });
        assert_rejected(&mut c, &fix_len(d), "bad_template");
    }
    // Template id below 256 that is not padding.
    let d = with_changes_then(|m| {
        m.set(2, &[0, 200, 0, 1, 0, 8, 0, 4]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_template");
    // Enterprise bit set but the PEN is cut off.
    let d = with_changes_then(|m| {
        m.set(2, &[1, 46, 0, 1, 0x80, 8, 0, 4, 0, 0]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_template");
    // A template whose records would be empty (all zero-length fields).
    let d = with_changes_then(|m| {
        m.set(2, &[1, 47, 0, 2, 0, 8, 0, 0, 0, 12, 0, 0]);
    });
    assert_rejected(&mut c, &fix_len(d), "bad_template");
    // Variable-length field overrunning its data set.
    let d = with_changes_then(|m| {
        m.template(310, &[f(8, 4), f(82, 65535)]);
        m.data(
            310,
            &[Rec::new()
                .ip(ip("10.0.0.1"))
                .bytes(&[20, b'a', b'b'])
                .done()],
        );
    });
    assert_eq!(
        assert_rejected(&mut c, &fix_len(d), "bad_record"),
        FlowError::BadRecord {
            template: 310,
            reason: "field overruns set"
        }
    );
    // 3-byte varlen prefix cut off.
    let d = with_changes_then(|m| {
        m.template(311, &[f(8, 4), f(82, 65535)]);
        m.data(
            311,
            &[Rec::new().ip(ip("10.0.0.1")).bytes(&[255, 0]).done()],
        );
    });
    assert_rejected(&mut c, &fix_len(d), "bad_record");
    // v9: template without fields; variable length in v9; options lengths not /4.
    let mut m = Msg::v9(0, EXPORT, 1);
    m.set(0, &[1, 0, 0, 0]);
    assert_rejected(&mut c, &m.build(), "bad_template");
    let mut m = Msg::v9(0, EXPORT, 1);
    m.template(300, &[f(82, 65535)]);
    assert_rejected(&mut c, &m.build(), "bad_template");
    let mut m = Msg::v9(0, EXPORT, 1);
    m.set(1, &[1, 0, 0, 3, 0, 4, 0, 1, 0, 4, 0, 34, 0, 4, 0, 0]);
    assert_rejected(&mut c, &m.build(), "bad_template");
    // After all that, the collector still works.
    let mut m = Msg::ipfix(EXPORT, 1);
    m.data(
        256,
        &[v4_rec("10.0.0.1", "10.0.0.2", 1, 2, 17, 10, 1, EXPORT_MS)],
    );
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.records, out[0].bytes), (1, 10));
}

/// Rewrites the IPFIX header length after appending raw bytes to the sets.
fn fix_len(mut d: Vec<u8>) -> Vec<u8> {
    let n = d.len() as u16;
    d[2..4].copy_from_slice(&n.to_be_bytes());
    d
}

#[test]
fn the_same_changes_apply_when_valid() {
    // Counterpart of the malformed tests: without the bad tail, the changes land.
    let mut c = seeded();
    let (s, out) = decode(&mut c, &with_changes_then(|_| {}));
    assert_eq!(
        (s.templates, s.records, s.options_records, s.pending_sets),
        (3, 1, 1, 1)
    );
    assert_eq!(out[0].src, ip("10.0.0.1"));
    let key = ExporterKey {
        exporter: exporter(),
        domain: 1,
    };
    assert_eq!(c.template_ids(10, key), vec![256, 300]);
    assert_eq!(c.sampling_rate(10, key, true, Some(1)), Some(7));
    assert_eq!(c.pending_sets(), 2);
}

#[test]
fn error_reasons_are_stable() {
    let all = [
        (FlowError::TooShort { need: 1, got: 0 }, "too_short"),
        (FlowError::BadVersion(1), "bad_version"),
        (
            FlowError::BadLength {
                declared: 1,
                actual: 0,
            },
            "bad_length",
        ),
        (
            FlowError::BadSet {
                offset: 0,
                reason: "",
            },
            "bad_set",
        ),
        (FlowError::BadTemplate { id: 0, reason: "" }, "bad_template"),
        (
            FlowError::BadRecord {
                template: 0,
                reason: "",
            },
            "bad_record",
        ),
        (FlowError::BadState(""), "bad_state"),
    ];
    for (e, r) in all {
        assert_eq!(e.reason(), r);
    }
}

#[test]
fn many_template_records_in_one_datagram() {
    // 3000 definitions, a "withdraw all", more definitions and data in between:
    // staged lookups must see exactly the state at each point of the datagram.
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    for chunk in (256u16..3256).collect::<Vec<_>>().chunks(1000) {
        let mut body = Vec::new();
        for &id in chunk {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&[0, 1, 0, 1, 0, 4]); // one field: octetDeltaCount, 4 bytes
        }
        m.set(2, &body);
    }
    m.data(300, &[Rec::new().u(1, 4).done()]);
    m.set(2, &[0, 2, 0, 0]); // withdraw all data templates
    m.data(301, &[Rec::new().u(2, 4).done()]); // held
    m.template(302, &[f(1, 4)]);
    m.data(302, &[Rec::new().u(3, 4).done()]);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!((s.templates, s.records, s.pending_sets), (3002, 2, 1));
    assert_eq!(out.iter().map(|r| r.bytes).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(c.template_count(), 1);
    assert_eq!(c.pending_sets(), 1);
}

#[test]
fn variable_length_template_with_many_empty_fields() {
    // 5000 zero-length unknown fields around a varlen and a kept field: decoded
    // correctly (and cheaply: empty fields are dropped from the record walk).
    let mut tpl = vec![f(82, 65535)];
    tpl.extend(std::iter::repeat_n(f(100, 0), 5000));
    tpl.push(f(1, 2));
    let mut m = Msg::ipfix(EXPORT, 1);
    m.template(256, &tpl);
    m.data(
        256,
        &[
            Rec::new().varlen(b"a").u(7, 2).done(),
            Rec::new().varlen(b"").u(8, 2).done(),
        ],
    );
    let mut c = Collector::default();
    let (_, out) = decode(&mut c, &m.build());
    assert_eq!(out.iter().map(|r| r.bytes).collect::<Vec<_>>(), vec![7, 8]);
}

#[test]
fn options_records_later_ones_win_within_a_datagram() {
    let key = ExporterKey {
        exporter: exporter(),
        domain: 1,
    };
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.options_template(300, &[f(302, 4)], &[f(34, 4)]);
    m.template(301, &[f(1, 4), f(302, 4)]);
    m.data(
        300,
        &[
            Rec::new().u(1, 4).u(10, 4).done(),
            Rec::new().u(1, 4).u(20, 4).done(),
        ],
    );
    m.data(301, &[Rec::new().u(5, 4).u(1, 4).done()]);
    m.data(300, &[Rec::new().u(1, 4).u(30, 4).done()]);
    m.data(301, &[Rec::new().u(6, 4).u(1, 4).done()]);
    let (s, out) = decode(&mut c, &m.build());
    assert_eq!(s.options_records, 3);
    assert_eq!(
        out.iter().map(|r| r.sampling).collect::<Vec<_>>(),
        vec![20, 30]
    );
    assert_eq!(c.sampling_rate(10, key, true, Some(1)), Some(30));
}

#[test]
fn adversarial_datagrams_stay_linear() {
    // Thousands of template withdrawals and options records interleaved with
    // thousands of data sets: every lookup is O(1), so this takes milliseconds
    // (a linear scan per data set would take seconds).
    let mut c = Collector::default();
    let mut m = Msg::ipfix(EXPORT, 1);
    m.options_template(300, &[f(302, 1)], &[f(34, 1)]);
    m.template(301, &[f(1, 1), f(302, 1)]);
    decode(&mut c, &m.build());
    let mut m = Msg::ipfix(EXPORT, 1);
    let mut withdrawals = Vec::new();
    for id in 1000u16..6000 {
        withdrawals.extend_from_slice(&id.to_be_bytes());
        withdrawals.extend_from_slice(&[0, 0]);
    }
    m.set(2, &withdrawals);
    let options: Vec<Vec<u8>> = (0..6000u32).map(|i| vec![(i % 250) as u8, 7]).collect();
    m.data(300, &options);
    for _ in 0..4000 {
        m.set(301, &[9, 3]);
    }
    let d = m.build();
    assert!(d.len() < 65536);
    let t = std::time::Instant::now();
    let (s, out) = decode(&mut c, &d);
    let took = t.elapsed();
    assert_eq!(
        (s.templates, s.options_records, s.records),
        (5000, 6000, 4000)
    );
    assert!(out.iter().all(|r| r.bytes == 9 && r.sampling == 7));
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
}
