//! Property tests: arbitrary bytes never panic and never change state on error;
//! random valid templates and records survive an encode → decode round trip
//! (through the small encoder in `common`), whatever the order of template and
//! data.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{f, fe, Msg, Rec, F};
use proptest::prelude::*;
use simguard_flow::{Collector, CollectorOptions, FlowRecord};

const EXPORT: u32 = 1_700_000_000;

fn exporter() -> IpAddr {
    "192.0.2.9".parse().unwrap()
}

/// A collector that already knows a few templates, so that random data sets
/// sometimes hit one.
fn primed() -> Collector {
    let mut c = Collector::new(CollectorOptions::default());
    for (version, domain) in [(10u16, 0u32), (9, 0)] {
        let mut m = if version == 10 {
            Msg::ipfix(EXPORT, domain)
        } else {
            Msg::v9(1000, EXPORT, domain)
        };
        m.template(256, &[f(8, 4), f(12, 4), f(1, 4)]);
        m.template(257, &[f(7, 2), f(2, 1)]);
        if version == 10 {
            m.template(258, &[f(8, 4), f(82, 65535), fe(3, 2, 9)]);
        }
        m.options_template(259, &[f(302, 4)], &[f(34, 4)]);
        c.decode(exporter(), &m.build(), 0, &mut Vec::new())
            .expect("primer decodes");
    }
    c
}

