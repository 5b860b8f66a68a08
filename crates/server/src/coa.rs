//! Enforcement on the gateways: the reply-attribute mapping (what each
//! enforcement state means on the wire, per NAS) and the RFC 5176 client that
//! sends Disconnect-Request and CoA-Request to the NAS owning a session.
//!
//! The [`Enforcer`] owns one UDP socket. Each request gets an Identifier that
//! is free for its NAS, carries Message-Authenticator and Event-Timestamp, and
//! is retransmitted byte for byte (so the NAS sees a duplicate, not a second
//! request) with exponential back-off until an authenticated answer arrives or
//! the attempts run out. Answers are matched by (NAS address, Identifier) and
//! must pass the Response Authenticator (and Message-Authenticator when
//! present) under the NAS's secret; anything else is dropped and counted.

use crate::clients::Clients;
use crate::config::{
    AttributeFormat, AttributeSpec, BlockVia, ClientEnforcement, EnforcementConfig, PacketKind,
    RadiusConfig, StateMapping,
};
use crate::metrics::{CoaDrop, CoaMetrics};
use serde::{Deserialize, Serialize};
use simguard_radius::{attr, coa, tgpp, Code, MessageAuthenticator, Packet, PacketWriter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ------------------------------------------------------------------ mapping --

/// Why a configured mapping cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("{state}: attribute type {typ}: {message}")]
    Attribute {
        state: &'static str,
        typ: u8,
        message: String,
    },
}

/// The enforcement states a mapping describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceState {
    Throttled { kbps: u32 },
    Quarantined,
    Blocked,
    Release,
}

/// One attribute ready to encode, and how the audit trail shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedAttr {
    pub vendor: Option<u32>,
    pub typ: u8,
    pub value: Vec<u8>,
    /// e.g. `Filter-Id = "simguard-throttle-64k"` or `Vendor-Specific(10415/5) = 0x0a0b`.
    pub text: String,
}

/// A NAS's mapping with the defaults filled in and every value checked, so
/// that rendering cannot fail for any rate that fits the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub throttle_kbps: u32,
    pub block_via: BlockVia,
    throttled: Vec<AttributeSpec>,
    quarantined: Vec<AttributeSpec>,
    blocked: Vec<AttributeSpec>,
    release: Vec<AttributeSpec>,
}

fn with_filter_id(m: &StateMapping) -> Vec<AttributeSpec> {
    filter_then(&m.filter_id, &m.attributes)
}

fn filter_then(filter_id: &str, attributes: &[AttributeSpec]) -> Vec<AttributeSpec> {
    let mut v = Vec::with_capacity(attributes.len() + 1);
    if !filter_id.is_empty() {
        v.push(AttributeSpec {
            vendor: None,
            typ: attr::FILTER_ID,
            value: filter_id.to_string(),
            format: AttributeFormat::String,
            only: None,
        });
    }
    v.extend(attributes.iter().cloned());
    v
}

impl Mapping {
    /// The client's mapping over the default one, checked.
    pub fn resolve(
        default: &EnforcementConfig,
        client: &ClientEnforcement,
    ) -> Result<Mapping, MappingError> {
        let blocked = client.blocked.as_ref().unwrap_or(&default.blocked);
        let m = Mapping {
            throttle_kbps: client.throttle_kbps.unwrap_or(default.throttle_kbps),
            block_via: blocked.via,
            throttled: with_filter_id(client.throttled.as_ref().unwrap_or(&default.throttled)),
            quarantined: with_filter_id(
                client.quarantined.as_ref().unwrap_or(&default.quarantined),
            ),
            blocked: filter_then(&blocked.filter_id, &blocked.attributes),
            release: with_filter_id(client.release.as_ref().unwrap_or(&default.release)),
        };
        for (state, list) in [
            ("throttled", &m.throttled),
            ("quarantined", &m.quarantined),
            ("blocked", &m.blocked),
            ("release", &m.release),
        ] {
            for spec in list {
                check_spec(spec).map_err(|message| MappingError::Attribute {
                    state,
                    typ: spec.typ,
                    message,
                })?;
            }
        }
        Ok(m)
    }

