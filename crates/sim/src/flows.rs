//! The traffic behind the accounting: for every Interim-Update and Stop, the flows that
//! make up the usage the record adds, exported as IPFIX.
//!
//! The uplink flows of a record (device → remote) add up exactly to the growth of
//! Acct-Input-Octets/-Packets since the session's previous record, the downlink flows
//! (remote → device) to that of Acct-Output-Octets/-Packets; they lie within
//! `[previous record, this record]` and the device side is the session's
//! Framed-IP-Address. The first record of a session that was already open when the
//! simulation started covers everything since the session's start, so the flows of a
//! session always add up to its counters.
//!
//! Each device draws from its own ChaCha8 stream (seed, `flow_stream(index)`), apart
//! from the one its records come from, so exporting flows changes no Accounting-Request.
//! Remote ends are all in the RFC 5737 documentation ranges: nothing is ever sent to
//! them, they only appear inside the IPFIX records.

use std::net::Ipv4Addr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::device::{Device, Kind, Record, Usage};
use crate::fleet::{flow_stream, rng};
use crate::ipfix::{Encoder, FlowRecord};
use crate::profile::Profile;

pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;
/// A whole TCP connection within one record: SYN, ACK, PSH, FIN.
const TCP_WHOLE: u16 = SYN | ACK | PSH | FIN;

/// Utility head-ends of the smart meters; each meter talks to one of them, HTTPS.
pub(crate) const METER_HEAD_ENDS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 10),
    Ipv4Addr::new(198, 51, 100, 11),
];
/// The utility's NTP server, which meters ask now and then.
pub(crate) const NTP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 123);
/// Tracking clouds (MQTT over TLS, 8883); each tracker has one.
pub(crate) const TRACKER_CLOUDS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 20),
    Ipv4Addr::new(203, 0, 113, 21),
];
/// The resolver trackers look their cloud up with.
pub(crate) const DNS_RESOLVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// Hospital endpoints (HTTPS); each monitor reports to one.
pub(crate) const HOSPITALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(203, 0, 113, 40),
    Ipv4Addr::new(203, 0, 113, 41),
    Ipv4Addr::new(203, 0, 113, 42),
];
/// Card payments of the vending machines (HTTPS).
pub(crate) const PAYMENT_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 50);
/// Vending telemetry and price lists (MQTT, 1883).
pub(crate) const VENDING_TELEMETRY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 60);
/// Where the cameras stream to: RTP on 5004 (RTCP back from 5005), or TLS on 443.
pub(crate) const VIDEO_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

/// The device vendors' firmware update server (HTTPS), for firmware-update days.
pub const FIRMWARE_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);

/// One exported flow and its direction as seen from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    pub uplink: bool,
    pub record: FlowRecord,
}

/// Per-device state: where it is in its stream (the generator itself is rebuilt per
/// record, so a million devices cost a few bytes each), its fixed choices, its
/// long-lived connection.
#[derive(Clone, Copy)]
struct FlowDev {
    word_pos: u128,
    /// Which head-end, cloud, hospital; for cameras 0–1 RTP, 2 TLS.
    choice: usize,
    /// Charging id of the session the connection below belongs to.
    session: Option<u32>,
    /// Local port of the connection that lasts the session (tracker MQTT, camera stream).
    port: u16,
}

/// One conversation of a record: a 5-tuple, a time window, and its share of each
/// direction (fixed single-packet exchanges take theirs off the top).
struct Conv {
    remote: Ipv4Addr,
    remote_port: u16,
    local_port: u16,
    proto: u8,
    flags: u16,
    start: u64,
    end: u64,
    up_weight: u64,
    down_weight: u64,
    /// One packet each way of exactly these sizes (DNS, NTP), if the usage allows it.
    fixed: Option<(u64, u64)>,
}

fn ephemeral(r: &mut ChaCha8Rng) -> u16 {
    r.gen_range(49_152..=65_535)
}

/// A window of `lo..=hi` ms (clipped to the span) somewhere within `[from, to]`.
fn window(r: &mut ChaCha8Rng, from: u64, to: u64, lo: u64, hi: u64) -> (u64, u64) {
    let span = to.saturating_sub(from);
    let hi = hi.min(span);
    let lo = lo.min(hi);
    let d = r.gen_range(lo..=hi);
    let start = from + r.gen_range(0..=span - d);
    (start, start + d)
}

pub(crate) struct FlowGen {
    seed: u64,
    devs: Vec<Option<FlowDev>>,
    convs: Vec<Conv>,
}

impl FlowGen {
    pub fn new(seed: u64, devices: usize) -> FlowGen {
        FlowGen {
            seed,
            devs: (0..devices).map(|_| None).collect(),
            convs: Vec::with_capacity(4),
        }
    }

