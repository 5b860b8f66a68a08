//! kill -9 under load from several radclients, then a restart on the same
//! data directory: every answered request is in the recovered state, nothing
//! is counted twice, and NAS retransmissions after the restart are idempotent.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

const FILES: usize = 4;
const IMSIS_PER_FILE: usize = 500;
/// Start, Interim, Interim per IMSI.
const ROUNDS: usize = 3;

fn imsi(f: usize, i: usize) -> String {
    format!("90170{f:02}{i:08}")
}

/// Cumulative counters of round `j` of device `g`: distinct per round, so the
/// recovered usage tells which request was the last one applied.
fn counters(g: usize, j: usize) -> (u64, u64) {
    let g = g as u64;
    let j = j as u64 + 1;
    (j * 1_000_000 + g, j * 2_000_000 + 3 * g)
}

/// One file per radclient: every device's Start, then every device's first
/// Interim, then the second, so that a kill leaves devices at all stages.
fn write_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    (0..FILES)
        .map(|f| {
            let mut packets = Vec::with_capacity(IMSIS_PER_FILE * ROUNDS);
            for j in 0..ROUNDS {
                for i in 0..IMSIS_PER_FILE {
                    let (up, down) = counters(f * IMSIS_PER_FILE + i, j);
                    let status = if j == 0 { "Start" } else { "Interim-Update" };
                    packets.push(packet(&[
                        ("Acct-Status-Type", status.into()),
                        ("Acct-Session-Id", q(&format!("crash-{}", imsi(f, i)))),
                        ("3GPP-IMSI", q(&imsi(f, i))),
                        ("3GPP-RAT-Type", "9".into()),
                        ("Acct-Input-Octets", up.to_string()),
                        ("Acct-Output-Octets", down.to_string()),
                        ("Acct-Interim-Interval", "600".into()),
                        ("Message-Authenticator", "0x00".into()),
                    ]));
                }
            }
            let p = dir.join(format!("load-{f}.txt"));
            write_packets(&p, &packets);
            p
        })
        .collect()
}

/// (up, down) of every request per IMSI: those radclient sent, and those it
/// saw answered.
#[derive(Default)]
struct Seen {
    sent: HashMap<String, BTreeSet<(u64, u64)>>,
    answered: HashMap<String, BTreeSet<(u64, u64)>>,
}

impl Seen {
    fn add(&mut self, run: &RadRun) {
        let n = run.requests.len();
        for (k, r) in run.requests.iter().enumerate() {
            if r.attr("Message-Authenticator").is_none() {
                // Killed while printing it: sent after the server was gone.
                assert!(k + 1 == n && !r.answered, "incomplete request {r:?}");
                continue;
            }
            let imsi = r.attr("3GPP-IMSI").expect("IMSI").to_string();
            let c = (
                r.attr_u64("Acct-Input-Octets"),
                r.attr_u64("Acct-Output-Octets"),
            );
            self.sent.entry(imsi.clone()).or_default().insert(c);
            if r.answered {
                self.answered.entry(imsi).or_default().insert(c);
            }
        }
    }

    fn answered_total(&self) -> usize {
        self.answered.values().map(BTreeSet::len).sum()
    }
}

/// Usage, and the session's counters, per device.
fn usage_by_imsi(srv: &Server) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    for d in srv.all_devices("", 1000) {
        let imsi = d["imsi"].as_str().unwrap().to_string();
        let u = (
            d["usage"]["total_up_octets"].as_u64().unwrap(),
            d["usage"]["total_down_octets"].as_u64().unwrap(),
        );
        let s = &d["sessions"][0];
        assert_eq!(
            (s["up_octets"].as_u64(), s["down_octets"].as_u64()),
            (Some(u.0), Some(u.1)),
            "{imsi}: session counters differ from usage: {d}"
        );
        assert_eq!(
            (
                d["usage"]["period_up_octets"].as_u64(),
                d["usage"]["period_down_octets"].as_u64()
            ),
            (Some(u.0), Some(u.1)),
            "{d}"
        );
        assert!(out.insert(imsi.clone(), u).is_none(), "{imsi} listed twice");
    }
    out
}

fn resend_all(srv: &Server, files: &[std::path::PathBuf]) {
    let children: Vec<_> = files
        .iter()
        .map(|f| spawn_radclient(f, srv.acct, SECRET, &["-p", "50", "-r", "3", "-t", "2"]))
        .collect();
    for c in children {
        let run = finish_radclient(c);
        assert_eq!(
            run.requests.len(),
            IMSIS_PER_FILE * ROUNDS,
            "{}",
            run.stderr
        );
        assert_eq!(run.answered(), IMSIS_PER_FILE * ROUNDS, "{}", run.stderr);
        assert!(run.status.success(), "{}", run.stderr);
    }
    srv.wait_applied(0);
}

