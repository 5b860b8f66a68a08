//! Everything that must not count: each bad request is dropped without an
//! answer, counted under its reason (status API and /metrics), and leaves the
//! device as it was; the server keeps accepting good requests afterwards.

mod common;

use common::*;
use serde_json::Value;
use simguard_radius::acct::StatusType;
use simguard_radius::{attr, tgpp, Accounting, Code, PacketWriter};
use std::collections::HashMap;
use std::time::Duration;

/// The device that already exists and must not change.
const IMSI_A: &str = "901700000000301";
/// A device that must never appear.
const IMSI_B: &str = "901700000000302";

const REASONS: [&str; 10] = [
    "unknown_client",
    "malformed",
    "unexpected_code",
    "bad_authenticator",
    "missing_message_authenticator",
    "bad_message_authenticator",
    "bad_attribute",
    "missing_attribute",
    "truncated",
    "overload",
];

/// The request the bad variants are made of: an Interim for device A with
/// counters, IMEISV and RAT that differ from its state.
fn interim(imsi: &str) -> Accounting<'_> {
    Accounting {
        status_type: Some(StatusType::InterimUpdate),
        session_id: Some("sess-a"),
        imsi: Some(imsi),
        imeisv: Some("3520990017614899"),
        rat_type: Some(tgpp::RatType(9)),
        input_octets: Some(999_999),
        output_octets: Some(888_888),
        interim_interval: Some(60),
        ..Default::default()
    }
}

/// Offset of the Message-Authenticator value when [`build`] adds one.
const MA_AT: usize = 22;

/// A correctly signed Accounting-Request; Message-Authenticator first.
fn build(a: &Accounting, id: u8, secret: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, id, [0; 16]);
    w.message_authenticator().unwrap();
    a.write_attributes(&mut w).unwrap();
    w.finish_request(secret.as_bytes()).to_vec()
}

/// Offsets of the attributes of a well-formed packet.
fn attr_offsets(p: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut off = 20;
    while off < p.len() {
        v.push(off);
        off += usize::from(p[off + 1]);
    }
    v
}

fn device_a_file(
    tmp: &std::path::Path,
    name: &str,
    up: u64,
    down: u64,
    with_ma: bool,
) -> std::path::PathBuf {
    let mut lines = vec![
        ("Acct-Status-Type", "Interim-Update".to_string()),
        ("Acct-Session-Id", q("sess-a")),
        ("3GPP-IMSI", q(IMSI_A)),
        ("3GPP-IMEISV", q("3520990017614823")),
        ("3GPP-RAT-Type", "8".into()),
        ("Acct-Input-Octets", up.to_string()),
        ("Acct-Output-Octets", down.to_string()),
        ("Acct-Interim-Interval", "60".into()),
    ];
    if with_ma {
        lines.push(("Message-Authenticator", "0x00".into()));
    }
    let path = tmp.join(name);
    write_packets(&path, &[packet(&lines)]);
    path
}

struct Check<'a> {
    srv: &'a Server,
    expected: HashMap<&'static str, u64>,
    received: u64,
}

impl Check<'_> {
    /// Waits until `reason` reached its new expected count, then checks that
    /// every counter is exactly as expected and that no answer came.
    fn dropped(&mut self, reason: &'static str, sock: Option<&std::net::UdpSocket>) {
        *self.expected.get_mut(reason).unwrap() += 1;
        self.received += 1;
        let want = self.expected[reason];
        let key = format!("dropped_{reason}");
        wait_for(&format!("{key} = {want}"), Duration::from_secs(10), || {
            (self.srv.acct_counters()[&key] == want).then_some(())
        });
        if let Some(s) = sock {
            assert_eq!(
                udp_receive(s, Duration::from_millis(300)),
                None,
                "{reason}: the server answered"
            );
        }
        self.all_exact(1);
    }

    fn all_exact(&self, accepted: u64) {
        let c = self.srv.acct_counters();
        for r in REASONS {
            assert_eq!(
                c[&format!("dropped_{r}")],
                self.expected[r],
                "dropped_{r}: {c:?}"
            );
        }
        assert_eq!(c["received"], self.received, "{c:?}");
        assert_eq!(c["accepted"], accepted, "{c:?}");
        assert_eq!(c["duplicates"], 0, "{c:?}");
        let m = self.srv.metric_drops();
        for r in REASONS {
            assert_eq!(
                m.get(r).copied(),
                Some(self.expected[r]),
                "/metrics reason {r}: {m:?}"
            );
        }
    }

    /// Device A exactly as the first good request left it, B absent.
    fn devices_unchanged(&self) {
        let d = self.srv.device(IMSI_A).expect("device A");
        assert_eq!(d["usage"]["total_up_octets"], 100, "{d}");
        assert_eq!(d["usage"]["total_down_octets"], 200, "{d}");
        assert_eq!(d["sessions"][0]["up_octets"], 100, "{d}");
        assert_eq!(d["imeisv"], "3520990017614823", "{d}");
        assert_eq!(d["rat"]["code"], 8, "{d}");
        assert_eq!(self.srv.device(IMSI_B), None);
        assert_eq!(self.srv.get_json("/api/v1/status")["devices"], 1);
    }
}

