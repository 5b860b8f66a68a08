//! Property tests: encode/decode round trips and robustness on arbitrary input.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::{MsTimeZone, Plmn, RatType, UserLocationInfo};
use simguard_radius::{Accounting, Code, MessageAuthenticator, Packet, PacketWriter};

const SECRET: &[u8] = b"s3cret";

/// Owned strings the generated `Accounting` borrows from.
#[derive(Debug, Clone)]
struct Strings {
    session_id: Option<String>,
    multi_session_id: Option<String>,
    user_name: Option<String>,
    nas_identifier: Option<String>,
    called: Option<String>,
    calling: Option<String>,
    imsi: Option<String>,
    imeisv: Option<String>,
    charging_characteristics: Option<String>,
}

/// Everything in `Accounting` that is not borrowed.
#[derive(Debug, Clone)]
struct Scalars {
    status_type: Option<StatusType>,
    nas_ip: Option<Ipv4Addr>,
    framed_ip: Option<Ipv4Addr>,
    octets: (Option<u64>, Option<u64>),
    counters: [Option<u32>; 8],
    charging_id: Option<u32>,
    pdp_type: Option<u32>,
    sgsn: Option<Ipv4Addr>,
    ggsn: Option<Ipv4Addr>,
    plmns: [Option<Plmn>; 3],
    nsapi: Option<u8>,
    selection_mode: Option<u8>,
    rat_type: Option<RatType>,
    uli: Option<UserLocationInfo>,
    ms_timezone: Option<MsTimeZone>,
}

fn text() -> impl Strategy<Value = Option<String>> {
    // Any UTF-8 up to 60 chars (at most 240 octets, within one attribute).
    proptest::option::of("\\PC{0,60}")
}

fn strings() -> impl Strategy<Value = Strings> {
    (
        (text(), text(), text(), text(), text(), text()),
        proptest::option::of("[0-9]{5,15}"),
        proptest::option::of("[0-9]{14,16}"),
        proptest::option::of("[0-9A-F]{4}"),
    )
        .prop_map(
            |(
                (session_id, multi_session_id, user_name, nas_identifier, called, calling),
                imsi,
                imeisv,
                charging_characteristics,
            )| Strings {
                session_id,
                multi_session_id,
                user_name,
                nas_identifier,
                called,
                calling,
                imsi,
                imeisv,
                charging_characteristics,
            },
        )
}

fn plmn() -> impl Strategy<Value = Plmn> {
    prop_oneof![
        (0u16..=999, 0u16..=99).prop_map(|(mcc, mnc)| Plmn::new(mcc, mnc, 2).unwrap()),
        (0u16..=999, 0u16..=999).prop_map(|(mcc, mnc)| Plmn::new(mcc, mnc, 3).unwrap()),
    ]
}

const DECODED_ULI_TYPES: [u8; 8] = [0, 1, 2, 128, 129, 130, 135, 136];

fn uli() -> impl Strategy<Value = UserLocationInfo> {
    prop_oneof![
        (plmn(), any::<u16>(), any::<u16>()).prop_map(|(plmn, lac, ci)| UserLocationInfo::Cgi {
            plmn,
            lac,
            ci
        }),
        (plmn(), any::<u16>(), any::<u16>()).prop_map(|(plmn, lac, sac)| UserLocationInfo::Sai {
            plmn,
            lac,
            sac
        }),
        (plmn(), any::<u16>(), any::<u8>()).prop_map(|(plmn, lac, rac)| UserLocationInfo::Rai {
            plmn,
            lac,
            rac
        }),
        (plmn(), any::<u16>()).prop_map(|(plmn, tac)| UserLocationInfo::Tai { plmn, tac }),
        (plmn(), 0u32..1 << 28).prop_map(|(plmn, eci)| UserLocationInfo::Ecgi { plmn, eci }),
        (plmn(), any::<u16>(), plmn(), 0u32..1 << 28).prop_map(
            |(tai_plmn, tac, ecgi_plmn, eci)| UserLocationInfo::TaiEcgi {
                tai_plmn,
                tac,
                ecgi_plmn,
                eci
            }
        ),
        (plmn(), 0u64..1 << 36).prop_map(|(plmn, nci)| UserLocationInfo::Ncgi { plmn, nci }),
        (plmn(), 0u32..1 << 24).prop_map(|(plmn, tac)| UserLocationInfo::FiveGsTai { plmn, tac }),
        any::<u8>()
            .prop_filter("decoded types have their own variants", |t| {
                !DECODED_ULI_TYPES.contains(t)
            })
            .prop_map(|typ| UserLocationInfo::Other { typ }),
    ]
}