    fn specs(&self, state: EnforceState) -> &[AttributeSpec] {
        match state {
            EnforceState::Throttled { .. } => &self.throttled,
            EnforceState::Quarantined => &self.quarantined,
            EnforceState::Blocked => &self.blocked,
            EnforceState::Release => &self.release,
        }
    }

    /// The attributes for `state` in a packet of `kind`. An attribute whose
    /// value does not encode for this rate (an integer `{bps}` past 32 bits)
    /// is left out and logged rather than sent wrong.
    pub fn attributes(&self, state: EnforceState, kind: PacketKind) -> Vec<RenderedAttr> {
        let kbps = match state {
            EnforceState::Throttled { kbps } => kbps,
            _ => self.throttle_kbps,
        };
        self.specs(state)
            .iter()
            .filter(|s| s.only.is_none_or(|o| o == kind))
            .filter_map(|s| match render(s, kbps) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(typ = s.typ, vendor = ?s.vendor, kbps, error = %e, "mapped attribute left out");
                    None
                }
            })
            .collect()
    }
}

/// Attributes the request itself sets (identification, authenticators) or
/// that must not be sent as plain attributes.
const RESERVED: [u8; 7] = [
    attr::USER_NAME,
    attr::FRAMED_IP_ADDRESS,
    attr::VENDOR_SPECIFIC,
    attr::ACCT_SESSION_ID,
    attr::EVENT_TIMESTAMP,
    attr::MESSAGE_AUTHENTICATOR,
    attr::ERROR_CAUSE,
];

fn check_spec(s: &AttributeSpec) -> Result<(), String> {
    if s.typ == 0 {
        return Err("type 0 is not an attribute".into());
    }
    if s.vendor.is_none() && RESERVED.contains(&s.typ) {
        return Err(format!(
            "{} is set by simguard itself (a vendor attribute needs `vendor`)",
            attr::name(s.typ).unwrap_or("this attribute")
        ));
    }
    if s.vendor == Some(0) {
        return Err("vendor 0 is not an enterprise number".into());
    }
    // The default rate and the longest any rate can make the text.
    render(s, 64)?;
    if s.format == AttributeFormat::String {
        render(s, u32::MAX)?;
    }
    Ok(())
}

fn render(s: &AttributeSpec, kbps: u32) -> Result<RenderedAttr, String> {
    let text = s
        .value
        .replace("{kbps}", &kbps.to_string())
        .replace("{bps}", &(u64::from(kbps) * 1000).to_string());
    let (value, shown) = match s.format {
        AttributeFormat::String => (text.as_bytes().to_vec(), format!("{text:?}")),
        AttributeFormat::Integer => {
            let v: u32 = text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a 32-bit unsigned integer"))?;
            (v.to_be_bytes().to_vec(), v.to_string())
        }
        AttributeFormat::Hex => {
            let t = text.trim();
            let t = t.strip_prefix("0x").unwrap_or(t);
            let v = hex::decode(t).map_err(|e| format!("{text:?} is not hex: {e}"))?;
            (v, format!("0x{}", t.to_ascii_lowercase()))
        }
        AttributeFormat::Ipv4 => {
            let ip: Ipv4Addr = text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not an IPv4 address"))?;
            (ip.octets().to_vec(), ip.to_string())
        }
    };
    let max = if s.vendor.is_some() {
        simguard_radius::MAX_VSA_VALUE_LEN
    } else {
        simguard_radius::MAX_ATTR_VALUE_LEN
    };
    if value.len() > max {
        return Err(format!(
            "value is {} octets, at most {max} fit",
            value.len()
        ));
    }
    let name = match s.vendor {
        None => attr::name(s.typ).map_or_else(|| format!("Attr-{}", s.typ), str::to_string),
        Some(v) => format!("Vendor-Specific({v}/{})", s.typ),
    };
    Ok(RenderedAttr {
        vendor: s.vendor,
        typ: s.typ,
        value,
        text: format!("{name} = {shown}"),
    })
}