#[test]
fn bad_requests_are_dropped_counted_by_reason_and_change_nothing() {
    let tmp = tempdir("bad");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));
    let mut check = Check {
        srv: &srv,
        expected: REASONS.iter().map(|r| (*r, 0)).collect(),
        received: 0,
    };

    // The device's state before: one good request.
    let good = device_a_file(tmp.path(), "good.txt", 100, 200, true);
    let run = radclient(&good, srv.acct, SECRET, &["-r", "1", "-t", "3"]);
    assert_eq!(run.answered(), 1, "{}\n{}", run.stdout, run.stderr);
    srv.wait_applied(0);
    check.received += 1;
    check.all_exact(1);
    check.devices_unchanged();

    // radclient with the wrong shared secret.
    let bigger = device_a_file(tmp.path(), "bigger.txt", 999_999, 888_888, true);
    let run = radclient(&bigger, srv.acct, "not-the-secret", &["-r", "1", "-t", "1"]);
    assert_eq!(
        (run.requests.len(), run.answered()),
        (1, 0),
        "{}",
        run.stdout
    );
    assert!(!run.status.success());
    check.dropped("bad_authenticator", None);

    // radclient without Message-Authenticator, which this client requires.
    let no_ma = device_a_file(tmp.path(), "no-ma.txt", 999_999, 888_888, false);
    let run = radclient(&no_ma, srv.acct, SECRET, &["-r", "1", "-t", "1"]);
    assert_eq!(
        (run.requests.len(), run.answered()),
        (1, 0),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("Message-Authenticator"),
        "{}",
        run.stdout
    );
    check.dropped("missing_message_authenticator", None);

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |p: &[u8]| {
        sock.send_to(p, srv.acct).unwrap();
    };

    // A valid request from a source address that is not in the allow-list.
    let valid = build(&interim(IMSI_A), 1, SECRET);
    let other = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    other.send_to(&valid, srv.acct).unwrap();
    check.dropped("unknown_client", Some(&other));
    let valid_b = build(&interim(IMSI_B), 2, SECRET);
    other.send_to(&valid_b, srv.acct).unwrap();
    check.dropped("unknown_client", Some(&other));

    // A valid request cut short: the header length promises more.
    let mut cut = build(&interim(IMSI_A), 3, SECRET);
    cut.truncate(cut.len() - 7);
    send(&cut);
    check.dropped("malformed", Some(&sock));

    // Header length right, but the last attribute's length runs past the end;
    // both authenticators are valid for the bytes as sent.
    let mut overrun = build(&interim(IMSI_A), 4, SECRET);
    let last = *attr_offsets(&overrun).last().unwrap();
    let len = overrun.len();
    overrun[last + 1] = (len - last + 4) as u8;
    sign_accounting_request(&mut overrun, SECRET.as_bytes(), Some(MA_AT));
    assert_eq!(
        usize::from(u16::from_be_bytes([overrun[2], overrun[3]])),
        overrun.len()
    );
    send(&overrun);
    check.dropped("malformed", Some(&sock));

    // An attribute length below 2 (would loop forever if accepted).
    let mut zero = build(&interim(IMSI_A), 5, SECRET);
    let last = *attr_offsets(&zero).last().unwrap();
    zero[last + 1] = 0;
    sign_accounting_request(&mut zero, SECRET.as_bytes(), Some(MA_AT));
    send(&zero);
    check.dropped("malformed", Some(&sock));

    // A Message-Authenticator that does not match (request authenticator valid).
    let mut bad_ma = build(&interim(IMSI_A), 6, SECRET);
    bad_ma[MA_AT + 3] ^= 0x55;
    sign_accounting_request(&mut bad_ma, SECRET.as_bytes(), None);
    send(&bad_ma);
    check.dropped("bad_message_authenticator", Some(&sock));

    // The right structure and signatures, an integer attribute of 3 octets.
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, 7, [0; 16]);
    w.message_authenticator().unwrap();
    Accounting {
        input_octets: None,
        ..interim(IMSI_A)
    }
    .write_attributes(&mut w)
    .unwrap();
    w.attr(attr::ACCT_INPUT_OCTETS, &[0, 1, 2]).unwrap();
    send(w.finish_request(SECRET.as_bytes()));
    check.dropped("bad_attribute", Some(&sock));

    // No Acct-Session-Id.
    let no_session = build(
        &Accounting {
            session_id: None,
            ..interim(IMSI_B)
        },
        8,
        SECRET,
    );
    send(&no_session);
    check.dropped("missing_attribute", Some(&sock));

    // An Access-Request on the accounting port.
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccessRequest, 9, [7; 16]);
    w.message_authenticator().unwrap();
    w.attr_str(attr::USER_NAME, IMSI_B).unwrap();
    send(w.finish_access_request(SECRET.as_bytes()));
    check.dropped("unexpected_code", Some(&sock));

    // A valid request for B signed with the wrong secret, sent raw.
    send(&build(&interim(IMSI_B), 10, "not-the-secret"));
    check.dropped("bad_authenticator", Some(&sock));

    check.devices_unchanged();

    // The server still works: a good request afterwards counts.
    let run = radclient(&bigger, srv.acct, SECRET, &["-r", "1", "-t", "3"]);
    assert_eq!(run.answered(), 1, "{}\n{}", run.stdout, run.stderr);
    srv.wait_applied(0);
    check.received += 1;
    check.all_exact(2);
    let d: Value = srv.device(IMSI_A).unwrap();
    assert_eq!(d["usage"]["total_up_octets"], 999_999, "{d}");
    assert_eq!(d["usage"]["total_down_octets"], 888_888, "{d}");
}