fn status_type() -> impl Strategy<Value = StatusType> {
    prop_oneof![
        Just(StatusType::Start),
        Just(StatusType::Stop),
        Just(StatusType::InterimUpdate),
        Just(StatusType::AccountingOn),
        Just(StatusType::AccountingOff),
        any::<u32>()
            .prop_filter("known values are not Other", |v| {
                ![1, 2, 3, 7, 8].contains(v)
            })
            .prop_map(StatusType::Other),
    ]
}

fn ipv4() -> impl Strategy<Value = Option<Ipv4Addr>> {
    proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from))
}

fn scalars() -> impl Strategy<Value = Scalars> {
    let u = || proptest::option::of(any::<u32>());
    (
        (
            proptest::option::of(status_type()),
            ipv4(),
            ipv4(),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
            ),
            [u(), u(), u(), u(), u(), u(), u(), u()],
        ),
        (u(), u(), ipv4(), ipv4()),
        [
            proptest::option::of(plmn()),
            proptest::option::of(plmn()),
            proptest::option::of(plmn()),
        ],
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>().prop_map(RatType)),
            proptest::option::of(uli()),
            proptest::option::of(
                (-79i16..=79, 0u8..=2).prop_map(|(q, dst_hours)| MsTimeZone {
                    offset_minutes: q * 15,
                    dst_hours,
                }),
            ),
        ),
    )
        .prop_map(
            |(
                (status_type, nas_ip, framed_ip, octets, counters),
                (charging_id, pdp_type, sgsn, ggsn),
                plmns,
                (nsapi, selection_mode, rat_type, uli, ms_timezone),
            )| Scalars {
                status_type,
                nas_ip,
                framed_ip,
                octets,
                counters,
                charging_id,
                pdp_type,
                sgsn,
                ggsn,
                plmns,
                nsapi,
                selection_mode,
                rat_type,
                uli,
                ms_timezone,
            },
        )
}