/// Writes mapped attributes; a packet too full for one is an error.
pub fn write_attrs(
    w: &mut PacketWriter<'_>,
    attrs: &[RenderedAttr],
) -> Result<(), simguard_radius::EncodeError> {
    for a in attrs {
        match a.vendor {
            None => w.attr(a.typ, &a.value)?,
            Some(v) => w.vsa(v, a.typ, &a.value)?,
        };
    }
    Ok(())
}

// -------------------------------------------------------------- public API --

/// What to do to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EnforceAction {
    /// End the session (Disconnect-Request; a CoA with the blocked mapping
    /// for a NAS configured with `blocked.via = "coa"`).
    Disconnect,
    /// Rate-limit the session (CoA-Request with the throttled mapping).
    Throttle { kbps: u32 },
    /// Only the allow-list gets through (CoA-Request, quarantined mapping).
    Quarantine,
    /// Lift a throttle or quarantine (CoA-Request, release mapping).
    Release,
}

impl EnforceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforceAction::Disconnect => "disconnect",
            EnforceAction::Throttle { .. } => "throttle",
            EnforceAction::Quarantine => "quarantine",
            EnforceAction::Release => "release",
        }
    }

    fn state(self) -> EnforceState {
        match self {
            EnforceAction::Disconnect => EnforceState::Blocked,
            EnforceAction::Throttle { kbps } => EnforceState::Throttled { kbps },
            EnforceAction::Quarantine => EnforceState::Quarantined,
            EnforceAction::Release => EnforceState::Release,
        }
    }
}

/// One session to act on, named as the NAS knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforceRequest {
    /// The configured client name (`[[radius.clients]] name`), as accounting
    /// recorded it for the session.
    pub nas: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// Sent as 3GPP-IMSI; and as User-Name when `user_name` is None.
    pub imsi: String,
    /// User-Name as the NAS sent it, when it differs from the IMSI.
    #[serde(default)]
    pub user_name: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    pub action: EnforceAction,
}

impl EnforceRequest {
    pub fn new(
        nas: impl Into<String>,
        session_id: impl Into<String>,
        imsi: impl Into<String>,
        framed_ip: Option<Ipv4Addr>,
        action: EnforceAction,
    ) -> EnforceRequest {
        EnforceRequest {
            nas: nas.into(),
            session_id: session_id.into(),
            imsi: imsi.into(),
            user_name: None,
            framed_ip,
            action,
        }
    }
}

/// How the NAS answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EnforceResult {
    /// Disconnect-ACK / CoA-ACK.
    Ack,
    /// Disconnect-NAK / CoA-NAK. `error_cause` is the RFC 5176 Error-Cause
    /// (0 when the NAK carried none); `text` its name and any Reply-Message.
    Nak { error_cause: u32, text: String },
    /// NAK with Error-Cause 503 (Session-Context-Not-Found): the session is
    /// already gone, which is what a disconnect wanted anyway.
    SessionGone,
    /// No authenticated answer after every attempt.
    Timeout,
    /// No configured client by that name, or none with a CoA address.
    NoSuchNas,
}

impl EnforceResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            EnforceResult::Ack => "ack",
            EnforceResult::Nak { .. } => "nak",
            EnforceResult::SessionGone => "session_gone",
            EnforceResult::Timeout => "timeout",
            EnforceResult::NoSuchNas => "no_such_nas",
        }
    }
}

/// What happened to one request, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforceOutcome {
    pub result: EnforceResult,
    /// Transmissions made (0 when nothing was sent).
    pub attempts: u32,
    /// From the first transmission to the answer; None without one.
    pub rtt_ms: Option<u64>,
    /// Where it went.
    pub to: Option<SocketAddr>,
    /// Packet type sent, e.g. "CoA-Request".
    pub code: Option<String>,
    /// Every attribute sent, human-readable (`Filter-Id = "simguard-quarantine"`).
    pub sent_attributes: Vec<String>,
}

