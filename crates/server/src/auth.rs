//! The RADIUS authentication server (RFC 2865) used for admission control:
//! a gateway asks with an Access-Request whether a SIM may open a session;
//! the answer comes from the engine's in-memory state
//! ([`simguard_engine::admission::decide`]) under its read lock.
//!
//! Same shape as the accounting receiver: one thread, batched system calls,
//! the NAS allow-list, Message-Authenticator required per client (an
//! Access-Request has no other integrity check), and anything malformed or
//! unauthenticated dropped and counted. Decisions are not journaled: they
//! change nothing, and the session they admit shows up in accounting.
//! User-Password / CHAP are not checked: simguard decides admission by the
//! SIM's identity, network and state, not by credentials.

use crate::clients::Clients;
use crate::coa::{write_attrs, EnforceState, Mapping};
use crate::config::PacketKind;
use crate::metrics::{AuthMetrics, DropReason};
use crate::udp::{RecvBatch, SendBatch};
use parking_lot::RwLock;
use simguard_engine::admission::{self, AdmissionPolicy, AdmissionRequest, Decision, Grant};
use simguard_engine::{Digits, Engine, Plmn};
use simguard_radius::{attr, Accounting, Code, MessageAuthenticator, Packet, PacketWriter};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Per-server counters (tests and the status API; /metrics has the same
/// numbers process-wide).
#[derive(Default, Debug)]
pub struct AuthStats {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: [AtomicU64; DropReason::ALL.len()],
}

impl AuthStats {
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

/// Reject label of a request that names no SIM.
const NO_IMSI: &str = "no_imsi";

pub struct AuthServer {
    pub sock: Arc<UdpSocket>,
    pub clients: Arc<Clients>,
    /// The reply-attribute mapping of each client, by allow-list index.
    pub mappings: Vec<Mapping>,
    pub engine: Arc<RwLock<Engine>>,
    pub policy: AdmissionPolicy,
    pub metrics: AuthMetrics,
    pub stats: Arc<AuthStats>,
    pub shutdown: Arc<AtomicBool>,
}

fn plmn(p: simguard_radius::tgpp::Plmn) -> Option<Plmn> {
    Plmn::new(p.mcc, p.mnc, p.mnc_digits)
}

/// The admission question in an Access-Request: the IMSI from 3GPP-IMSI,
/// else from User-Name ("IMSI" or "IMSI@realm"); None without one.
fn asked(a: &Accounting<'_>) -> Option<AdmissionRequest> {
    let imsi = a.imsi.and_then(Digits::parse).or_else(|| {
        a.user_name
            .map(|u| u.split('@').next().unwrap_or(u))
            .filter(|u| (6..=15).contains(&u.len()))
            .and_then(Digits::parse)
    });
    imsi.map(|imsi| AdmissionRequest {
        imsi,
        imei: a.imeisv.and_then(Digits::parse),
        network: a.sgsn_mcc_mnc.and_then(plmn),
        rat: a.rat_type.map(|r| r.0),
    })
}

impl AuthServer {
    fn drop_packet(&self, r: DropReason, from: Option<SocketAddr>, detail: &dyn std::fmt::Display) {
        self.metrics.dropped(r);
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.stats.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(reason = r.as_str(), from = ?from, %detail, "access request dropped");
    }

    /// The receive loop; returns when `shutdown` is set.
    pub fn run(self) {
        let mut rb = RecvBatch::new();
        let mut out = SendBatch::default();
        let mut scratch = Vec::with_capacity(512);
        while !self.shutdown.load(Ordering::Relaxed) {
            let n = match rb.recv(&self.sock) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "auth socket receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            for i in 0..n {
                let Some((data, from)) = rb.get(i) else {
                    continue;
                };
                self.metrics.received.increment(1);
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
                if self.answer(data, from, &mut scratch) {
                    out.push_with(from, |o| o.extend_from_slice(&scratch));
                }
            }
            if !out.is_empty() {
                out.flush(&self.sock);
            }
        }
    }

    /// Decides one datagram; true when `reply` holds the answer to send.
    fn answer(&self, data: &[u8], from: SocketAddr, reply: &mut Vec<u8>) -> bool {
        let Some((client_idx, client)) = self.clients.lookup(from.ip()) else {
            self.drop_packet(
                DropReason::UnknownClient,
                Some(from),
                &"source not in radius.clients",
            );
            return false;
        };
        let pkt = match Packet::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.drop_packet(DropReason::Malformed, Some(from), &e);
                return false;
            }
        };
        if pkt.code() != Code::AccessRequest {
            self.drop_packet(DropReason::UnexpectedCode, Some(from), &pkt.code().name());
            return false;
        }
        match pkt.message_authenticator(&client.secret, None) {
            MessageAuthenticator::Valid => {}
            MessageAuthenticator::Invalid => {
                self.drop_packet(
                    DropReason::BadMessageAuthenticator,
                    Some(from),
                    &"Message-Authenticator does not match the shared secret",
                );
                return false;
            }
            MessageAuthenticator::Absent if client.require_message_authenticator => {
                self.drop_packet(
                    DropReason::MissingMessageAuthenticator,
                    Some(from),
                    &"client requires Message-Authenticator",
                );
                return false;
            }
            MessageAuthenticator::Absent => {}
        }
        let a = match Accounting::from_packet(&pkt) {
            Ok(a) => a,
            Err(e) => {
                self.drop_packet(DropReason::BadAttribute, Some(from), &e);
                return false;
            }
        };
        let (code, reply_message, grant) = match asked(&a) {
            None => {
                self.metrics.decided("reject", NO_IMSI);
                (
                    Code::AccessReject,
                    Some("the request names no SIM (3GPP-IMSI or User-Name)".to_string()),
                    None,
                )
            }
            Some(req) => {
                let decision = admission::decide(&self.engine.read(), &req, self.policy);
                match decision {
                    Decision::Accept(g) => {
                        self.metrics.decided("accept", g.as_str());
                        (Code::AccessAccept, None, Some(g))
                    }
                    Decision::Reject(r) => {
                        self.metrics.decided("reject", r.as_str());
                        tracing::info!(imsi = %req.imsi, nas = %client.name, reason = r.as_str(), calling = ?a.calling_station_id, apn = ?a.called_station_id, "admission rejected");
                        (Code::AccessReject, Some(r.to_string()), None)
                    }
                }
            }
        };
        if code == Code::AccessAccept {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }

        let mapped = match (grant, self.mappings.get(client_idx)) {
            (Some(Grant::Throttled), Some(m)) => m.attributes(
                EnforceState::Throttled {
                    kbps: m.throttle_kbps,
                },
                PacketKind::Accept,
            ),
            (Some(Grant::Quarantined), Some(m)) => {
                m.attributes(EnforceState::Quarantined, PacketKind::Accept)
            }
            _ => Vec::new(),
        };
        let mut w = PacketWriter::new(reply, code, pkt.identifier(), [0; 16]);
        // Message-Authenticator first in every response (Blast-RADIUS).
        let written = w
            .message_authenticator()
            .map(|_| ())
            .and_then(|()| write_attrs(&mut w, &mapped))
            .and_then(|()| match &reply_message {
                Some(m) => w
                    .attr(
                        attr::REPLY_MESSAGE,
                        truncate(m, simguard_radius::MAX_ATTR_VALUE_LEN),
                    )
                    .map(|_| ()),
                None => Ok(()),
            })
            .and_then(|()| {
                // RFC 2865 §5.33: Proxy-State goes back unmodified, in order.
                for p in pkt.attributes().filter(|x| x.typ == attr::PROXY_STATE) {
                    w.attr(attr::PROXY_STATE, p.value)?;
                }
                Ok(())
            });
        if let Err(e) = written {
            tracing::error!(error = %e, nas = %client.name, "admission reply does not fit a RADIUS packet");
            return false;
        }
        w.finish_response(pkt.authenticator(), &client.secret);
        true
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &[u8] {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}
