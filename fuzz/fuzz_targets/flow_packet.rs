#![no_main]

//! Feeds arbitrary bytes to the flow collector as a sequence of datagrams from
//! two exporters, so that templates defined by one input datagram are used by
//! the next (deep paths: data decoding, pending release, options, withdrawal).
//! Invariants: never panics; an error appends nothing and changes no state;
//! exported state re-imports to the same bytes.

use libfuzzer_sys::fuzz_target;
use simguard_flow::{Collector, CollectorOptions};
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let opts = CollectorOptions {
        pending_max_packets: 16,
        max_templates: 64,
        ..CollectorOptions::default()
    };
    let mut c = Collector::new(opts);
    let mut out = Vec::new();
    // Split the input into datagrams at each 0xFF 0xFE marker (a cheap framing
    // the fuzzer learns quickly); datagrams alternate between two exporters.
    for (i, d) in frames(data).into_iter().enumerate() {
        let exporter = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 2) as u8 + 1));
        let state = c.export_state();
        let pending = c.pending_sets();
        let before = out.len();
        match c.decode(exporter, d, i as i64 * 1000, &mut out) {
            Ok(s) => assert_eq!(out.len() - before, s.records + s.released_records),
            Err(e) => {
                assert!(!e.reason().is_empty());
                assert_eq!(out.len(), before);
                assert_eq!(c.export_state(), state);
                assert_eq!(c.pending_sets(), pending);
            }
        }
        if out.len() > 4096 {
            out.clear();
        }
    }
    c.expire(i64::MAX);
    assert_eq!(c.pending_sets(), 0);
    let state = c.export_state();
    let mut d = Collector::new(opts);
    assert_eq!(d.import_state(&state).map(|_| ()), Ok(()));
    assert_eq!(d.export_state(), state);
    let _ = d.import_state(data);
});

/// Splits at each 0xFF 0xFE marker.
fn frames(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] == 0xFE {
            parts.push(&data[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    parts.push(&data[start..]);
    parts
}