    /// Appends the flows behind `rec` of `dev` to `out`.
    pub fn flows(&mut self, dev: &Device, rec: &Record, out: &mut Vec<Flow>) {
        let (Some(u), Some(s)) = (rec.usage, dev.session.as_ref()) else {
            return;
        };
        let Some(ip) = s.framed_ip else {
            // No address, nothing a probe could see; only an exhausted pool does this.
            return;
        };
        if u.up + u.down + u.up_pkts + u.down_pkts == 0 {
            return;
        }
        let Some(slot) = self.devs.get_mut(dev.index as usize) else {
            return;
        };
        let mut r = rng(self.seed, flow_stream(dev.index));
        let fd = slot.get_or_insert_with(|| {
            let choice = match dev.profile {
                Profile::SmartMeter => r.gen_range(0..METER_HEAD_ENDS.len()),
                Profile::PalletTracker => r.gen_range(0..TRACKER_CLOUDS.len()),
                Profile::PatientMonitor => r.gen_range(0..HOSPITALS.len()),
                Profile::VendingMachine => 0,
                Profile::Camera => r.gen_range(0..3),
            };
            FlowDev {
                word_pos: r.get_word_pos(),
                choice,
                session: None,
                port: 0,
            }
        });
        r.set_word_pos(fd.word_pos);
        let first = fd.session != Some(s.charging_id);
        if first {
            fd.session = Some(s.charging_id);
            fd.port = if dev.profile == Profile::Camera && fd.choice < 2 {
                // RTP on an even port, RTCP on the next one.
                r.gen_range(24_576..=32_767u16) * 2
            } else {
                ephemeral(&mut r)
            };
        }
        let last = rec.kind == Kind::Stop;
        // A connection that lasts the session: SYN in its first record, FIN in its last.
        let long_flags = ACK | PSH | if first { SYN } else { 0 } | if last { FIN } else { 0 };
        self.convs.clear();
        build_convs(
            dev.profile,
            fd,
            &mut r,
            &u,
            first,
            long_flags,
            &mut self.convs,
        );
        fd.word_pos = r.get_word_pos();
        split(&self.convs, ip, &u, out);
    }
}

fn build_convs(
    profile: Profile,
    fd: &FlowDev,
    r: &mut ChaCha8Rng,
    u: &Usage,
    first: bool,
    long_flags: u16,
    convs: &mut Vec<Conv>,
) {
    let (from, to) = (u.from_ms, u.to_ms);
    let span = to.saturating_sub(from);
    let whole = |r: &mut ChaCha8Rng| window(r, from, to, span * 9 / 10, span);
    match profile {
        Profile::SmartMeter => {
            // Push the register readings (and now and then fetch firmware) over HTTPS.
            let (start, end) = window(r, from, to, span / 2, span);
            let port = ephemeral(r);
            convs.push(Conv {
                remote: METER_HEAD_ENDS[fd.choice],
                remote_port: 443,
                local_port: port,
                proto: PROTO_TCP,
                flags: TCP_WHOLE,
                start,
                end,
                up_weight: 1,
                down_weight: 1,
                fixed: None,
            });
            if r.gen_ratio(1, 8) {
                let (start, end) = window(r, from, to, 0, 50);
                let port = ephemeral(r);
                convs.push(Conv {
                    remote: NTP_SERVER,
                    remote_port: 123,
                    local_port: port,
                    proto: PROTO_UDP,
                    flags: 0,
                    start,
                    end,
                    up_weight: 0,
                    down_weight: 0,
                    fixed: Some((76, 76)),
                });
            }
        }
        Profile::PalletTracker => {
            let (start, end) = whole(r);
            convs.push(Conv {
                remote: TRACKER_CLOUDS[fd.choice],
                remote_port: 8883,
                local_port: fd.port,
                proto: PROTO_TCP,
                flags: long_flags,
                start,
                end,
                up_weight: 1,
                down_weight: 1,
                fixed: None,
            });
            // Look the cloud up on attach, and again when the answer's TTL ran out.
            if first || r.gen_ratio(1, 12) {
                let (start, end) = window(r, from, to, 0, 200);
                let port = ephemeral(r);
                let q = r.gen_range(60..=80);
                let a = r.gen_range(90..=140);
                convs.push(Conv {
                    remote: DNS_RESOLVER,
                    remote_port: 53,
                    local_port: port,
                    proto: PROTO_UDP,
                    flags: 0,
                    start,
                    end,
                    up_weight: 0,
                    down_weight: 0,
                    fixed: Some((q, a)),
                });
            }
        }
        Profile::PatientMonitor => {
            // The hourly upload of vital-sign series: a burst of 10 s to 2 min.
            let (start, end) = window(r, from, to, 10_000, 120_000);
            let port = ephemeral(r);
            convs.push(Conv {
                remote: HOSPITALS[fd.choice],
                remote_port: 443,
                local_port: port,
                proto: PROTO_TCP,
                flags: TCP_WHOLE,
                start,
                end,
                up_weight: 1,
                down_weight: 1,
                fixed: None,
            });
        }
        Profile::VendingMachine => {
            // Card transactions: a short HTTPS exchange with the payment gateway.
            let (start, end) = window(r, from, to, 1_000, 15_000);
            let port = ephemeral(r);
            let up = r.gen_range(10..=30);
            let down = r.gen_range(10..=30);
            convs.push(Conv {
                remote: PAYMENT_GATEWAY,
                remote_port: 443,
                local_port: port,
                proto: PROTO_TCP,
                flags: TCP_WHOLE,
                start,
                end,
                up_weight: up,
                down_weight: down,
                fixed: None,
            });
            // Telemetry and sales to the operator, price lists back.
            let (start, end) = window(r, from, to, span / 2, span);
            let port = ephemeral(r);
            convs.push(Conv {
                remote: VENDING_TELEMETRY,
                remote_port: 1883,
                local_port: port,
                proto: PROTO_TCP,
                flags: TCP_WHOLE,
                start,
                end,
                up_weight: 100 - up,
                down_weight: 100 - down,
                fixed: None,
            });
        }
        Profile::Camera => {
            let (start, end) = whole(r);
            if fd.choice < 2 {
                // RTP up to the video server, RTCP receiver reports back.
                convs.push(Conv {
                    remote: VIDEO_SERVER,
                    remote_port: 5004,
                    local_port: fd.port,
                    proto: PROTO_UDP,
                    flags: 0,
                    start,
                    end,
                    up_weight: 1,
                    down_weight: 0,
                    fixed: None,
                });
                convs.push(Conv {
                    remote: VIDEO_SERVER,
                    remote_port: 5005,
                    local_port: fd.port + 1,
                    proto: PROTO_UDP,
                    flags: 0,
                    start,
                    end,
                    up_weight: 0,
                    down_weight: 1,
                    fixed: None,
                });
            } else {
                convs.push(Conv {
                    remote: VIDEO_SERVER,
                    remote_port: 443,
                    local_port: fd.port,
                    proto: PROTO_TCP,
                    flags: long_flags,
                    start,
                    end,
                    up_weight: 1,
                    down_weight: 1,
                    fixed: None,
                });
            }
        }
    }
}

