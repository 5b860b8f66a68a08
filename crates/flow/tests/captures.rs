//! Real exports: pmacct's IPFIX/NFv9 test captures (Cisco IOS-XR, Huawei) checked
//! field by field against nfacctd's expected decodes, and nDPI's NetFlow captures.
//! Data is read from `SIMGUARD_SHARED_DATA` (default `../shared/data` beside the
//! repository).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::pcap::udp_datagrams;
use simguard_flow::{Collector, CollectorOptions, DecodeSummary, ExporterKey, FlowRecord};

fn data_dir() -> PathBuf {
    std::env::var_os("SIMGUARD_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        })
}

fn pcap_dir(rel: &str) -> PathBuf {
    let p = data_dir().join("pcap").join(rel);
    assert!(
        p.exists(),
        "{} not found; set SIMGUARD_SHARED_DATA to the shared data directory",
        p.display()
    );
    p
}

/// What pmacct's output and ours are compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    tos: u8,
    /// (start, end) in whole seconds, when pmacct's aggregate includes them.
    times: Option<(i64, i64)>,
}

type Multiset = BTreeMap<Key, (u64, u64)>;

fn proto_number(name: &str) -> u8 {
    match name {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "ipv6-icmp" => 58,
        "vrrp" => 112,
        "gre" => 47,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("unknown ip_proto {other}")),
    }
}

fn secs(v: &serde_json::Value) -> Option<i64> {
    v.as_str()
        .map(|s| s.parse::<f64>().expect("timestamp") as i64)
}

/// nfacctd's expected flows, summed per key (pmacct aggregates on more
/// primitives than we keep, e.g. MPLS labels; sums make both sides comparable).
fn expected(path: &Path) -> (Multiset, bool) {
    let text = std::fs::read_to_string(path).expect("read expected output");
    let mut m = Multiset::new();
    let mut with_times = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let times = match (secs(&v["timestamp_start"]), secs(&v["timestamp_end"])) {
            (Some(s), Some(e)) => {
                with_times = true;
                Some((s, e))
            }
            _ => None,
        };
        let k = Key {
            src: v["ip_src"].as_str().expect("ip_src").parse().expect("ip"),
            dst: v["ip_dst"].as_str().expect("ip_dst").parse().expect("ip"),
            sport: v["port_src"].as_u64().expect("port_src") as u16,
            dport: v["port_dst"].as_u64().expect("port_dst") as u16,
            proto: proto_number(v["ip_proto"].as_str().expect("ip_proto")),
            tos: v["tos"].as_u64().expect("tos") as u8,
            times,
        };
        let e = m.entry(k).or_default();
        e.0 += v["packets"].as_u64().expect("packets");
        e.1 += v["bytes"].as_u64().expect("bytes");
    }
    (m, with_times)
}

/// pmacct's whole seconds of a decoded time. For NetFlow v9 it computes
/// `unix_secs - (sysUptime - first) / 1000` with integer division, i.e. it rounds
/// the age down and so the time *up* to the second; we keep milliseconds
/// (`unix_secs * 1000 - (sysUptime - first)`), whose ceiling is the same number.
/// IPFIX absolute times are truncated.
fn pmacct_secs(ms: i64, version: u16) -> i64 {
    if version == 9 {
        ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
    } else {
        ms.div_euclid(1000)
    }
}

fn ours(records: &[FlowRecord], versions: &[u16], with_times: bool, renormalize: bool) -> Multiset {
    let mut m = Multiset::new();
    for (r, &v) in records.iter().zip(versions) {
        let k = Key {
            src: r.src,
            dst: r.dst,
            sport: r.src_port,
            dport: r.dst_port,
            proto: r.proto,
            tos: r.tos,
            times: with_times.then(|| (pmacct_secs(r.start_ms, v), pmacct_secs(r.end_ms, v))),
        };
        let scale = if renormalize { r.sampling as u64 } else { 1 };
        let e = m.entry(k).or_default();
        e.0 += r.packets * scale;
        e.1 += r.bytes * scale;
    }
    m
}

struct Run {
    records: Vec<FlowRecord>,
    /// Export version of each record.
    versions: Vec<u16>,
    total: DecodeSummary,
    collector: Collector,
}

/// Feeds every traffic-NN.pcap of a test directory, in order, to one collector
/// (as the test's nfacctd received them), exporter = the capture's source IP.
fn run(dir: &Path) -> Run {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("traffic-") && n.ends_with(".pcap")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no traffic-NN.pcap in {}", dir.display());
    let mut c = Collector::new(CollectorOptions::default());
    let mut records = Vec::new();
    let mut versions = Vec::new();
    let mut total = DecodeSummary::default();
    for f in &files {
        for d in udp_datagrams(f) {
            let s = c
                .decode(d.src, &d.payload, d.ts_ms, &mut records)
                .unwrap_or_else(|e| panic!("{} frame {}: {e}", f.display(), d.frame));
            versions.resize(records.len(), s.version);
            total.records += s.records;
            total.templates += s.templates;
            total.options_records += s.options_records;
            total.pending_sets += s.pending_sets;
            total.released_records += s.released_records;
            total.skipped_sets += s.skipped_sets;
        }
    }
    Run {
        records,
        versions,
        total,
        collector: c,
    }
}

