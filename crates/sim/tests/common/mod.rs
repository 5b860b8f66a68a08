//! A tiny RADIUS accounting responder for tests and the load benchmark: it checks each
//! request's authenticators with simguard-radius and answers (or not) as told.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use simguard_radius::{Code, MessageAuthenticator, Packet, PacketWriter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Answer,
    /// Ignore the first copy of every request (keyed by source, Identifier, authenticator).
    DropFirst,
    Never,
    /// Answer after a delay.
    Delay(Duration),
    /// Answer with a Response Authenticator computed with another secret.
    WrongSecret,
}

pub struct Responder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Seen>>,
    pub received: Arc<AtomicU64>,
}

/// What the responder saw.
#[derive(Default)]
pub struct Seen {
    /// Every datagram in arrival order, with its source.
    pub packets: Vec<(SocketAddr, Vec<u8>)>,
    pub bad_request_auth: u64,
    pub bad_message_auth: u64,
    pub missing_message_auth: u64,
    pub answered: u64,
}

impl Responder {
    /// `record`: keep every datagram (tests); off for throughput runs.
    pub fn start(secret: &str, behaviour: Behaviour, record: bool) -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind responder");
        let s2 = socket2::SockRef::from(&sock);
        let _ = s2.set_recv_buffer_size(8 << 20);
        let _ = s2.set_send_buffer_size(8 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let secret = secret.as_bytes().to_vec();
        let (stop2, received2) = (stop.clone(), received.clone());
        let handle =
            std::thread::spawn(move || serve(sock, secret, behaviour, record, stop2, received2));
        Responder {
            addr,
            stop,
            handle: Some(handle),
            received,
        }
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().expect("responder thread"))
            .unwrap_or_default()
    }
}

/// An answer to send later: due time, client, Identifier, Request Authenticator.
type Pending = (Instant, SocketAddr, u8, [u8; 16]);

fn serve(
    sock: UdpSocket,
    secret: Vec<u8>,
    behaviour: Behaviour,
    record: bool,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
) -> Seen {
    let mut seen = Seen::default();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(64);
    let mut first_copies: HashMap<(SocketAddr, u8, [u8; 16]), u32> = HashMap::new();
    let mut delayed: VecDeque<Pending> = VecDeque::new();
    let wrong = b"not-the-secret".to_vec();
    while !stop.load(Ordering::Relaxed) {
        // Flush due delayed answers.
        {
            let now = Instant::now();
            while delayed.front().is_some_and(|d| d.0 <= now) {
                let (_, from, id, auth) = delayed.pop_front().expect("front");
                let resp = PacketWriter::new(&mut out, Code::AccountingResponse, id, [0; 16])
                    .finish_response(&auth, &secret);
                let _ = sock.send_to(resp, from);
                seen.answered += 1;
            }
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        received.fetch_add(1, Ordering::Relaxed);
        let bytes = &buf[..n];
        if record {
            seen.packets.push((from, bytes.to_vec()));
        }
        let Ok(p) = Packet::parse(bytes) else {
            continue;
        };
        if p.code() != Code::AccountingRequest {
            continue;
        }
        if !p.verify_request_authenticator(&secret) {
            seen.bad_request_auth += 1;
            continue;
        }
        match p.message_authenticator(&secret, None) {
            MessageAuthenticator::Valid => {}
            MessageAuthenticator::Absent => seen.missing_message_auth += 1,
            MessageAuthenticator::Invalid => {
                seen.bad_message_auth += 1;
                continue;
            }
        }
        let auth = *p.authenticator();
        let id = p.identifier();
        match behaviour {
            Behaviour::Never => continue,
            Behaviour::DropFirst => {
                let c = first_copies.entry((from, id, auth)).or_insert(0);
                *c += 1;
                if *c == 1 {
                    continue;
                }
            }
            Behaviour::Delay(d) => {
                delayed.push_back((Instant::now() + d, from, id, auth));
                continue;
            }
            Behaviour::Answer | Behaviour::WrongSecret => {}
        }
        let key = if behaviour == Behaviour::WrongSecret {
            &wrong
        } else {
            &secret
        };
        let resp = PacketWriter::new(&mut out, Code::AccountingResponse, id, [0; 16])
            .finish_response(&auth, key);
        let _ = sock.send_to(resp, from);
        seen.answered += 1;
    }
    seen
}