impl EnforceOutcome {
    fn unsent(result: EnforceResult) -> EnforceOutcome {
        EnforceOutcome {
            result,
            attempts: 0,
            rtt_ms: None,
            to: None,
            code: None,
            sent_attributes: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnforcerError {
    #[error("cannot bind the CoA socket on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("radius.clients {nas}: {source}")]
    Mapping {
        nas: String,
        #[source]
        source: MappingError,
    },
}

// ---------------------------------------------------------------- Enforcer --

struct Nas {
    to: Option<SocketAddr>,
    secret: Arc<[u8]>,
    mapping: Mapping,
}

/// What the reader hands to a waiting request.
struct Answer {
    code: Code,
    error_cause: Option<u32>,
    reply_message: Option<String>,
}

struct Waiter {
    authenticator: [u8; 16],
    secret: Arc<[u8]>,
    /// The ACK and NAK codes that answer this request.
    answers: (Code, Code),
    tx: tokio::sync::oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<(IpAddr, u8), Waiter>,
    /// Next Identifier to try, per NAS address.
    next_id: HashMap<IpAddr, u8>,
}

struct Inner {
    sock: tokio::net::UdpSocket,
    nases: HashMap<String, Nas>,
    pending: parking_lot::Mutex<Pending>,
    slots: tokio::sync::Semaphore,
    timeout: Duration,
    attempts: u32,
    metrics: CoaMetrics,
}

/// The RFC 5176 client. Cheap to share (`Arc<Enforcer>`); `send` may be
/// called from many tasks at once.
pub struct Enforcer {
    inner: Arc<Inner>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Enforcer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes a request's slot when its `send` ends, however it ends
/// (including a caller that drops the future).
struct Registered<'a> {
    inner: &'a Inner,
    key: (IpAddr, u8),
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.inner.pending.lock().waiting.remove(&self.key);
    }
}

fn unix_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

impl Enforcer {
    /// Binds the socket and resolves every client's target and mapping.
    /// Must be called inside a tokio runtime.
    pub async fn new(cfg: &RadiusConfig) -> Result<Enforcer, EnforcerError> {
        let addr = cfg.coa.source;
        let sock = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|source| EnforcerError::Bind { addr, source })?;
        let mut nases = HashMap::new();
        for c in &cfg.clients {
            let mapping = Mapping::resolve(&cfg.enforcement, &c.enforcement).map_err(|source| {
                EnforcerError::Mapping {
                    nas: c.name.clone(),
                    source,
                }
            })?;
            let host = match c.address {
                ipnet::IpNet::V4(n) if n.prefix_len() == 32 => Some(IpAddr::V4(n.addr())),
                ipnet::IpNet::V6(n) if n.prefix_len() == 128 => Some(IpAddr::V6(n.addr())),
                _ => None,
            };
            let to = c
                .coa_address
                .or(host)
                .map(|ip| SocketAddr::new(ip, c.coa_port));
            if to.is_none() {
                tracing::warn!(nas = %c.name, address = %c.address, "no coa_address for a NAS given as a prefix: CoA/Disconnect to it will fail");
            }
            nases.insert(
                c.name.clone(),
                Nas {
                    to,
                    secret: Arc::from(c.secret.as_bytes()),
                    mapping,
                },
            );
        }
        let inner = Arc::new(Inner {
            sock,
            nases,
            pending: parking_lot::Mutex::new(Pending::default()),
            slots: tokio::sync::Semaphore::new(cfg.coa.max_in_flight.clamp(1, 256)),
            timeout: Duration::from_millis(cfg.coa.timeout_ms.max(1)),
            attempts: cfg.coa.attempts.max(1),
            metrics: CoaMetrics::new(),
        });
        let reader = tokio::spawn(read_loop(inner.clone()));
        Ok(Enforcer { inner, reader })
    }

    /// The local address requests leave from.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The mapping of a configured NAS (for admission replies and previews).
    pub fn mapping(&self, nas: &str) -> Option<&Mapping> {
        self.inner.nases.get(nas).map(|n| &n.mapping)
    }

    /// What `send` would put on the wire, without sending (dry runs).
    /// None for an unknown NAS.
    pub fn preview(&self, req: &EnforceRequest) -> Option<(Code, Vec<String>)> {
        let nas = self.inner.nases.get(&req.nas)?;
        let (code, attrs) = plan(nas, req, 0);
        Some((code, attrs.into_iter().map(|a| a.text).collect()))
    }

    /// Sends the request to the NAS that owns the session and waits for its
    /// answer (at most the sum of the back-off timeouts, plus the wait for a
    /// free slot when `max_in_flight` requests are out).
    pub async fn send(&self, req: EnforceRequest) -> EnforceOutcome {
        let out = self.send_inner(&req).await;
        self.inner
            .metrics
            .finished(req.action.as_str(), out.result.as_str());
        match &out.result {
            EnforceResult::Ack | EnforceResult::SessionGone => {
                tracing::info!(nas = %req.nas, session = %req.session_id, action = req.action.as_str(), result = out.result.as_str(), attempts = out.attempts, "enforcement answered")
            }
            r => {
                tracing::warn!(nas = %req.nas, session = %req.session_id, action = req.action.as_str(), result = ?r, attempts = out.attempts, "enforcement failed")
            }
        }
        out
    }

    async fn send_inner(&self, req: &EnforceRequest) -> EnforceOutcome {
        let inner = &*self.inner;
        let Some(nas) = inner.nases.get(&req.nas) else {
            return EnforceOutcome::unsent(EnforceResult::NoSuchNas);
        };
        let Some(to) = nas.to else {
            return EnforceOutcome::unsent(EnforceResult::NoSuchNas);
        };
        // The semaphore is never closed; if it were, there would be no slot to wait for.
        let Ok(_slot) = inner.slots.acquire().await else {
            return EnforceOutcome::unsent(EnforceResult::Timeout);
        };
        let (code, attrs) = plan(nas, req, unix_secs());
        let answers = match code {
            Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak),
            _ => (Code::CoaAck, Code::CoaNak),
        };
        let sent_attributes: Vec<String> = attrs.iter().map(|a| a.text.clone()).collect();
        let mut outcome = EnforceOutcome {
            result: EnforceResult::Timeout,
            attempts: 0,
            rtt_ms: None,
            to: Some(to),
            code: Some(code.name().to_string()),
            sent_attributes,
        };

        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let mut packet = Vec::with_capacity(256);
        let guard = {
            let mut p = inner.pending.lock();
            // At most max_in_flight (<= 256) requests are out, so some
            // Identifier is free for this NAS.
            let start = *p.next_id.get(&to.ip()).unwrap_or(&0);
            let Some(id) = (0..=255u8)
                .map(|k| start.wrapping_add(k))
                .find(|id| !p.waiting.contains_key(&(to.ip(), *id)))
            else {
                return EnforceOutcome::unsent(EnforceResult::Timeout);
            };
            p.next_id.insert(to.ip(), id.wrapping_add(1));
            let mut w = PacketWriter::new(&mut packet, code, id, [0; 16]);
            // Message-Authenticator first, as RFC 3579 §3.2 and the
            // Blast-RADIUS advice put it.
            let written = w
                .message_authenticator()
                .map(|_| ())
                .and_then(|()| write_attrs(&mut w, &attrs));
            if let Err(e) = written {
                tracing::error!(error = %e, nas = %req.nas, "CoA request does not fit a RADIUS packet");
                return EnforceOutcome::unsent(EnforceResult::Timeout);
            }
            let bytes = w.finish_request(&nas.secret);
            let mut authenticator = [0u8; 16];
            authenticator.copy_from_slice(&bytes[4..20]);
            p.waiting.insert(
                (to.ip(), id),
                Waiter {
                    authenticator,
                    secret: nas.secret.clone(),
                    answers,
                    tx,
                },
            );
            Registered {
                inner,
                key: (to.ip(), id),
            }
        };

        let t0 = Instant::now();
        let mut wait = inner.timeout;
        for attempt in 1..=inner.attempts {
            outcome.attempts = attempt;
            if attempt > 1 {
                inner.metrics.retransmissions.increment(1);
            }
            if let Err(e) = inner.sock.send_to(&packet, to).await {
                // Counted as an attempt: the back-off gives a transient
                // error (no route yet, buffer full) time to pass.
                tracing::warn!(error = %e, %to, "CoA send failed");
            }
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(answer)) => {
                    outcome.rtt_ms = Some(t0.elapsed().as_millis() as u64);
                    outcome.result = result_of(&answer, answers.0);
                    break;
                }
                // The sender is dropped only with the request's slot: gone.
                Ok(Err(_)) => break,
                Err(_) => wait = wait.saturating_mul(2),
            }
        }
        drop(guard);
        outcome
    }
}