/// Compares and returns (matched expected keys, total expected keys), printing
/// every difference.
fn compare(name: &str, exp: &Multiset, got: &Multiset) -> (usize, usize) {
    let mut matched = 0;
    for (k, v) in exp {
        match got.get(k) {
            Some(g) if g == v => matched += 1,
            Some(g) => eprintln!("{name}: {k:?}: expected (packets, bytes) {v:?}, got {g:?}"),
            None => eprintln!("{name}: {k:?} {v:?} expected, not decoded"),
        }
    }
    for (k, v) in got {
        if !exp.contains_key(k) {
            eprintln!("{name}: {k:?} {v:?} decoded, not in pmacct's output");
        }
    }
    eprintln!("{name}: {matched}/{} expected aggregates match", exp.len());
    (matched, exp.len())
}

/// `scale` multiplies our counters on top of renormalization (for a rate that
/// came from pmacct's configuration, not from the export).
fn check_pmacct_output(rel: &str, output: &str, renormalize: bool, scale: u64) -> Run {
    let dir = pcap_dir(&format!("pmacct-ipfix-nfv9/{rel}"));
    let r = run(&dir);
    let (exp, with_times) = expected(&dir.join(output));
    let mut got = ours(&r.records, &r.versions, with_times, renormalize);
    for v in got.values_mut() {
        *v = (v.0 * scale, v.1 * scale);
    }
    let (matched, total) = compare(rel, &exp, &got);
    assert_eq!(
        matched, total,
        "{rel}: every pmacct aggregate must match (see stderr)"
    );
    assert_eq!(got.len(), exp.len(), "{rel}: no extra flows");
    r
}

fn check_pmacct(rel: &str, renormalize: bool) -> Run {
    check_pmacct_output(rel, "output-flow-00.json", renormalize, 1)
}

#[test]
fn pmacct_100_ipfix_cisco() {
    // Two observation domains of one ASR9k, templates 260 (IPv4) and 263 (IPv6)
    // with flowStart/EndMilliseconds, MPLS labels, 8-byte counters.
    let r = check_pmacct("100-IPFIXv10-CISCO", false);
    assert_eq!(r.records.len(), 12);
    assert_eq!((r.total.templates, r.total.pending_sets), (2, 0));
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let ids = |domain| {
        r.collector.template_ids(
            10,
            ExporterKey {
                exporter: ip("138.187.0.13"),
                domain,
            },
        )
    };
    assert_eq!((ids(851968), ids(917504)), (vec![260], vec![263]));
}

#[test]
fn pmacct_101_nfv9_cisco() {
    // NFv9 template 313 with both IPv4 and IPv6 address fields and sysUptime times.
    let r = check_pmacct("101-NFv9-CISCO-cust_primitives", false);
    assert_eq!(r.records.len(), 51);
    assert!(r
        .records
        .iter()
        .all(|f| f.src.is_ipv4() && f.end_ms >= f.start_ms));
}

#[test]
fn pmacct_102_nfv9_two_source_ids_and_configured_sampling() {
    // Two source ids of one exporter address, each with its own 313 and 260.
    let r = check_pmacct("102-NFv9-CISCO-f2rd-pretag-sampling-reload", true);
    assert_eq!(r.collector.template_count(), 4);
    // The export carries FLOW_SAMPLER_ID but no sampler options, so the rate is 1.
    assert!(r.records.iter().all(|f| f.sampling == 1));
    // After a map reload nfacctd renormalizes with 1000 from its sampling-01.map
    // (pmacct configuration, not in the capture): exactly ours x 1000.
    check_pmacct_output(
        "102-NFv9-CISCO-f2rd-pretag-sampling-reload",
        "output-flow-01.json",
        true,
        1000,
    );
}

#[test]
fn pmacct_103_ipfix_cisco() {
    check_pmacct("103-IPFIXv10-CISCO-pretag-JSON_encoding", false);
}

#[test]
fn pmacct_104_ipfix_ipv6_sampling_option() {
    // Options template 257 (scope selectorId; samplingSize 1 / samplingPopulation
    // 256) then data template 342 naming selector 1: pmacct renormalizes by 256,
    // we report sampling = 256 and unscaled counters.
    let r = check_pmacct("104-IPFIXv10-IPv6-CISCO-sampling_option", true);
    assert_eq!(r.records.len(), 3);
    assert!(r.records.iter().all(|f| f.sampling == 256));
    assert_eq!((r.records[1].packets, r.records[1].bytes), (60, 5760));
    let key = ExporterKey {
        exporter: "2a02:a90:4007:700::54".parse().unwrap(),
        domain: 0,
    };
    assert_eq!(r.collector.sampling_rate(10, key, true, Some(1)), Some(256));
    // Its data templates use flowStart/EndSysUpTime without any
    // systemInitTimeMilliseconds: times fall back to the export time.
    assert_eq!(
        (r.records[0].start_ms, r.records[0].end_ms),
        (1_675_952_573_000, 1_675_952_573_000)
    );
}

