#![no_main]

use libfuzzer_sys::fuzz_target;
use simguard_radius::tgpp::{MsTimeZone, UserLocationInfo};
use simguard_radius::{Accounting, Code, Packet, PacketWriter};

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    // The 3GPP value decoders see raw bytes too, not only what survives parsing.
    let _ = UserLocationInfo::decode(data);
    let _ = MsTimeZone::decode(data);

    let Ok(p) = Packet::parse(data) else {
        return;
    };
    assert!(p.as_bytes().len() <= data.len());
    let tiled: usize = p.attributes().map(|a| a.value.len() + 2).sum();
    assert_eq!(tiled + simguard_radius::MIN_PACKET_LEN, p.as_bytes().len());
    for v in p.vendor_attributes() {
        let _ = (v.vendor, v.typ, v.value.len());
    }
    let _ = p.attribute(simguard_radius::attr::USER_NAME);
    let _ = p.verify_request_authenticator(SECRET);
    let _ = p.verify_response_authenticator(&[0; 16], SECRET);
    let _ = p.message_authenticator(SECRET, None);
    let _ = p.message_authenticator(SECRET, Some(p.authenticator()));

    if let Ok(a) = Accounting::from_packet(&p) {
        // Whatever decodes must encode, and the encoding must decode to the same.
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, p.identifier(), [0; 16]);
        if a.write_attributes(&mut w).is_ok() {
            let _ = w.message_authenticator();
            let out = w.finish_request(SECRET).to_vec();
            let q = Packet::parse(&out).expect("own encoding parses");
            assert!(q.verify_request_authenticator(SECRET));
            let b = Accounting::from_packet(&q).expect("own encoding decodes");
            assert_eq!(a, b);
        }
    }
});