/// The packet code and attributes for a request (identification first, then
/// the mapped attributes).
fn plan(nas: &Nas, req: &EnforceRequest, event_time: u32) -> (Code, Vec<RenderedAttr>) {
    let (code, state) = match (req.action, nas.mapping.block_via) {
        (EnforceAction::Disconnect, BlockVia::Disconnect) => (Code::DisconnectRequest, None),
        (a, _) => (Code::CoaRequest, Some(a.state())),
    };
    let user_name = req.user_name.as_deref().unwrap_or(&req.imsi);
    let mut attrs = vec![
        RenderedAttr {
            vendor: None,
            typ: attr::ACCT_SESSION_ID,
            value: req.session_id.as_bytes().to_vec(),
            text: format!("Acct-Session-Id = {:?}", req.session_id),
        },
        RenderedAttr {
            vendor: None,
            typ: attr::USER_NAME,
            value: user_name.as_bytes().to_vec(),
            text: format!("User-Name = {user_name:?}"),
        },
        RenderedAttr {
            vendor: Some(tgpp::VENDOR_ID),
            typ: tgpp::IMSI,
            value: req.imsi.as_bytes().to_vec(),
            text: format!("3GPP-IMSI = {:?}", req.imsi),
        },
    ];
    if let Some(ip) = req.framed_ip {
        attrs.push(RenderedAttr {
            vendor: None,
            typ: attr::FRAMED_IP_ADDRESS,
            value: ip.octets().to_vec(),
            text: format!("Framed-IP-Address = {ip}"),
        });
    }
    attrs.push(RenderedAttr {
        vendor: None,
        typ: attr::EVENT_TIMESTAMP,
        value: event_time.to_be_bytes().to_vec(),
        text: format!("Event-Timestamp = {event_time}"),
    });
    if let Some(state) = state {
        attrs.extend(nas.mapping.attributes(state, PacketKind::Coa));
    }
    (code, attrs)
}