#[test]
fn pmacct_106_ipfix_huawei() {
    // Huawei: enterprise (PEN 2011) fields, paddingOctets, a variable-length
    // field, systemInitTimeMilliseconds inside each record, and an IPv6 tunnel
    // template whose inner IPv4 5-tuple repeats ports/protocol (last one wins).
    let r = check_pmacct("106-IPFIXv10-HUAWEI-vrf_name", true);
    assert_eq!(r.records.len(), 3);
    assert_eq!(r.total.options_records, 1);
}

#[test]
fn pmacct_110_multiple_sources() {
    // The captures of 100, 101 and 102 from three exporters into one collector.
    let r = check_pmacct("110-IPFIXv10-NFv9-multiple-sources", false);
    assert_eq!(r.collector.template_count(), 2 + 1 + 4);
}

#[test]
fn pmacct_111_ipv6_ipv4_sources() {
    // One NFv9 exporter over IPv4 and one IPFIX exporter over IPv6.
    check_pmacct("111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources", false);
}

#[test]
fn pmacct_112_options_reassignment() {
    let r = check_pmacct("112-IPFIXv10-CISCO-options-map-reassignment", false);
    // Data sets 341, 313, 348 and 342 have no template anywhere in the capture:
    // held, never released (pmacct drops them too).
    assert_eq!(r.total.pending_sets, 4);
    assert_eq!(r.collector.pending_sets(), 4);
    // Options template 338 (scope observationDomainId) carries
    // systemInitTimeMilliseconds (2026-07-01T12:07:31.878Z, as tshark shows it);
    // template 347's sysUpTime times become absolute: within a minute before
    // the export times (1783600514 s and 1783600538 s).
    assert_eq!(r.records.len(), 9);
    for f in &r.records {
        assert!(
            f.start_ms <= f.end_ms && f.end_ms <= 1_783_600_538_000,
            "{f:?}"
        );
        assert!(f.start_ms > 1_783_600_514_000 - 60_000, "{f:?}");
    }
    // Template 347 came from source port 61853, its data from 65156 (the
    // exporter's socket changed): keyed on address + domain, it still decodes.
    // Options template 257: one selector per sampling rate.
    let key = ExporterKey {
        exporter: "2001:db8:90::1".parse().unwrap(),
        domain: 33312,
    };
    let rates: Vec<Option<u32>> = [1, 2, 3, 4, 6]
        .iter()
        .map(|&id| r.collector.sampling_rate(10, key, true, Some(id)))
        .collect();
    assert_eq!(
        rates,
        vec![Some(1), Some(1), Some(256), Some(1024), Some(4096)]
    );
}

#[test]
fn ndpi_netflow_v9_without_templates() {
    // 10 NFv9 datagrams on UDP 2057 with data sets 258/259/260/262/263 and no
    // template: everything is held, nothing decoded; expiry drops it all.
    let path = pcap_dir("ndpi/netflowv9.pcap");
    let mut c = Collector::default();
    let mut out = Vec::new();
    let mut held = 0;
    let mut last = 0;
    for d in udp_datagrams(&path) {
        assert_eq!(d.dst_port, 2057);
        let s = c
            .decode(d.src, &d.payload, d.ts_ms, &mut out)
            .expect("valid v9");
        assert_eq!((s.version, s.records), (9, 0));
        held += s.pending_sets;
        last = d.ts_ms;
    }
    assert_eq!(held, 23);
    assert!(out.is_empty());
    assert_eq!(c.pending_sets(), 23);
    assert_eq!(c.expire(last), 0);
    assert_eq!(c.expire(last + 30_001), 23);
    assert_eq!((c.pending_sets(), c.pending_bytes()), (0, 0));
}

#[test]
fn ndpi_fritzbox_ipfix_options_templates() {
    // One IPFIX datagram from an AVM Fritz!Box: data template 461 with AVM
    // (PEN 26866) variable-length fields, options templates 466 (meteringProcessId
    // scope, samplingPacketInterval/Space) and 467. No data.
    let path = pcap_dir("ndpi/netflow-fritz.pcap");
    let d = udp_datagrams(&path);
    assert_eq!(d.len(), 1);
    let mut c = Collector::default();
    let mut out = Vec::new();
    let s = c
        .decode(d[0].src, &d[0].payload, d[0].ts_ms, &mut out)
        .expect("valid IPFIX");
    assert_eq!(
        s,
        DecodeSummary {
            version: 10,
            templates: 3,
            ..DecodeSummary::default()
        }
    );
    let key = ExporterKey {
        exporter: "192.168.0.1".parse().unwrap(),
        domain: 262400,
    };
    assert_eq!(c.template_ids(10, key), vec![461, 466, 467]);
    // The state survives a persistence round trip.
    let mut restored = Collector::default();
    assert_eq!(restored.import_state(&c.export_state()), Ok(3));
}