/// Shares of `bytes`/`packets` in proportion to `weights`: packets by weight, bytes by
/// packets, the heaviest weight taking the remainders; the shares add up exactly, and
/// each has at least as many bytes as packets when the total does.
fn shares(bytes: u64, packets: u64, weights: &[u64], out: &mut Vec<(u64, u64)>) {
    out.clear();
    let total: u64 = weights.iter().sum();
    let Some(main) = (0..weights.len()).max_by_key(|&i| (weights[i], usize::MAX - i)) else {
        return;
    };
    if total == 0 {
        out.extend(weights.iter().map(|_| (0, 0)));
        return;
    }
    let (mut b_left, mut p_left) = (bytes, packets);
    for (i, w) in weights.iter().enumerate() {
        if i == main {
            out.push((0, 0));
            continue;
        }
        let p = (u128::from(packets) * u128::from(*w) / u128::from(total)) as u64;
        let b = if packets == 0 {
            0
        } else {
            (u128::from(bytes) * u128::from(p) / u128::from(packets)) as u64
        };
        b_left -= b;
        p_left -= p;
        out.push((b, p));
    }
    out[main] = (b_left, p_left);
}

/// Turns the conversations into flows carrying exactly the usage `u`.
fn split(convs: &[Conv], ip: Ipv4Addr, u: &Usage, out: &mut Vec<Flow>) {
    // Single-packet exchanges first, when what is left still has a plausible
    // packet size (at least 40 bytes a packet) in both directions.
    let mut rest = (u.up, u.up_pkts, u.down, u.down_pkts);
    let mut fixed: Vec<Option<(u64, u64)>> = Vec::with_capacity(convs.len());
    for c in convs {
        let take = c.fixed.filter(|&(q, a)| {
            rest.1 >= 2
                && rest.3 >= 2
                && rest.0 >= q + 40 * (rest.1 - 1)
                && rest.2 >= a + 40 * (rest.3 - 1)
        });
        if let Some((q, a)) = take {
            rest = (rest.0 - q, rest.1 - 1, rest.2 - a, rest.3 - 1);
        }
        fixed.push(take);
    }
    let weights_up: Vec<u64> = convs.iter().map(|c| c.up_weight).collect();
    let weights_down: Vec<u64> = convs.iter().map(|c| c.down_weight).collect();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    shares(rest.0, rest.1, &weights_up, &mut up);
    shares(rest.2, rest.3, &weights_down, &mut down);
    for (i, c) in convs.iter().enumerate() {
        let (mut ub, mut up_p) = up.get(i).copied().unwrap_or((0, 0));
        let (mut db, mut dp) = down.get(i).copied().unwrap_or((0, 0));
        if let Some((q, a)) = fixed[i] {
            (ub, up_p, db, dp) = (ub + q, up_p + 1, db + a, dp + 1);
        }
        let rec = |src, dst, sp, dp_, bytes, packets| FlowRecord {
            src,
            dst,
            src_port: sp,
            dst_port: dp_,
            proto: c.proto,
            tcp_flags: c.flags,
            octets: bytes,
            packets,
            start_ms: c.start,
            end_ms: c.end,
        };
        if ub + up_p > 0 {
            out.push(Flow {
                uplink: true,
                record: rec(ip, c.remote, c.local_port, c.remote_port, ub, up_p),
            });
        }
        if db + dp > 0 {
            out.push(Flow {
                uplink: false,
                record: rec(c.remote, ip, c.remote_port, c.local_port, db, dp),
            });
        }
    }
}