fn result_of(a: &Answer, ack: Code) -> EnforceResult {
    if a.code == ack {
        return EnforceResult::Ack;
    }
    match a.error_cause {
        Some(coa::SESSION_CONTEXT_NOT_FOUND) => EnforceResult::SessionGone,
        cause => {
            let cause = cause.unwrap_or(0);
            let mut text = if cause == 0 {
                "no Error-Cause".to_string()
            } else {
                coa::error_cause_name(cause).to_string()
            };
            if let Some(m) = &a.reply_message {
                text.push_str(": ");
                text.push_str(m);
            }
            EnforceResult::Nak {
                error_cause: cause,
                text,
            }
        }
    }
}

async fn read_loop(inner: Arc<Inner>) {
    let mut buf = vec![0u8; simguard_radius::MAX_PACKET_LEN + 1];
    loop {
        let (n, from) = match inner.sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on
                // Linux; it says nothing about other requests.
                tracing::debug!(error = %e, "CoA socket receive error");
                continue;
            }
        };
        if let Err(reason) = dispatch(&inner, &buf[..n], from) {
            inner.metrics.dropped(reason);
            tracing::debug!(%from, reason = reason.as_str(), "CoA answer dropped");
        }
    }
}

fn dispatch(inner: &Inner, data: &[u8], from: SocketAddr) -> Result<(), CoaDrop> {
    let pkt = Packet::parse(data).map_err(|_| CoaDrop::Malformed)?;
    let key = (from.ip(), pkt.identifier());
    let mut pending = inner.pending.lock();
    let w = pending.waiting.get(&key).ok_or(CoaDrop::Unmatched)?;
    if pkt.code() != w.answers.0 && pkt.code() != w.answers.1 {
        return Err(CoaDrop::UnexpectedCode);
    }
    if !pkt.verify_response_authenticator(&w.authenticator, &w.secret) {
        return Err(CoaDrop::BadAuthenticator);
    }
    if pkt.message_authenticator(&w.secret, Some(&w.authenticator)) == MessageAuthenticator::Invalid
    {
        return Err(CoaDrop::BadMessageAuthenticator);
    }
    let error_cause = pkt
        .attribute(attr::ERROR_CAUSE)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes);
    let reply_message = pkt
        .attribute(attr::REPLY_MESSAGE)
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let code = pkt.code();
    // Only an authenticated answer takes the slot: a forged one must not
    // end the wait for the real one.
    if let Some(w) = pending.waiting.remove(&key) {
        // The waiter may have given up this instant; nothing to deliver then.
        let _ = w.tx.send(Answer {
            code,
            error_cause,
            reply_message,
        });
    }
    Ok(())
}