/// After everything was applied, each device's usage is exactly the last
/// round's cumulative counters.
fn assert_exact_final(srv: &Server) {
    let usage = usage_by_imsi(srv);
    assert_eq!(usage.len(), FILES * IMSIS_PER_FILE);
    for f in 0..FILES {
        for i in 0..IMSIS_PER_FILE {
            let want = counters(f * IMSIS_PER_FILE + i, ROUNDS - 1);
            assert_eq!(usage.get(&imsi(f, i)), Some(&want), "{}", imsi(f, i));
        }
    }
}

#[test]
fn kill_9_under_load_loses_no_answered_request_and_counts_nothing_twice() {
    let tmp = tempdir("crash");
    let data = tmp.path().join("data");
    let files = write_files(tmp.path());
    let mut srv = Server::start(&ServerOpts::new(&data));

    // Four gateways at 1,000 requests/s each, 50 in flight, one retry.
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            spawn_radclient(
                f,
                srv.acct,
                SECRET,
                &["-n", "1000", "-p", "50", "-r", "1", "-t", "2"],
            )
        })
        .collect();
    let t0 = Instant::now();
    // Kill once about a fifth of the load was accepted (well before the
    // ~1.5 s the radclients need).
    wait_for("1,200 accepted requests", Duration::from_secs(20), || {
        (srv.acct_counters()["accepted"] >= 1200).then_some(())
    });
    srv.kill9();
    let killed_after = t0.elapsed();

    // Answers stop with the server. Whatever radclient read before is
    // printed within moments; then stop the radclients rather than wait for
    // every remaining request to time out.
    std::thread::sleep(Duration::from_millis(1000));
    let mut seen = Seen::default();
    for c in children {
        let run = finish_radclient_within(c, Duration::ZERO, false);
        seen.add(&run);
    }
    let answered = seen.answered_total();
    let sent: usize = seen.sent.values().map(BTreeSet::len).sum();
    assert!(
        (1200..FILES * IMSIS_PER_FILE * ROUNDS).contains(&answered),
        "the kill ({killed_after:?}) did not land mid-run: {answered} of {sent} sent answered"
    );
    assert!(sent > answered, "no request was in flight at the kill");
    eprintln!("killed after {killed_after:?}: {answered} of {sent} requests sent were answered");

    // ---- Restart on the same data directory.
    let srv = Server::start(&ServerOpts::new(&data));
    let status = srv.get_json("/api/v1/status");
    let rec = &status["recovery"];
    let (snap, replayed, last) = (
        rec["snapshot_seq"].as_u64().unwrap(),
        rec["replayed"].as_u64().unwrap(),
        rec["journal_last_seq"].as_u64().unwrap(),
    );
    assert!(replayed > 0 || snap > 0, "no recovery: {status}");
    assert_eq!(
        snap + replayed,
        last,
        "recovery did not reach the journal's end: {rec}"
    );
    // One journal record per accepted request (plus ticks).
    assert!(
        last >= answered as u64,
        "journal ends at {last}, {answered} requests were answered: {rec}"
    );
    assert!(status["engine_seq"].as_u64().unwrap() >= last, "{status}");

    let usage = usage_by_imsi(&srv);
    for (imsi, u) in &usage {
        let sent = seen
            .sent
            .get(imsi)
            .unwrap_or_else(|| panic!("{imsi} exists but radclient never sent it"));
        // Usage is the cumulative counters of exactly one request that
        // reached the server: anything counted twice would not be one.
        assert!(
            sent.contains(u),
            "{imsi}: usage {u:?} is none of the requests sent {sent:?}"
        );
    }
    for (imsi, answered) in &seen.answered {
        let u = usage.get(imsi).unwrap_or_else(|| {
            panic!(
                "{imsi}: {} answered requests but no device after restart",
                answered.len()
            )
        });
        let max = answered.iter().max().unwrap();
        assert!(
            u.0 >= max.0 && u.1 >= max.1,
            "{imsi}: usage {u:?} below the answered {max:?}"
        );
    }
    assert_eq!(status["devices"].as_u64(), Some(usage.len() as u64));
    eprintln!("recovered {} devices: {rec}", usage.len());

    // ---- The gateways retransmit everything after the restart: applied
    // once, so usage is exactly the newest counters, and again unchanged.
    resend_all(&srv, &files);
    assert_exact_final(&srv);
    resend_all(&srv, &files);
    assert_exact_final(&srv);
    let total = (FILES * IMSIS_PER_FILE * ROUNDS) as u64;
    let c = srv.acct_counters();
    assert_eq!(c["accepted"], 2 * total, "{c:?}");
    let dropped: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("dropped_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dropped, 0, "{c:?}");
}