/// Flow generation plus IPFIX encoding, without the network. Messages are cut
/// deterministically: a message holds the flows of records of one simulated second
/// (its export time) and is complete when full, or once the next event is in a later
/// second (or there is none), so the byte stream depends only on the seed and the
/// configuration.
pub(crate) struct FlowExporter {
    gen: FlowGen,
    enc: Encoder,
    scratch: Vec<Flow>,
    pending: Vec<FlowRecord>,
    pending_secs: Option<u64>,
    /// Encoded messages not yet sent, with their number of records.
    pub out: Vec<(Vec<u8>, usize)>,
}

impl FlowExporter {
    pub fn new(seed: u64, devices: usize, domain: u32) -> FlowExporter {
        FlowExporter {
            gen: FlowGen::new(seed, devices),
            enc: Encoder::new(domain),
            scratch: Vec::with_capacity(8),
            pending: Vec::with_capacity(32),
            pending_secs: None,
            out: Vec::new(),
        }
    }

    /// Generates and encodes the flows behind `rec`; returns them (for the ground truth).
    pub fn on_record(&mut self, dev: &Device, rec: &Record) -> &[Flow] {
        self.scratch.clear();
        self.gen.flows(dev, rec, &mut self.scratch);
        let secs = rec.time_ms / 1_000;
        if !self.scratch.is_empty() && self.pending_secs.is_some_and(|p| p != secs) {
            self.flush();
        }
        for i in 0..self.scratch.len() {
            self.pending_secs = Some(secs);
            self.pending.push(self.scratch[i].record);
            if self.pending.len() >= self.enc.capacity() {
                self.flush();
            }
        }
        &self.scratch
    }

    /// Adds a flow generated outside the records (attack traffic, firmware), leaving
    /// the exporter in simulated second `secs`.
    pub fn push(&mut self, secs: u64, record: FlowRecord) {
        if self.pending_secs.is_some_and(|p| p != secs) {
            self.flush();
        }
        self.pending_secs = Some(secs);
        self.pending.push(record);
        if self.pending.len() >= self.enc.capacity() {
            self.flush();
        }
    }

    /// Completes the pending message unless the next event (at `next_ms`) can still add
    /// to it.
    pub fn after_record(&mut self, next_ms: Option<u64>) {
        match (self.pending_secs, next_ms) {
            (Some(p), Some(n)) if n / 1_000 == p => {}
            _ => self.flush(),
        }
    }

    /// Encodes whatever is pending.
    pub fn flush(&mut self) {
        if let Some(secs) = self.pending_secs.take() {
            if !self.pending.is_empty() {
                let mut m = Vec::with_capacity(crate::ipfix::MAX_MESSAGE_BYTES);
                self.enc
                    .encode(secs.min(u64::from(u32::MAX)) as u32, &self.pending, &mut m);
                self.out.push((m, self.pending.len()));
                self.pending.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_exactly() {
        let mut out = Vec::new();
        for (b, p) in [(0, 0), (1, 1), (100, 3), (1_000_003, 7_777), (9, 9)] {
            for w in [
                &[1u64][..],
                &[1, 1],
                &[30, 70],
                &[1, 0],
                &[0, 1],
                &[3, 1, 5],
            ] {
                shares(b, p, w, &mut out);
                assert_eq!(out.len(), w.len());
                assert_eq!(out.iter().map(|x| x.0).sum::<u64>(), b);
                assert_eq!(out.iter().map(|x| x.1).sum::<u64>(), p);
                for (i, (sb, sp)) in out.iter().enumerate() {
                    assert!(sb >= sp, "{b} {p} {w:?}");
                    if w[i] == 0 {
                        assert_eq!((*sb, *sp), (0, 0));
                    }
                }
            }
        }
    }
}