/// The admission reply attributes for a client (by index in the allow-list).
pub(crate) fn clients_mappings(
    cfg: &RadiusConfig,
    clients: &Clients,
) -> Result<Vec<Mapping>, EnforcerError> {
    let mut by_name = HashMap::new();
    for c in &cfg.clients {
        let m = Mapping::resolve(&cfg.enforcement, &c.enforcement).map_err(|source| {
            EnforcerError::Mapping {
                nas: c.name.clone(),
                source,
            }
        })?;
        by_name.insert(c.name.clone(), m);
    }
    let default =
        Mapping::resolve(&cfg.enforcement, &ClientEnforcement::default()).map_err(|source| {
            EnforcerError::Mapping {
                nas: "(default)".into(),
                source,
            }
        })?;
    Ok((0..)
        .map_while(|i| clients.get(i))
        .map(|c| {
            by_name
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| default.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BlockedMapping, Config};

    fn spec(vendor: Option<u32>, typ: u8, value: &str, format: AttributeFormat) -> AttributeSpec {
        AttributeSpec {
            vendor,
            typ,
            value: value.into(),
            format,
            only: None,
        }
    }

    #[test]
    fn default_mapping_is_filter_ids_with_the_rate() {
        let cfg = Config::default_config().unwrap();
        let m = Mapping::resolve(&cfg.radius.enforcement, &ClientEnforcement::default()).unwrap();
        let texts = |s| {
            m.attributes(s, PacketKind::Coa)
                .into_iter()
                .map(|a| a.text)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            texts(EnforceState::Throttled { kbps: 64 }),
            ["Filter-Id = \"simguard-throttle-64k\""]
        );
        assert_eq!(
            texts(EnforceState::Throttled { kbps: 256 }),
            ["Filter-Id = \"simguard-throttle-256k\""]
        );
        assert_eq!(
            texts(EnforceState::Quarantined),
            ["Filter-Id = \"simguard-quarantine\""]
        );
        assert_eq!(
            texts(EnforceState::Release),
            ["Filter-Id = \"simguard-default\""]
        );
        assert_eq!(m.block_via, BlockVia::Disconnect);
        assert_eq!(m.throttle_kbps, 64);
    }

    #[test]
    fn client_parts_replace_the_default_and_vendor_values_encode() {
        let cfg = Config::default_config().unwrap();
        let client = ClientEnforcement {
            throttle_kbps: Some(32),
            throttled: Some(StateMapping {
                filter_id: String::new(),
                attributes: vec![
                    spec(Some(2011), 100, "{bps}", AttributeFormat::Integer),
                    AttributeSpec {
                        only: Some(PacketKind::Accept),
                        ..spec(Some(9), 1, "ip:rate={kbps}", AttributeFormat::String)
                    },
                    spec(None, 25, "0x0A0b", AttributeFormat::Hex),
                    spec(None, 14, "10.0.0.1", AttributeFormat::Ipv4),
                ],
            }),
            blocked: Some(BlockedMapping {
                via: BlockVia::Coa,
                ..BlockedMapping::default()
            }),
            ..ClientEnforcement::default()
        };
        let m = Mapping::resolve(&cfg.radius.enforcement, &client).unwrap();
        assert_eq!(m.throttle_kbps, 32);
        assert_eq!(m.block_via, BlockVia::Coa);
        let coa = m.attributes(EnforceState::Throttled { kbps: 128 }, PacketKind::Coa);
        assert_eq!(
            coa.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(),
            [
                "Vendor-Specific(2011/100) = 128000",
                "Class = 0x0a0b",
                "Login-IP-Host = 10.0.0.1"
            ]
        );
        assert_eq!(coa[0].value, 128_000u32.to_be_bytes());
        assert_eq!(coa[1].value, [0x0a, 0x0b]);
        let accept = m.attributes(EnforceState::Throttled { kbps: 32 }, PacketKind::Accept);
        assert_eq!(accept[1].text, "Vendor-Specific(9/1) = \"ip:rate=32\"");
        // Parts the client did not give come from the default.
        assert_eq!(
            m.attributes(EnforceState::Quarantined, PacketKind::Accept)[0].text,
            "Filter-Id = \"simguard-quarantine\""
        );
        // A rate whose bps does not fit 32 bits leaves that attribute out.
        let big = m.attributes(EnforceState::Throttled { kbps: 5_000_000 }, PacketKind::Coa);
        assert!(big.iter().all(|a| a.vendor != Some(2011)), "{big:?}");
    }

    #[test]
    fn bad_specs_are_refused_with_the_state_and_type() {
        let cfg = Config::default_config().unwrap();
        for (bad, want) in [
            (
                spec(None, 80, "x", AttributeFormat::String),
                "set by simguard",
            ),
            (
                spec(None, 26, "x", AttributeFormat::String),
                "set by simguard",
            ),
            (spec(None, 0, "x", AttributeFormat::String), "type 0"),
            (spec(Some(9), 1, "12x", AttributeFormat::Integer), "32-bit"),
            (spec(Some(9), 1, "zz", AttributeFormat::Hex), "hex"),
            (spec(Some(9), 1, "1.2.3", AttributeFormat::Ipv4), "IPv4"),
            (
                spec(Some(9), 1, &"x".repeat(248), AttributeFormat::String),
                "at most 247",
            ),
        ] {
            let client = ClientEnforcement {
                quarantined: Some(StateMapping {
                    filter_id: String::new(),
                    attributes: vec![bad.clone()],
                }),
                ..ClientEnforcement::default()
            };
            let e = Mapping::resolve(&cfg.radius.enforcement, &client)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("quarantined") && e.contains(want),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn nak_error_causes_map_to_results() {
        let nak = |cause, msg: Option<&str>| Answer {
            code: Code::CoaNak,
            error_cause: cause,
            reply_message: msg.map(str::to_string),
        };
        assert_eq!(
            result_of(&nak(Some(503), None), Code::CoaAck),
            EnforceResult::SessionGone
        );
        assert_eq!(
            result_of(&nak(Some(501), Some("policy")), Code::CoaAck),
            EnforceResult::Nak {
                error_cause: 501,
                text: "Administratively-Prohibited: policy".into()
            }
        );
        assert_eq!(
            result_of(&nak(None, None), Code::CoaAck),
            EnforceResult::Nak {
                error_cause: 0,
                text: "no Error-Cause".into()
            }
        );
        let ack = Answer {
            code: Code::DisconnectAck,
            error_cause: Some(201),
            reply_message: None,
        };
        assert_eq!(result_of(&ack, Code::DisconnectAck), EnforceResult::Ack);
    }
}
