//! A PGW's accounting as FreeRADIUS's radclient sends it (Start, Interim,
//! Stop with the 3GPP attributes and 64-bit counters), then the API.

mod common;

use common::*;
use serde_json::Value;
use simguard_radius::acct::StatusType;
use simguard_radius::{Accounting, Code, Packet, PacketWriter};
use std::time::Duration;

const IMSI: &str = "901700000000101";
const GIGA: u64 = 1 << 32;

/// One accounting packet of the test session, with every attribute a PGW
/// sends. Counters are (octets, gigawords).
fn acct_packet(status: &str, up: (u32, u32), down: (u32, u32), extra: &[(&str, String)]) -> String {
    let mut lines = vec![
        ("Acct-Status-Type", status.to_string()),
        ("Acct-Session-Id", q("pgw-sess-0001")),
        ("3GPP-IMSI", q(IMSI)),
        ("3GPP-IMEISV", q("3520990017614823")),
        // TAI+ECGI: PLMN 901-70, TAC 1234, ECI 123456.
        (
            "3GPP-User-Location-Info",
            "0x8209f10704d209f1070001e240".into(),
        ),
        ("3GPP-SGSN-MCC-MNC", q("26201")),
        ("3GPP-RAT-Type", "8".into()),
        ("Framed-IP-Address", "10.45.0.7".into()),
        ("Called-Station-Id", q("meters.iot")),
        ("Calling-Station-Id", q("491701234567")),
        ("Acct-Input-Octets", up.0.to_string()),
        ("Acct-Input-Gigawords", up.1.to_string()),
        ("Acct-Output-Octets", down.0.to_string()),
        ("Acct-Output-Gigawords", down.1.to_string()),
        ("Acct-Interim-Interval", "300".into()),
    ];
    lines.extend(extra.iter().cloned());
    lines.push(("Message-Authenticator", "0x00".into()));
    packet(&lines)
}

fn counter(c: (u32, u32)) -> u64 {
    u64::from(c.1) * GIGA + u64::from(c.0)
}

