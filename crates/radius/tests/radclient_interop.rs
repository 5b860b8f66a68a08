//! Interop with FreeRADIUS `radclient` (package freeradius-utils): radclient
//! sends real requests to a UDP socket owned by the test, this crate verifies and
//! decodes them, answers with [`PacketWriter::finish_response`], and radclient's
//! verdict on that answer is checked.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::{self, MsTimeZone, Plmn, RatType, UserLocationInfo};
use simguard_radius::{attr, coa, Accounting, Code, MessageAuthenticator, Packet, PacketWriter};

const SECRET: &str = "s3cr3t-interop";

fn radclient() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("radclient"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`radclient` not found in PATH. The interop tests need FreeRADIUS's client: \
                 install it with `apt-get install freeradius-utils` (CI does)."
            )
        })
}

struct Exchange {
    request: Vec<u8>,
    output: Output,
}

impl Exchange {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `radclient -x -f FILE 127.0.0.1:PORT <kind> <secret>`, hands the one
/// request it sends to `respond`, sends back whatever that returns, and waits
/// for radclient to exit.
fn exchange(
    kind: &str,
    secret: &str,
    attributes: &str,
    timeout_s: u32,
    respond: impl FnOnce(&Packet<'_>) -> Option<Vec<u8>>,
) -> Exchange {
    static N: AtomicUsize = AtomicUsize::new(0);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let file = std::env::temp_dir().join(format!(
        "simguard-radclient-{}-{}.txt",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, attributes).unwrap();

    let mut cmd = Command::new(radclient());
    // Read FreeRADIUS's own dictionaries (dictionary.3gpp included) directly, so
    // the test does not depend on a server configuration under /etc.
    let dict = Path::new("/usr/share/freeradius");
    if dict.join("dictionary").is_file() {
        cmd.arg("-D").arg(dict);
    }
    let child = cmd
        .args(["-x", "-r", "1", "-t", &timeout_s.to_string(), "-f"])
        .arg(&file)
        .arg(format!("127.0.0.1:{port}"))
        .arg(kind)
        .arg(secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn radclient");

    let mut buf = [0u8; 4096];
    let received = sock.recv_from(&mut buf);
    let (n, peer): (usize, SocketAddr) = match received {
        Ok(r) => r,
        Err(e) => {
            let out = child.wait_with_output().unwrap();
            panic!(
                "no packet from radclient ({e}); stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let request = buf[..n].to_vec();
    let packet = Packet::parse(&request).expect("radclient's packet parses");
    if let Some(reply) = respond(&packet) {
        sock.send_to(&reply, peer).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&file);
    Exchange { request, output }
}

fn plmn(mcc: u16, mnc: u16, digits: u8) -> Plmn {
    Plmn::new(mcc, mnc, digits).unwrap()
}

const ACCOUNTING_REQUEST: &str = r#"Acct-Status-Type = Interim-Update
Acct-Session-Id = "0a2d0007-00000042"
Acct-Multi-Session-Id = "pgw1-0007"
User-Name = "901700000000001@iot.example"
NAS-IP-Address = 192.0.2.1
NAS-Identifier = "pgw-1"
Framed-IP-Address = 10.45.0.7
Called-Station-Id = "iot.example"
Calling-Station-Id = "491700000001"
Acct-Input-Octets = 5
Acct-Input-Gigawords = 2
Acct-Output-Octets = 123456
Acct-Output-Gigawords = 1
Acct-Input-Packets = 17
Acct-Output-Packets = 23
Acct-Session-Time = 3600
Acct-Interim-Interval = 600
Event-Timestamp = 1700000000
Acct-Delay-Time = 3
Message-Authenticator = 0x00
3GPP-IMSI = "901700000000001"
3GPP-IMEISV = "3520990017614823"
3GPP-Charging-ID = 305419896
3GPP-PDP-Type = 0
3GPP-SGSN-Address = 192.0.2.10
3GPP-GGSN-Address = 192.0.2.20
3GPP-IMSI-MCC-MNC = "90170"
3GPP-GGSN-MCC-MNC = "310410"
3GPP-SGSN-MCC-MNC = "90170"
3GPP-NSAPI = "5"
3GPP-Selection-Mode = "0"
3GPP-Charging-Characteristics = "0800"
3GPP-RAT-Type = 8
3GPP-User-Location-Info = 0x8209f10704d209f1070001e240
3GPP-MS-Time-Zone = 0x8a01
"#;

#[test]
fn accounting_request_with_3gpp_attributes() {
    let ex = exchange("acct", SECRET, ACCOUNTING_REQUEST, 5, |p| {
        assert_eq!(p.code(), Code::AccountingRequest);
        assert!(p.verify_request_authenticator(SECRET.as_bytes()));
        assert!(!p.verify_request_authenticator(b"not-the-secret"));
        assert_eq!(
            p.message_authenticator(SECRET.as_bytes(), None),
            MessageAuthenticator::Valid
        );
        assert_eq!(
            p.message_authenticator(b"not-the-secret", None),
            MessageAuthenticator::Invalid
        );
        // radclient fills the Message-Authenticator with the authenticator field
        // zeroed, not over the final (hashed) Request Authenticator.
        assert_eq!(
            p.message_authenticator(SECRET.as_bytes(), Some(p.authenticator())),
            MessageAuthenticator::Invalid
        );
        assert!(Accounting::from_packet(p).is_ok());

        let mut out = Vec::new();
        let w = PacketWriter::new(&mut out, Code::AccountingResponse, p.identifier(), [0; 16]);
        Some(
            w.finish_response(p.authenticator(), SECRET.as_bytes())
                .to_vec(),
        )
    });
    assert!(
        ex.output.status.success(),
        "radclient rejected our Accounting-Response:\n{}\n{}",
        ex.stdout(),
        ex.stderr()
    );
    assert!(
        ex.stdout().contains("Received Accounting-Response"),
        "{}",
        ex.stdout()
    );

    let p = Packet::parse(&ex.request).unwrap();
    let a = Accounting::from_packet(&p).unwrap();
    let expected = Accounting {
        status_type: Some(StatusType::InterimUpdate),
        session_id: Some("0a2d0007-00000042"),
        multi_session_id: Some("pgw1-0007"),
        user_name: Some("901700000000001@iot.example"),
        nas_ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
        nas_identifier: Some("pgw-1"),
        framed_ip: Some(Ipv4Addr::new(10, 45, 0, 7)),
        called_station_id: Some("iot.example"),
        calling_station_id: Some("491700000001"),
        input_octets: Some((2 << 32) | 5),
        output_octets: Some((1 << 32) | 123_456),
        input_packets: Some(17),
        output_packets: Some(23),
        session_time: Some(3600),
        terminate_cause: None,
        interim_interval: Some(600),
        event_timestamp: Some(1_700_000_000),
        delay_time: Some(3),
        imsi: Some("901700000000001"),
        imeisv: Some("3520990017614823"),
        charging_id: Some(305_419_896),
        pdp_type: Some(0),
        sgsn_address: Some(Ipv4Addr::new(192, 0, 2, 10)),
        ggsn_address: Some(Ipv4Addr::new(192, 0, 2, 20)),
        imsi_mcc_mnc: Some(plmn(901, 70, 2)),
        ggsn_mcc_mnc: Some(plmn(310, 410, 3)),
        sgsn_mcc_mnc: Some(plmn(901, 70, 2)),
        nsapi: Some(5),
        selection_mode: Some(0),
        charging_characteristics: Some("0800"),
        rat_type: Some(RatType::NB_IOT),
        uli: Some(UserLocationInfo::TaiEcgi {
            tai_plmn: plmn(901, 70, 2),
            tac: 1234,
            ecgi_plmn: plmn(901, 70, 2),
            eci: 123_456,
        }),
        ms_timezone: Some(MsTimeZone {
            offset_minutes: -420,
            dst_hours: 1,
        }),
    };
    assert_eq!(a, expected);
    // FreeRADIUS encodes 3GPP-RAT-Type as one octet (dictionary type "byte").
    let rat = p
        .vendor_attributes()
        .find(|v| v.vendor == tgpp::VENDOR_ID && v.typ == tgpp::RAT_TYPE)
        .unwrap();
    assert_eq!(rat.value, &[8]);
}

#[test]
fn radclient_rejects_a_response_signed_with_another_secret() {
    let ex = exchange(
        "acct",
        SECRET,
        "Acct-Status-Type = Start\nAcct-Session-Id = \"x\"\n",
        1,
        |p| {
            assert!(p.verify_request_authenticator(SECRET.as_bytes()));
            let mut out = Vec::new();
            let w = PacketWriter::new(&mut out, Code::AccountingResponse, p.identifier(), [0; 16]);
            Some(
                w.finish_response(p.authenticator(), b"wrong-secret")
                    .to_vec(),
            )
        },
    );
    assert!(!ex.output.status.success());
    assert!(!ex.stdout().contains("Received Accounting-Response"));
    assert!(
        ex.stderr().contains("invalid Response Authenticator"),
        "{}",
        ex.stderr()
    );
}

#[test]
fn access_request_with_message_authenticator() {
    let ex = exchange(
        "auth",
        SECRET,
        "User-Name = \"901700000000001\"\nUser-Password = \"hello\"\nNAS-IP-Address = 192.0.2.1\nMessage-Authenticator = 0x00\n",
        5,
        |p| {
            assert_eq!(p.code(), Code::AccessRequest);
            assert_eq!(p.attribute(attr::USER_NAME), Some(&b"901700000000001"[..]));
            assert_eq!(p.attribute(attr::USER_PASSWORD).map(<[u8]>::len), Some(16));
            assert_eq!(
                p.message_authenticator(SECRET.as_bytes(), None),
                MessageAuthenticator::Valid
            );
            assert_eq!(
                p.message_authenticator(b"wrong", None),
                MessageAuthenticator::Invalid
            );
            let mut out = Vec::new();
            let mut w = PacketWriter::new(&mut out, Code::AccessAccept, p.identifier(), [0; 16]);
            w.attr_str(attr::REPLY_MESSAGE, "welcome")
                .unwrap()
                .attr_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 45, 0, 9))
                .unwrap()
                .message_authenticator()
                .unwrap();
            Some(w.finish_response(p.authenticator(), SECRET.as_bytes()).to_vec())
        },
    );
    assert!(
        ex.output.status.success(),
        "radclient rejected our Access-Accept:\n{}\n{}",
        ex.stdout(),
        ex.stderr()
    );
    let out = ex.stdout();
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Reply-Message = \"welcome\""), "{out}");
    assert!(out.contains("Framed-IP-Address = 10.45.0.9"), "{out}");
}

#[test]
fn coa_request_and_ack() {
    let ex = exchange(
        "coa",
        SECRET,
        "User-Name = \"901700000000001\"\nAcct-Session-Id = \"0a2d0007-00000042\"\nSession-Timeout = 3600\nMessage-Authenticator = 0x00\n",
        5,
        |p| {
            assert_eq!(p.code(), Code::CoaRequest);
            assert!(p.verify_request_authenticator(SECRET.as_bytes()));
            assert!(!p.verify_request_authenticator(b"wrong"));
            assert_eq!(
                p.message_authenticator(SECRET.as_bytes(), None),
                MessageAuthenticator::Valid
            );
            assert_eq!(
                p.attribute(attr::ACCT_SESSION_ID),
                Some(&b"0a2d0007-00000042"[..])
            );
            assert_eq!(p.attribute(attr::SESSION_TIMEOUT), Some(&3600u32.to_be_bytes()[..]));
            let mut out = Vec::new();
            let mut w = PacketWriter::new(&mut out, Code::CoaAck, p.identifier(), [0; 16]);
            w.message_authenticator().unwrap();
            Some(w.finish_response(p.authenticator(), SECRET.as_bytes()).to_vec())
        },
    );
    assert!(
        ex.output.status.success(),
        "radclient rejected our CoA-ACK:\n{}\n{}",
        ex.stdout(),
        ex.stderr()
    );
    assert!(ex.stdout().contains("Received CoA-ACK"), "{}", ex.stdout());
}

#[test]
fn disconnect_request_and_nak() {
    let ex = exchange(
        "disconnect",
        SECRET,
        "User-Name = \"901700000000001\"\nAcct-Session-Id = \"0a2d0007-00000042\"\nMessage-Authenticator = 0x00\n",
        5,
        |p| {
            assert_eq!(p.code(), Code::DisconnectRequest);
            assert!(p.verify_request_authenticator(SECRET.as_bytes()));
            assert_eq!(
                p.message_authenticator(SECRET.as_bytes(), None),
                MessageAuthenticator::Valid
            );
            let mut out = Vec::new();
            let mut w = PacketWriter::new(&mut out, Code::DisconnectNak, p.identifier(), [0; 16]);
            w.attr_u32(attr::ERROR_CAUSE, coa::SESSION_CONTEXT_NOT_FOUND)
                .unwrap()
                .message_authenticator()
                .unwrap();
            Some(w.finish_response(p.authenticator(), SECRET.as_bytes()).to_vec())
        },
    );
    // radclient accepts the NAK as authentic, then exits 1 because it hoped
    // for an ACK.
    let out = ex.stdout();
    assert!(
        out.contains("Received Disconnect-NAK"),
        "{out}\n{}",
        ex.stderr()
    );
    assert!(
        out.contains("Error-Cause = Session-Context-Not-Found"),
        "{out}"
    );
    assert!(
        ex.stderr()
            .contains("Expected Disconnect-ACK got Disconnect-NAK"),
        "{}",
        ex.stderr()
    );
    assert!(!ex.stderr().contains("verification failed"));
}
