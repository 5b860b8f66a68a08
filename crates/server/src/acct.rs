//! The RADIUS accounting server (RFC 2866): receive, authenticate, decode,
//! hand to the journal, and answer only once the journal made it durable.
//!
//! One receive thread per socket does everything up to the journal hand-off
//! with no locks; the responder thread answers committed batches.

use crate::clients::Clients;
use crate::metrics::{DropReason, Metrics};
use crate::pipeline::{Reply, Submission};
use crate::radius_map;
use crate::udp::{RecvBatch, SendBatch};
use simguard_radius::{Accounting, Code, MessageAuthenticator, Packet, PacketWriter};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Per-server counters (the Prometheus ones are process-wide; these let the
/// API and tests see one server's numbers).
#[derive(Default, Debug)]
pub struct AcctStats {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub dropped: [AtomicU64; DropReason::ALL.len()],
}

impl AcctStats {
    pub fn dropped(&self, r: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|x| *x == r)
            .map_or(0, |i| self.dropped[i].load(Ordering::Relaxed))
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// What is remembered of a recent request, to recognise retransmissions.
struct Seen {
    /// A retransmission repeats the Request Authenticator exactly; a new
    /// request reusing the Identifier does not.
    auth: [u8; 16],
    /// Position of the request in this receiver's submission order.
    ticket: u64,
    at: Instant,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Builds an Accounting-Response for `reply` into `out`.
pub fn write_response(out: &mut Vec<u8>, id: u8, req_auth: &[u8; 16], secret: &[u8]) {
    let w = PacketWriter::new(out, Code::AccountingResponse, id, [0; 16]);
    w.finish_response(req_auth, secret);
}

pub struct AcctReceiver {
    pub sock: Arc<UdpSocket>,
    pub clients: Arc<Clients>,
    pub tx: SyncSender<Submission>,
    pub metrics: Metrics,
    pub stats: Arc<AcctStats>,
    /// Highest ticket the responder has answered (answers leave in ticket order).
    pub answered: Arc<AtomicU64>,
    pub duplicate_window: Duration,
    pub shutdown: Arc<AtomicBool>,
}

impl AcctReceiver {
    fn drop_packet(&self, r: DropReason, from: Option<SocketAddr>, detail: &dyn std::fmt::Display) {
        self.metrics.dropped(r);
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.stats.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(reason = r.as_str(), from = ?from, %detail, "accounting request dropped");
    }

    /// The receive loop; returns when `shutdown` is set or the pipeline is gone.
    pub fn run(self) {
        let mut rb = RecvBatch::new();
        let mut seen: HashMap<(SocketAddr, u8), Seen> = HashMap::new();
        let mut ticket: u64 = 0;
        let mut events = Vec::new();
        let mut replies = Vec::new();
        let mut resend = SendBatch::default();
        let mut scratch = Vec::with_capacity(64);
        let mut last_prune = Instant::now();
        while !self.shutdown.load(Ordering::Relaxed) {
            let n = match rb.recv(&self.sock) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "accounting socket receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let received_ms = now_ms();
            let received_at = Instant::now();
            for i in 0..n {
                let Some((data, from)) = rb.get(i) else {
                    continue;
                };
                self.metrics.acct_received.increment(1);
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(from) = from else {
                    self.drop_packet(DropReason::UnknownClient, None, &"no source address");
                    continue;
                };
                if rb.truncated(i) {
                    self.drop_packet(
                        DropReason::Truncated,
                        Some(from),
                        &"datagram larger than 4096 bytes",
                    );
                    continue;
                }
                let Some((client_idx, client)) = self.clients.lookup(from.ip()) else {
                    self.drop_packet(
                        DropReason::UnknownClient,
                        Some(from),
                        &"source not in radius.clients",
                    );
                    continue;
                };
                let pkt = match Packet::parse(data) {
                    Ok(p) => p,
                    Err(e) => {
                        self.drop_packet(DropReason::Malformed, Some(from), &e);
                        continue;
                    }
                };
                if pkt.code() != Code::AccountingRequest {
                    self.drop_packet(DropReason::UnexpectedCode, Some(from), &pkt.code().name());
                    continue;
                }
                if !pkt.verify_request_authenticator(&client.secret) {
                    self.drop_packet(
                        DropReason::BadAuthenticator,
                        Some(from),
                        &"request authenticator does not match the shared secret",
                    );
                    continue;
                }
                match pkt.message_authenticator(&client.secret, None) {
                    MessageAuthenticator::Valid => {}
                    MessageAuthenticator::Invalid => {
                        self.drop_packet(
                            DropReason::BadMessageAuthenticator,
                            Some(from),
                            &"Message-Authenticator does not match",
                        );
                        continue;
                    }
                    MessageAuthenticator::Absent if client.require_message_authenticator => {
                        self.drop_packet(
                            DropReason::MissingMessageAuthenticator,
                            Some(from),
                            &"client requires Message-Authenticator",
                        );
                        continue;
                    }
                    MessageAuthenticator::Absent => {}
                }
                let key = (from, pkt.identifier());
                let auth = *pkt.authenticator();
                if let Some(s) = seen.get(&key) {
                    if s.auth == auth && s.at.elapsed() < self.duplicate_window {
                        self.metrics.acct_duplicates.increment(1);
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                        // Already durable and answered: the answer was lost, send it again.
                        // Still in flight: its answer is coming, stay quiet.
                        if s.ticket <= self.answered.load(Ordering::Acquire) {
                            resend.push_with(from, |out| {
                                write_response(
                                    &mut scratch,
                                    pkt.identifier(),
                                    &auth,
                                    &client.secret,
                                );
                                out.extend_from_slice(&scratch);
                            });
                        }
                        continue;
                    }
                }
                let acct = match Accounting::from_packet(&pkt) {
                    Ok(a) => a,
                    Err(e) => {
                        self.drop_packet(DropReason::BadAttribute, Some(from), &e);
                        continue;
                    }
                };
                let event = match radius_map::to_event(&acct, &client.name, received_ms) {
                    Ok(e) => e,
                    Err(e) => {
                        self.drop_packet(DropReason::MissingAttribute, Some(from), &e);
                        continue;
                    }
                };
                ticket += 1;
                seen.insert(
                    key,
                    Seen {
                        auth,
                        ticket,
                        at: received_at,
                    },
                );
                events.push(event);
                replies.push(Reply {
                    to: from,
                    id: pkt.identifier(),
                    auth,
                    client: client_idx as u32,
                    received: received_at,
                    ticket,
                });
            }
            if !events.is_empty() {
                let sub = Submission::Radius {
                    events: std::mem::take(&mut events),
                    replies: std::mem::take(&mut replies),
                };
                // Blocking on a full queue is the backpressure: the kernel
                // buffer absorbs the burst and NASes retransmit what it drops.
                match self.tx.try_send(sub) {
                    Ok(()) => {}
                    Err(TrySendError::Full(sub)) => {
                        if self.tx.send(sub).is_err() {
                            break;
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
            if !resend.is_empty() {
                resend.flush(&self.sock);
            }
            if last_prune.elapsed() > Duration::from_secs(1) {
                let w = self.duplicate_window;
                seen.retain(|_, s| s.at.elapsed() < w);
                last_prune = Instant::now();
            }
        }
    }
}

/// Answers committed batches, in order, with as few system calls as possible.
pub fn responder(
    sock: Arc<UdpSocket>,
    clients: Arc<Clients>,
    rx: Receiver<Vec<Reply>>,
    answered: Arc<AtomicU64>,
    metrics: Metrics,
    stats: Arc<AcctStats>,
) {
    let mut batch = SendBatch::default();
    let mut scratch = Vec::with_capacity(64);
    while let Ok(mut replies) = rx.recv() {
        // Take whatever else is already committed: one flush for all.
        while let Ok(more) = rx.try_recv() {
            replies.extend(more);
        }
        let mut top = 0;
        for r in &replies {
            let Some(client) = clients.get(r.client as usize) else {
                continue;
            };
            write_response(&mut scratch, r.id, &r.auth, &client.secret);
            batch.push_with(r.to, |out| out.extend_from_slice(&scratch));
            top = top.max(r.ticket);
        }
        // Mark them answered before the answers leave: a retransmission that
        // arrives right after an answer (which it may have crossed) must find
        // its ticket answered and be answered again, not taken for in flight.
        metrics.acct_accepted.increment(replies.len() as u64);
        stats
            .accepted
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
        answered.fetch_max(top, Ordering::AcqRel);
        batch.flush(&sock);
        let now = Instant::now();
        for r in &replies {
            metrics
                .answer_latency
                .record(now.duration_since(r.received).as_secs_f64());
        }
    }
}