/// Sends one file with radclient and asserts that every request was answered.
fn send_all(srv: &Server, file: &std::path::Path, n: usize) {
    let run = radclient(file, srv.acct, SECRET, &["-r", "3", "-t", "2"]);
    assert!(
        run.status.success(),
        "radclient failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.requests.len(), n, "{}", run.stdout);
    assert_eq!(run.answered(), n, "{}", run.stdout);
    srv.wait_applied(0);
}

fn usage(d: &Value) -> (u64, u64, u64, u64) {
    let u = &d["usage"];
    (
        u["period_up_octets"].as_u64().unwrap(),
        u["period_down_octets"].as_u64().unwrap(),
        u["total_up_octets"].as_u64().unwrap(),
        u["total_down_octets"].as_u64().unwrap(),
    )
}

fn assert_identity_and_location(d: &Value) {
    assert_eq!(d["imsi"], IMSI);
    assert_eq!(d["provisioned"], false, "{d}");
    assert_eq!(d["imeisv"], "3520990017614823");
    assert_eq!(d["tac"], "35209900");
    assert_eq!(d["msisdn_seen"], "491701234567");
    // Serving network from 3GPP-SGSN-MCC-MNC.
    assert_eq!(d["network"]["plmn"], "262-01", "{d}");
    assert_eq!(d["network"]["mcc"], "262");
    assert_eq!(d["network"]["mnc"], "01");
    assert_eq!(d["network"]["country"], "DE");
    // The cell from 3GPP-User-Location-Info (TAI+ECGI).
    let c = &d["cell"];
    assert_eq!(c["type"], "ECGI", "{d}");
    assert_eq!(c["plmn"], "901-70");
    assert_eq!(c["tac"], 1234);
    assert_eq!(c["eci"], 123456);
    assert_eq!(c["enb"], 123456 >> 8);
    assert_eq!(d["rat"]["code"], 8);
    assert_eq!(d["rat"]["name"], "NB-IoT");
}

#[test]
fn start_interim_stop_from_radclient_show_in_the_api_with_exact_usage() {
    let tmp = tempdir("acct");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));

    // ---- Start: online, identity and location, no usage yet.
    let start = tmp.path().join("start.txt");
    write_packets(&start, &[acct_packet("Start", (0, 0), (0, 0), &[])]);
    send_all(&srv, &start, 1);
    let d = srv.device(IMSI).expect("device after Start");
    assert_identity_and_location(&d);
    assert_eq!(d["status"], "online", "{d}");
    assert_eq!(usage(&d), (0, 0, 0, 0));
    let s = d["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 1, "{d}");
    assert_eq!(s[0]["session_id"], "pgw-sess-0001");
    assert_eq!(s[0]["nas"], "pgw-test");
    assert_eq!(s[0]["apn"], "meters.iot");
    assert_eq!(s[0]["framed_ip"], "10.45.0.7");
    assert_eq!(s[0]["interim_interval_secs"], 300);

    // ---- Interim with counters past 32 bits: gigawords count.
    let (up1, down1) = ((5, 2), (1000, 1));
    let interim = tmp.path().join("interim.txt");
    write_packets(&interim, &[acct_packet("Interim-Update", up1, down1, &[])]);
    send_all(&srv, &interim, 1);
    let (u1, d1) = (counter(up1), counter(down1));
    assert_eq!((u1, d1), (8_589_934_597, 4_294_968_296));
    let d = srv.device(IMSI).unwrap();
    assert_eq!(usage(&d), (u1, d1, u1, d1), "{d}");
    assert_eq!(d["sessions"][0]["up_octets"], u1);
    assert_eq!(d["sessions"][0]["down_octets"], d1);
    assert_eq!(d["status"], "online");

    // ---- The same Interim again (a NAS repeating itself): counted once.
    send_all(&srv, &interim, 1);
    let d = srv.device(IMSI).unwrap();
    assert_eq!(
        usage(&d),
        (u1, d1, u1, d1),
        "a repeated Interim changed usage: {d}"
    );

    // The device is found by the list filters on what was reported.
    for query in [
        "rat=NB-IoT",
        "rat=8",
        "country=DE",
        "country=de",
        "status=online",
        "provisioned=false",
    ] {
        let items = srv.all_devices(query, 10);
        assert!(
            items.iter().any(|i| i["imsi"] == IMSI),
            "?{query} does not list the device: {items:?}"
        );
    }
    for query in [
        "rat=LTE-M",
        "country=FR",
        "status=offline",
        "provisioned=true",
    ] {
        let items = srv.all_devices(query, 10);
        assert!(
            items.iter().all(|i| i["imsi"] != IMSI),
            "?{query} lists the device"
        );
    }

    // ---- Stop with the final counters: offline, usage = final counters.
    let (up2, down2) = ((u32::MAX, 2), (10, 3));
    let stop = tmp.path().join("stop.txt");
    write_packets(
        &stop,
        &[acct_packet(
            "Stop",
            up2,
            down2,
            &[
                ("Acct-Session-Time", "600".into()),
                ("Acct-Terminate-Cause", "User-Request".into()),
            ],
        )],
    );
    send_all(&srv, &stop, 1);
    let (u2, d2) = (counter(up2), counter(down2));
    assert_eq!((u2, d2), (12_884_901_887, 12_884_901_898));
    let d = srv.device(IMSI).unwrap();
    assert_eq!(d["status"], "offline", "{d}");
    assert_eq!(d["offline_reason"], "session_stopped");
    assert_eq!(d["sessions"].as_array().unwrap().len(), 0, "{d}");
    assert_eq!(usage(&d), (u2, d2, u2, d2), "{d}");
    assert_eq!(d["usage"]["period_sessions"], 1);
    assert_identity_and_location(&d);
    let offline = srv.all_devices("status=offline", 10);
    assert!(offline.iter().any(|i| i["imsi"] == IMSI));

    // A late repeat of the Interim and of the Stop change nothing.
    send_all(&srv, &interim, 1);
    send_all(&srv, &stop, 1);
    let d = srv.device(IMSI).unwrap();
    assert_eq!(usage(&d), (u2, d2, u2, d2), "{d}");
    assert_eq!(d["status"], "offline");

    // ---- The hourly series in the store adds up to the same totals.
    let series = wait_for(
        "the hourly usage to reach the totals",
        Duration::from_secs(10),
        || {
            let s = srv.get_json(&format!("/api/v1/devices/{IMSI}/usage"));
            (s["total_up_octets"] == u2 && s["total_down_octets"] == d2).then_some(s)
        },
    );
    let hours = series["hours"].as_array().unwrap();
    assert!(!hours.is_empty() && hours.len() <= 2, "{series}");
    let sum_up: u64 = hours.iter().map(|h| h["up_octets"].as_u64().unwrap()).sum();
    let sum_down: u64 = hours
        .iter()
        .map(|h| h["down_octets"].as_u64().unwrap())
        .sum();
    assert_eq!((sum_up, sum_down), (u2, d2), "{series}");
    // And it stays there (no late double count from the repeats).
    std::thread::sleep(Duration::from_millis(1500));
    let s = srv.get_json(&format!("/api/v1/devices/{IMSI}/usage"));
    assert_eq!(
        (
            s["total_up_octets"].as_u64(),
            s["total_down_octets"].as_u64()
        ),
        (Some(u2), Some(d2))
    );

    let c = srv.acct_counters();
    assert_eq!(c["received"], 6, "{c:?}");
    assert_eq!(c["accepted"], 6, "{c:?}");
    let dropped: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("dropped_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dropped, 0, "{c:?}");
}

/// A NAS retransmission (the same datagram again, e.g. after a lost answer)
/// is answered again, counted as a duplicate, and its usage counted once.
#[test]
fn an_exact_retransmission_is_answered_and_counted_once() {
    let tmp = tempdir("retrans");
    let srv = Server::start(&ServerOpts::new(&tmp.path().join("data")));
    let imsi = "901700000000202";
    let a = Accounting {
        status_type: Some(StatusType::InterimUpdate),
        session_id: Some("retrans-1"),
        imsi: Some(imsi),
        input_octets: Some(3 * GIGA + 7),
        output_octets: Some(11),
        interim_interval: Some(60),
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf, Code::AccountingRequest, 42, [0; 16]);
    a.write_attributes(&mut w).unwrap();
    w.message_authenticator().unwrap();
    let req = w.finish_request(SECRET.as_bytes()).to_vec();

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for round in 0..3 {
        sock.send_to(&req, srv.acct).unwrap();
        let answer = udp_receive(&sock, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no answer to transmission {round}"));
        let p = Packet::parse(&answer).unwrap();
        assert_eq!(p.code(), Code::AccountingResponse);
        assert_eq!(p.identifier(), 42);
        let req_auth: [u8; 16] = req[4..20].try_into().unwrap();
        assert!(p.verify_response_authenticator(&req_auth, SECRET.as_bytes()));
    }
    srv.wait_applied(0);
    let d = srv.device(imsi).expect("device");
    assert_eq!(d["usage"]["total_up_octets"], 3 * GIGA + 7, "{d}");
    assert_eq!(d["usage"]["total_down_octets"], 11);
    let c = srv.acct_counters();
    assert_eq!(
        (c["received"], c["accepted"], c["duplicates"]),
        (3, 1, 2),
        "{c:?}"
    );
}