fn build<'a>(s: &'a Strings, x: &Scalars) -> Accounting<'a> {
    let [input_packets, output_packets, session_time, terminate_cause, interim_interval, event_timestamp, delay_time, _] =
        x.counters;
    Accounting {
        status_type: x.status_type,
        session_id: s.session_id.as_deref(),
        multi_session_id: s.multi_session_id.as_deref(),
        user_name: s.user_name.as_deref(),
        nas_ip: x.nas_ip,
        nas_identifier: s.nas_identifier.as_deref(),
        framed_ip: x.framed_ip,
        called_station_id: s.called.as_deref(),
        calling_station_id: s.calling.as_deref(),
        input_octets: x.octets.0,
        output_octets: x.octets.1,
        input_packets,
        output_packets,
        session_time,
        terminate_cause,
        interim_interval,
        event_timestamp,
        delay_time,
        imsi: s.imsi.as_deref(),
        imeisv: s.imeisv.as_deref(),
        charging_id: x.charging_id,
        pdp_type: x.pdp_type,
        sgsn_address: x.sgsn,
        ggsn_address: x.ggsn,
        imsi_mcc_mnc: x.plmns[0],
        ggsn_mcc_mnc: x.plmns[1],
        sgsn_mcc_mnc: x.plmns[2],
        nsapi: x.nsapi,
        selection_mode: x.selection_mode,
        charging_characteristics: s.charging_characteristics.as_deref(),
        rat_type: x.rat_type,
        uli: x.uli,
        ms_timezone: x.ms_timezone,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accounting_round_trips(s in strings(), x in scalars(), id in any::<u8>(), with_ma in any::<bool>()) {
        let original = build(&s, &x);
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, id, [0; 16]);
        original.write_attributes(&mut w).unwrap();
        if with_ma {
            w.message_authenticator().unwrap();
        }
        let wire = w.finish_request(SECRET);
        let p = Packet::parse(wire).unwrap();
        prop_assert_eq!(p.identifier(), id);
        prop_assert!(p.verify_request_authenticator(SECRET));
        let ma = p.message_authenticator(SECRET, None);
        prop_assert_eq!(ma, if with_ma { MessageAuthenticator::Valid } else { MessageAuthenticator::Absent });
        let decoded = Accounting::from_packet(&p).unwrap();
        prop_assert_eq!(decoded, original);
    }

    #[test]
    fn uli_and_timezone_round_trip(u in uli(), q in -79i16..=79, dst in 0u8..=2) {
        let mut v = Vec::new();
        u.encode(&mut v);
        prop_assert_eq!(UserLocationInfo::decode(&v).unwrap(), u);
        let tz = MsTimeZone { offset_minutes: q * 15, dst_hours: dst };
        prop_assert_eq!(MsTimeZone::decode(&tz.encode()).unwrap(), tz);
    }

    #[test]
    fn plmn_text_and_bcd_round_trip(p in plmn()) {
        prop_assert_eq!(Plmn::from_bcd(&p.to_bcd()), Some(p));
        let text = format!("{}{}", p.mcc_string(), p.mnc_string());
        prop_assert_eq!(Plmn::parse(&text), Some(p));
        prop_assert_eq!(p.to_string(), format!("{}-{}", p.mcc_string(), p.mnc_string()));
    }

    /// Arbitrary attribute lists survive encode -> parse unchanged and in order.
    #[test]
    fn attribute_lists_round_trip(
        attrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..40),
        code in prop::sample::select(vec![1u8, 2, 3, 4, 5, 11, 12, 13, 40, 41, 42, 43, 44, 45]),
    ) {
        let code = Code::from_u8(code).unwrap();
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf, code, 1, [7; 16]);
        for (t, v) in &attrs {
            w.attr(*t, v).unwrap();
        }
        let wire = w.finish_response(&[1; 16], SECRET).to_vec();
        let p = Packet::parse(&wire).unwrap();
        prop_assert!(p.verify_response_authenticator(&[1; 16], SECRET));
        let got: Vec<(u8, Vec<u8>)> = p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
        prop_assert_eq!(got, attrs);
    }

    /// Random bytes never panic anywhere in the decoding path.
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&buf);
    }

    /// Near-valid input (a real header and random attribute bytes) reaches the
    /// attribute and VSA decoders far more often than fully random bytes.
    #[test]
    fn random_attributes_never_panic(
        code in prop::sample::select(vec![1u8, 4, 5, 43]),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        vsa_prefix in any::<bool>(),
    ) {
        let mut attrs = Vec::new();
        if vsa_prefix && body.len() >= 2 {
            attrs.extend_from_slice(&[26, (body.len().min(247) + 6) as u8, 0, 0, 0x28, 0xaf]);
            attrs.extend_from_slice(&body[..body.len().min(247)]);
        } else {
            attrs.extend_from_slice(&body);
        }
        let len = (20 + attrs.len()) as u16;
        let mut buf = vec![code, 1];
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&[0; 16]);
        buf.extend_from_slice(&attrs);
        exercise(&buf);
    }
}

fn exercise(buf: &[u8]) {
    if let Ok(p) = Packet::parse(buf) {
        assert!(p.as_bytes().len() <= buf.len());
        let n: usize = p.attributes().map(|a| a.value.len() + 2).sum();
        assert_eq!(n + 20, p.as_bytes().len(), "attributes tile the packet");
        let _ = p.vendor_attributes().count();
        let _ = p.verify_request_authenticator(SECRET);
        let _ = p.verify_response_authenticator(&[0; 16], SECRET);
        let _ = p.message_authenticator(SECRET, None);
        let _ = p.message_authenticator(SECRET, Some(&[0; 16]));
        if let Ok(a) = Accounting::from_packet(&p) {
            // Anything decoded can be written back.
            let mut out = Vec::new();
            let mut w = PacketWriter::new(&mut out, Code::AccountingRequest, 0, [0; 16]);
            if a.write_attributes(&mut w).is_ok() {
                let out = w.finish_request(SECRET);
                assert!(Packet::parse(out).is_ok());
            }
        }
    }
    let _ = UserLocationInfo::decode(buf);
    let _ = MsTimeZone::decode(buf);
}
