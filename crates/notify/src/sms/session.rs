//! The task that keeps one bind_transceiver session up: bind, keep-alive,
//! answering the SMSC, reconnecting with back-off, and unbinding at the end.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{interval_at, sleep, Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::config::SmsConfig;
use super::conn::{Conn, ConnError, Frame};
use super::pdu::{status_name, Body, Pdu, Sm};
use super::receipt;
use crate::Receipt;

/// ESME_RINVCMDID: the answer to a request we do not implement.
const ESME_RINVCMDID: u32 = 0x03;
/// ESME_RINVCMDLEN: the answer to a request whose body does not decode.
const ESME_RINVCMDLEN: u32 = 0x02;
/// ESME_RX_T_APPN: "temporary application error", so the SMSC redelivers
/// a receipt we had no room for.
const ESME_RX_T_APPN: u32 = 0x64;

/// State the channel reads without asking the task.
#[derive(Default)]
pub struct Shared {
    bound: AtomicBool,
    binds: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    pub fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Acquire)
    }

    pub fn binds(&self) -> u64 {
        self.binds.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

/// One submit_sm to send, and where its response goes.
pub struct Submit {
    pub sm: Sm,
    pub reply: oneshot::Sender<Result<SubmitResp, String>>,
}

#[derive(Debug)]
pub struct SubmitResp {
    pub status: u32,
    pub message_id: String,
}

pub struct Session {
    pub cfg: Arc<SmsConfig>,
    pub shared: Arc<Shared>,
    pub requests: mpsc::Receiver<Submit>,
    pub receipts: mpsc::Sender<Receipt>,
    pub shutdown: watch::Receiver<bool>,
}

/// How one bound session ended.
enum End {
    /// Shutdown asked for (or the channel dropped): do not reconnect.
    Stop,
    Lost(ConnError),
}

impl Session {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.cfg.reconnect_min_ms),
            Duration::from_millis(self.cfg.reconnect_max_ms),
        );
        let addr = format!("{}:{}", self.cfg.host, self.cfg.port);
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let opened = tokio::select! {
                r = Conn::open(&self.cfg) => r,
                _ = self.shutdown.changed() => return,
            };
            match opened {
                Ok((conn, smsc)) => {
                    info!(%addr, system_id = %self.cfg.system_id, smsc = %smsc, "SMPP bound as transceiver");
                    backoff.reset();
                    self.shared.binds.fetch_add(1, Ordering::Relaxed);
                    self.shared.bound.store(true, Ordering::Release);
                    let end = self.serve(conn).await;
                    self.shared.bound.store(false, Ordering::Release);
                    match end {
                        End::Stop => {
                            info!(%addr, "SMPP unbound");
                            return;
                        }
                        End::Lost(e) => {
                            warn!(%addr, error = %e, "SMPP session lost");
                            self.shared.set_error(e.to_string());
                        }
                    }
                }
                Err(e) => {
                    warn!(%addr, error = %e, "SMPP bind failed");
                    self.shared.set_error(e.to_string());
                }
            }
            let delay = backoff.next();
            debug!(?delay, "SMPP reconnect back-off");
            if !self.idle(delay).await {
                return;
            }
        }
    }

    /// Waits out the back-off, answering submits at once rather than
    /// letting them wait for a session that may be minutes away. Returns
    /// false when it is time to stop.
    async fn idle(&mut self, delay: Duration) -> bool {
        let until = sleep(delay);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => return true,
                _ = self.shutdown.changed() => return false,
                req = self.requests.recv() => match req {
                    None => return false,
                    Some(s) => {
                        let why = self.shared.last_error().unwrap_or_default();
                        let _ = s.reply.send(Err(format!("no SMPP session: {why}")));
                    }
                },
            }
        }
    }

    async fn serve(&mut self, mut conn: Conn) -> End {
        let every = self.cfg.enquire_link_interval();
        let wait = self.cfg.response_timeout();
        let mut keepalive = interval_at(Instant::now() + every, every);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Often enough to notice an unanswered enquire_link about on time.
        let sweep_every = wait.min(every).max(Duration::from_millis(20)) / 2;
        let mut sweep = interval_at(Instant::now() + sweep_every, sweep_every);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending: HashMap<u32, oneshot::Sender<Result<SubmitResp, String>>> = HashMap::new();
        let mut enquiry: Option<(u32, Instant)> = None;

        let end = loop {
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => break End::Stop,
                frame = conn.read() => {
                    let frame = match frame {
                        Ok(f) => f,
                        Err(e) => break End::Lost(e),
                    };
                    if let Err(e) = self.on_frame(&mut conn, frame, &mut pending, &mut enquiry).await {
                        break End::Lost(e);
                    }
                }
                req = self.requests.recv() => {
                    let Some(s) = req else { break End::Stop };
                    // The caller gave up (time-out): sending it now would
                    // deliver a message reported as not delivered.
                    if s.reply.is_closed() {
                        continue;
                    }
                    let seq = conn.next_seq();
                    if let Err(e) = conn.write(&Pdu::new(seq, Body::SubmitSm(s.sm))).await {
                        let _ = s.reply.send(Err(e.to_string()));
                        break End::Lost(e);
                    }
                    pending.insert(seq, s.reply);
                }
                _ = keepalive.tick() => {
                    if enquiry.is_none() {
                        let seq = conn.next_seq();
                        if let Err(e) = conn.write(&Pdu::new(seq, Body::EnquireLink)).await {
                            break End::Lost(e);
                        }
                        enquiry = Some((seq, Instant::now()));
                    }
                }
                _ = sweep.tick() => {
                    if let Some((_, sent)) = enquiry {
                        if sent.elapsed() > wait {
                            break End::Lost(ConnError::Timeout("enquire_link", wait));
                        }
                    }
                    pending.retain(|_, reply| !reply.is_closed());
                }
            }
        };

        if matches!(end, End::Stop) {
            self.unbind(&mut conn).await;
        }
        let why = match &end {
            End::Stop => "channel shut down".to_string(),
            End::Lost(e) => e.to_string(),
        };
        for (_, reply) in pending.drain() {
            let _ = reply.send(Err(format!("connection lost before submit_sm_resp: {why}")));
        }
        conn.close().await;
        end
    }

    async fn on_frame(
        &mut self,
        conn: &mut Conn,
        frame: Frame,
        pending: &mut HashMap<u32, oneshot::Sender<Result<SubmitResp, String>>>,
        enquiry: &mut Option<(u32, Instant)>,
    ) -> Result<(), ConnError> {
        let pdu = match frame {
            Frame::Pdu(p) => p,
            Frame::Malformed { header, error } => {
                warn!(command_id = header.command_id, %error, "malformed SMPP PDU");
                if let Some(reply) = pending.remove(&header.sequence_number) {
                    let _ = reply.send(Err(format!("malformed submit_sm_resp: {error}")));
                } else if header.command_id & super::pdu::cmd::RESP == 0 {
                    let mut nack = Pdu::new(header.sequence_number, Body::GenericNack);
                    nack.command_status = ESME_RINVCMDLEN;
                    conn.write(&nack).await?;
                }
                return Ok(());
            }
        };
        let seq = pdu.sequence_number;
        match pdu.body {
            Body::SubmitSmResp { message_id } => {
                if let Some(reply) = pending.remove(&seq) {
                    let _ = reply.send(Ok(SubmitResp {
                        status: pdu.command_status,
                        message_id,
                    }));
                }
            }
            Body::GenericNack => {
                warn!(
                    seq,
                    status = status_name(pdu.command_status),
                    "SMPP generic_nack"
                );
                if let Some(reply) = pending.remove(&seq) {
                    let _ = reply.send(Err(format!(
                        "generic_nack {} (0x{:08x})",
                        status_name(pdu.command_status),
                        pdu.command_status
                    )));
                }
            }
            Body::EnquireLinkResp => {
                if enquiry.is_some_and(|(s, _)| s == seq) {
                    *enquiry = None;
                }
            }
            Body::EnquireLink => {
                conn.write(&Pdu::new(seq, Body::EnquireLinkResp)).await?;
            }
            Body::DeliverSm(sm) => {
                let status = self.on_deliver(&sm);
                let mut resp = Pdu::new(
                    seq,
                    Body::DeliverSmResp {
                        message_id: String::new(),
                    },
                );
                resp.command_status = status;
                conn.write(&resp).await?;
            }
            Body::Unbind => {
                conn.write(&Pdu::new(seq, Body::UnbindResp)).await?;
                return Err(ConnError::Unbound);
            }
            other if other.command_id() & super::pdu::cmd::RESP == 0 => {
                debug!(command_id = other.command_id(), "unsupported SMPP request");
                let mut nack = Pdu::new(seq, Body::GenericNack);
                nack.command_status = ESME_RINVCMDID;
                conn.write(&nack).await?;
            }
            other => debug!(command_id = other.command_id(), "stray SMPP response"),
        }
        Ok(())
    }

    /// Queues a receipt; returns the deliver_sm_resp status.
    fn on_deliver(&self, sm: &Sm) -> u32 {
        if !receipt::is_receipt(sm.esm_class) {
            // A mobile-originated message: nothing here reads replies yet,
            // and refusing it would make the SMSC retry it for days.
            info!(from = %sm.source.addr, "SMPP mobile-originated message ignored");
            return 0;
        }
        let Some(r) = receipt::parse(sm) else {
            warn!("SMPP delivery receipt without a message id ignored");
            return 0;
        };
        debug!(id = %r.message_id, state = %r.state, "SMPP delivery receipt");
        match self.receipts.try_send(r) {
            Ok(()) => 0,
            Err(mpsc::error::TrySendError::Full(r)) => {
                warn!(id = %r.message_id, "receipt queue full; SMSC asked to redeliver");
                ESME_RX_T_APPN
            }
            // Nobody reads receipts: accept them so the SMSC stops sending.
            Err(mpsc::error::TrySendError::Closed(_)) => 0,
        }
    }

    /// Polite end: unbind and wait briefly for unbind_resp, answering
    /// nothing else (we are leaving).
    async fn unbind(&mut self, conn: &mut Conn) {
        let seq = conn.next_seq();
        if conn.write(&Pdu::new(seq, Body::Unbind)).await.is_err() {
            return;
        }
        let wait = self.cfg.response_timeout();
        let deadline = Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, conn.read()).await {
                Ok(Ok(Frame::Pdu(p))) if p.body == Body::UnbindResp && p.sequence_number == seq => {
                    return
                }
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return,
                Err(_) => {
                    debug!("no unbind_resp in time");
                    return;
                }
            }
        }
    }
}

/// Exponential back-off between `min` and `max`, each delay shortened by
/// up to a fifth at random so many ESMEs cut off by the same SMSC restart
/// do not all come back in the same instant.
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    hasher: RandomState,
    n: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
            hasher: RandomState::new(),
            n: 0,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    pub fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.n += 1;
        let fraction = (self.hasher.hash_one(self.n) % 1000) as f64 / 5000.0;
        base.mul_f64(1.0 - fraction).max(self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let got: Vec<Duration> = (0..6).map(|_| b.next()).collect();
        for (d, base) in got.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            assert!(
                *d <= ms(base) && *d >= ms(base * 4 / 5).max(ms(100)),
                "{d:?} vs {base}"
            );
        }
        b.reset();
        assert_eq!(b.next(), ms(100));
    }
}