/// Arbitrary bytes behind a plausible header, to get past the first checks.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let body = proptest::collection::vec(any::<u8>(), 0..600);
    (0u8..5, body, any::<u16>()).prop_map(|(kind, mut body, id)| {
        match kind {
            0 => body,
            1 => {
                let mut d = vec![0, 5];
                d.extend_from_slice(&body);
                d
            }
            2 => {
                let mut d = vec![
                    0, 9, 0, 1, 0, 0, 0, 1, 0x65, 0x53, 0xf1, 0, 0, 0, 0, 1, 0, 0, 0, 0,
                ];
                d.append(&mut body);
                d
            }
            _ => {
                // IPFIX with a correct length and a set header pointing at a
                // known template id now and then.
                let mut d = vec![0, 10, 0, 0, 0x65, 0x53, 0xf1, 0, 0, 0, 0, 1, 0, 0, 0, 0];
                if kind == 4 && body.len() >= 4 {
                    let sid = 256 + id % 4;
                    body[0..2].copy_from_slice(&sid.to_be_bytes());
                    let l = body.len() as u16;
                    body[2..4].copy_from_slice(&l.to_be_bytes());
                }
                d.append(&mut body);
                let n = d.len() as u16;
                d[2..4].copy_from_slice(&n.to_be_bytes());
                d
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_datagrams_never_panic_and_errors_change_nothing(d in datagram()) {
        let mut c = primed();
        let before = (c.export_state(), c.pending_sets(), c.templates_changed());
        let mut out = Vec::new();
        match c.decode(exporter(), &d, 5, &mut out) {
            Ok(s) => prop_assert_eq!(out.len(), s.records + s.released_records),
            Err(e) => {
                prop_assert!(out.is_empty());
                prop_assert!(!e.reason().is_empty());
                prop_assert_eq!((c.export_state(), c.pending_sets(), c.templates_changed()), before);
            }
        }
        c.expire(1_000_000);
        prop_assert_eq!(c.pending_sets(), 0);
    }

    #[test]
    fn arbitrary_state_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut c = primed();
        let before = c.export_state();
        let mut with_magic = b"SGFL\x01".to_vec();
        with_magic.extend_from_slice(&b);
        for input in [&b[..], &with_magic[..]] {
            if c.import_state(input).is_err() {
                prop_assert_eq!(c.export_state(), before.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Round trip

/// A generated field.
#[derive(Debug, Clone)]
enum G {
    /// A kept unsigned element in `w` bytes (reduced size when < 8).
    Int {
        ie: u16,
        w: u8,
    },
    V4 {
        ie: u16,
    },
    V6 {
        ie: u16,
    },
    /// An element we do not keep.
    Other {
        ie: u16,
        len: u16,
    },
    /// Enterprise-specific (IPFIX): skipped whatever its id.
    Ent {
        ie: u16,
        len: u16,
        pen: u32,
    },
    /// Variable length (IPFIX): skipped.
    Var {
        ie: u16,
    },
}

const INTS: &[u16] = &[1, 2, 4, 5, 6, 7, 10, 11, 14, 34, 61, 85, 86];
const OTHERS: &[u16] = &[
    3, 9, 13, 15, 16, 17, 18, 31, 32, 56, 80, 89, 136, 234, 235, 243, 245,
];

fn g() -> impl Strategy<Value = G> {
    prop_oneof![
        4 => (proptest::sample::select(INTS), 1u8..=8).prop_map(|(ie, w)| G::Int { ie, w }),
        1 => proptest::sample::select(&[8u16, 12][..]).prop_map(|ie| G::V4 { ie }),
        1 => proptest::sample::select(&[27u16, 28][..]).prop_map(|ie| G::V6 { ie }),
        1 => (proptest::sample::select(OTHERS), 0u16..20).prop_map(|(ie, len)| G::Other { ie, len }),
        1 => (0u16..0x7fff, 0u16..12, 1u32..).prop_map(|(ie, len, pen)| G::Ent { ie, len, pen }),
        1 => proptest::sample::select(&[82u16, 83, 94][..]).prop_map(|ie| G::Var { ie }),
    ]
}

/// splitmix64: values derived from one seed keep the strategy simple.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn spec(x: &G) -> F {
    match *x {
        G::Int { ie, w } => f(ie, w as u16),
        G::V4 { ie } => f(ie, 4),
        G::V6 { ie } => f(ie, 16),
        G::Other { ie, len } => f(ie, len),
        G::Ent { ie, len, pen } => fe(ie, len, pen),
        G::Var { ie } => f(ie, 65535),
    }
}

/// Encodes one record and computes what the decoder must make of it.
fn record(fields: &[G], rng: &mut Rng, export_ms: i64) -> (Vec<u8>, FlowRecord) {
    let mut rec = Rec::new();
    let mut ints: HashMap<u16, u64> = HashMap::new();
    let mut v4: HashMap<u16, [u8; 4]> = HashMap::new();
    let mut v6: HashMap<u16, [u8; 16]> = HashMap::new();
    for x in fields {
        match *x {
            G::Int { ie, w } => {
                // Small values now and then, so that zero and one show up.
                let v = if rng.next() % 4 == 0 {
                    rng.next() % 3
                } else {
                    rng.next()
                };
                let mask = if w == 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * w)) - 1
                };
                rec = rec.u(v & mask, w as usize);
                ints.insert(ie, v & mask); // the last occurrence wins
            }
            G::V4 { ie } => {
                let a: [u8; 4] = if rng.next() % 3 == 0 {
                    [0; 4]
                } else {
                    rng.bytes(4).try_into().unwrap()
                };
                rec = rec.bytes(&a);
                v4.insert(ie, a);
            }
            G::V6 { ie } => {
                let a: [u8; 16] = rng.bytes(16).try_into().unwrap();
                rec = rec.bytes(&a);
                v6.insert(ie, a);
            }
            G::Other { len, .. } | G::Ent { len, .. } => rec = rec.bytes(&rng.bytes(len as usize)),
            G::Var { .. } => {
                let n = (rng.next() % 300) as usize;
                let b = rng.bytes(n);
                rec = if rng.next() % 2 == 0 {
                    rec.varlen(&b)
                } else {
                    rec.varlen3(&b)
                };
            }
        }
    }
    let has_v4 = !v4.is_empty();
    let has_v6 = !v6.is_empty();
    let s4 = v4.get(&8).copied().unwrap_or([0; 4]);
    let d4 = v4.get(&12).copied().unwrap_or([0; 4]);
    let use_v6 = has_v6 && !(has_v4 && (s4 != [0; 4] || d4 != [0; 4]));
    let (src, dst) = if use_v6 {
        (
            IpAddr::V6(Ipv6Addr::from(v6.get(&27).copied().unwrap_or([0; 16]))),
            IpAddr::V6(Ipv6Addr::from(v6.get(&28).copied().unwrap_or([0; 16]))),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(s4)),
            IpAddr::V4(Ipv4Addr::from(d4)),
        )
    };
    let i = |ie: u16| ints.get(&ie).copied();
    let want = FlowRecord {
        src,
        dst,
        src_port: i(7).unwrap_or(0) as u16,
        dst_port: i(11).unwrap_or(0) as u16,
        proto: i(4).unwrap_or(0) as u8,
        tcp_flags: i(6).unwrap_or(0) as u8,
        tos: i(5).unwrap_or(0) as u8,
        bytes: i(1).or(i(85)).unwrap_or(0),
        packets: i(2).or(i(86)).unwrap_or(0),
        sampling: match i(34) {
            Some(v) if v > 0 => v.min(u32::MAX as u64) as u32,
            _ => 1,
        },
        start_ms: export_ms,
        end_ms: export_ms,
        input_if: i(10).unwrap_or(0) as u32,
        output_if: i(14).unwrap_or(0) as u32,
        direction: i(61).map(|v| v as u8),
    };
    (rec.done(), want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_templates_round_trip(
        mut fields in proptest::collection::vec(g(), 0..16),
        ipfix in any::<bool>(),
        nrec in 1usize..8,
        order in 0u8..3,
        seed in any::<u64>(),
        tid in 256u16..=u16::MAX,
        domain in any::<u32>(),
    ) {
        // At least one non-empty field, so the template is usable.
        fields.insert(0, G::Int { ie: 1, w: 4 });
        if !ipfix {
            // NetFlow v9 has neither enterprise numbers nor variable lengths.
            for x in fields.iter_mut() {
                if let G::Ent { len, .. } = *x {
                    *x = G::Other { ie: 3, len };
                }
                if let G::Var { .. } = *x {
                    *x = G::Other { ie: 3, len: 2 };
                }
            }
        }
        let specs: Vec<F> = fields.iter().map(spec).collect();
        let mut rng = Rng(seed);
        let (recs, want): (Vec<Vec<u8>>, Vec<FlowRecord>) =
            (0..nrec).map(|_| record(&fields, &mut rng, EXPORT as i64 * 1000)).unzip();
        let new = || if ipfix { Msg::ipfix(EXPORT, domain) } else { Msg::v9(5000, EXPORT, domain) };
        let mut c = Collector::default();
        let mut out = Vec::new();
        let mut decode = |m: &Msg, out: &mut Vec<FlowRecord>| {
            c.decode(exporter(), &m.build(), 0, out).expect("valid message decodes")
        };
        match order {
            0 => {
                let mut m = new();
                m.template(tid, &specs).data(tid, &recs);
                let s = decode(&m, &mut out);
                prop_assert_eq!(s.records, nrec);
            }
            1 => {
                let mut m = new();
                m.template(tid, &specs);
                decode(&m, &mut out);
                let mut m = new();
                m.data(tid, &recs);
                prop_assert_eq!(decode(&m, &mut out).records, nrec);
            }
            _ => {
                let mut m = new();
                m.data(tid, &recs);
                prop_assert_eq!(decode(&m, &mut out).pending_sets, 1);
                let mut m = new();
                m.template(tid, &specs);
                prop_assert_eq!(decode(&m, &mut out).released_records, nrec);
            }
        }
        prop_assert_eq!(out, want);
    }
}