/// A server whose allow-list does not include 127.0.0.1 drops radclient's
/// requests as unknown_client and creates no device.
#[test]
fn a_source_outside_the_allow_list_is_dropped() {
    let tmp = tempdir("allow");
    let mut o = ServerOpts::new(&tmp.path().join("data"));
    o.clients =
        format!(r#"[{{ name = "pgw-other", address = "127.0.0.2/32", secret = "{SECRET}" }}]"#);
    let srv = Server::start(&o);
    let file = device_a_file(tmp.path(), "a.txt", 100, 200, true);
    let run = radclient(&file, srv.acct, SECRET, &["-r", "1", "-t", "1"]);
    assert_eq!(
        (run.requests.len(), run.answered()),
        (1, 0),
        "{}",
        run.stdout
    );
    wait_for(
        "dropped_unknown_client = 1",
        Duration::from_secs(10),
        || (srv.acct_counters()["dropped_unknown_client"] == 1).then_some(()),
    );
    let c = srv.acct_counters();
    assert_eq!((c["received"], c["accepted"]), (1, 0), "{c:?}");
    assert_eq!(srv.metric_drops()["unknown_client"], 1);
    assert_eq!(srv.device(IMSI_A), None);

    // The allowed address gets through (Message-Authenticator is required by
    // default and present).
    let sock = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.send_to(&build(&interim(IMSI_A), 1, SECRET), srv.acct)
        .unwrap();
    assert!(
        udp_receive(&sock, Duration::from_secs(5)).is_some(),
        "no answer to the allowed address"
    );
    srv.wait_applied(0);
    let d = srv.device(IMSI_A).expect("device from the allowed address");
    assert_eq!(d["usage"]["total_up_octets"], 999_999);
    assert_eq!(d["sessions"][0]["nas"], "pgw-other");
}
