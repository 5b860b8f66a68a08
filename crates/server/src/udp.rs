//! UDP sockets for the RADIUS servers: large kernel buffers and batched
//! system calls (recvmmsg/sendmmsg), so that one call moves up to `BATCH`
//! datagrams instead of one.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Datagrams moved per system call.
pub const BATCH: usize = 64;
/// RADIUS packets are at most 4096 bytes (RFC 2865 §3).
pub const MAX_DATAGRAM: usize = 4096;

/// Binds a UDP socket with a receive buffer of (at least trying) `rcvbuf` bytes.
///
/// `SO_RCVBUFFORCE` is tried first because `SO_RCVBUF` is silently capped by
/// `net.core.rmem_max` (often 208 KiB), which drops bursts of accounting.
pub fn bind(addr: SocketAddr, rcvbuf: usize, read_timeout: Duration) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if force_rcvbuf(&sock, rcvbuf).is_err() {
        sock.set_recv_buffer_size(rcvbuf)?;
    }
    sock.set_send_buffer_size(4 << 20)?;
    sock.bind(&addr.into())?;
    sock.set_read_timeout(Some(read_timeout))?;
    let effective = sock.recv_buffer_size().unwrap_or(0);
    if effective < rcvbuf {
        tracing::warn!(
            %addr,
            requested = rcvbuf,
            effective,
            "UDP receive buffer is smaller than configured; raise net.core.rmem_max or run with CAP_NET_ADMIN"
        );
    }
    Ok(sock.into())
}

fn force_rcvbuf(sock: &Socket, size: usize) -> io::Result<()> {
    let v: libc::c_int = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt with a valid fd, a pointer to a c_int that lives for
    // the call, and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Largest UDP payload: IPFIX messages may be up to 65,535 bytes (RFC 7011 §3.1).
pub const MAX_UDP_PAYLOAD: usize = 65_535;

/// Receive side: buffers for `BATCH` datagrams, reused across calls.
pub struct RecvBatch {
    bufs: Vec<u8>,
    /// Bytes per datagram slot: larger datagrams are reported truncated.
    slot: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    count: usize,
}

// SAFETY: the raw pointers inside iovecs/msgs only ever point into this
// struct's own buffers and are rebuilt before each use.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Slots of `MAX_DATAGRAM` bytes: RADIUS never exceeds 4096 (RFC 2865 §3).
    pub fn new() -> RecvBatch {
        Self::with_slot(MAX_DATAGRAM)
    }

    /// Slots of `slot` bytes, for protocols with larger datagrams.
    pub fn with_slot(slot: usize) -> RecvBatch {
        RecvBatch {
            slot,
            bufs: vec![0u8; BATCH * slot],
            // SAFETY: sockaddr_storage and mmsghdr are plain C structs for
            // which all-zero bytes is a valid value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovecs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            msgs: vec![unsafe { std::mem::zeroed() }; BATCH],
            count: 0,
        }
    }

    /// Blocks until at least one datagram arrives (or the socket's read
    /// timeout passes, giving `Ok(0)`), then takes every datagram already queued, up to `BATCH`.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i * self.slot..].as_mut_ptr().cast(),
                iov_len: self.slot,
            };
            let h = &mut self.msgs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: every msghdr points at live buffers of the stated sizes
        // owned by `self`, which is borrowed mutably for the whole call.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.count = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.count = n as usize;
        Ok(self.count)
    }

    /// Datagram `i` of the last `recv` and its source. A datagram whose
    /// source cannot be decoded is returned with `None`.
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if i >= self.count {
            return None;
        }
        let len = (self.msgs[i].msg_len as usize).min(self.slot);
        let data = &self.bufs[i * self.slot..i * self.slot + len];
        // SAFETY: the kernel wrote a valid sockaddr of msg_namelen bytes.
        let addr = unsafe { SockAddr::new(self.addrs[i], self.msgs[i].msg_hdr.msg_namelen) };
        Some((data, addr.as_socket()))
    }

    /// True if datagram `i` was larger than a slot (and so truncated).
    pub fn truncated(&self, i: usize) -> bool {
        i < self.count && (self.msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC) != 0
    }
}

/// Send side: queue datagrams, then `flush` them with as few calls as possible.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
    addrs: Vec<SockAddr>,
}

impl SendBatch {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Lets the caller encode straight into the batch's buffer.
    pub fn push_with(&mut self, to: SocketAddr, f: impl FnOnce(&mut Vec<u8>)) {
        let start = self.data.len();
        f(&mut self.data);
        self.spans.push((start, self.data.len() - start));
        self.addrs.push(to.into());
    }

    /// Sends everything queued. Returns datagrams the kernel accepted; a
    /// datagram it refused (for example an unreachable address) is skipped.
    pub fn flush(&mut self, sock: &UdpSocket) -> usize {
        let mut sent = 0;
        let mut i = 0;
        while i < self.spans.len() {
            let n = (self.spans.len() - i).min(BATCH);
            let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: zeroed mmsghdr is valid; fields are set below.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for k in 0..n {
                let (start, len) = self.spans[i + k];
                iovecs[k] = libc::iovec {
                    iov_base: self.data[start..].as_mut_ptr().cast(),
                    iov_len: len,
                };
                let a = &self.addrs[i + k];
                msgs[k].msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
                msgs[k].msg_hdr.msg_namelen = a.len();
                msgs[k].msg_hdr.msg_iov = &mut iovecs[k];
                msgs[k].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: n headers pointing at live buffers owned by self and
            // by the local arrays, all valid for the duration of the call.
            let rc = unsafe {
                libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0)
            };
            if rc <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::debug!(error = %e, "sendmmsg failed; skipping one datagram");
                i += 1;
            } else {
                sent += rc as usize;
                i += rc as usize;
            }
        }
        self.data.clear();
        self.spans.clear();
        self.addrs.clear();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_move_many_datagrams_with_their_sources() {
        let a = bind(
            "127.0.0.1:0".parse().unwrap(),
            1 << 20,
            Duration::from_millis(200),
        )
        .unwrap();
        let b = bind(
            "127.0.0.1:0".parse().unwrap(),
            1 << 20,
            Duration::from_millis(200),
        )
        .unwrap();
        let to = a.local_addr().unwrap();
        let mut out = SendBatch::default();
        for i in 0..100u8 {
            out.push_with(to, |buf| buf.extend_from_slice(&[i; 10]));
        }
        assert_eq!(out.flush(&b), 100);
        let mut rb = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 100 {
            let n = rb.recv(&a).unwrap();
            assert!(n > 0, "timed out after {} datagrams", got.len());
            for i in 0..n {
                let (d, from) = rb.get(i).unwrap();
                assert_eq!(from, Some(b.local_addr().unwrap()));
                got.push(d[0]);
            }
        }
        assert_eq!(got, (0..100).collect::<Vec<u8>>());
        // Nothing more: the read timeout gives Ok(0).
        assert_eq!(rb.recv(&a).unwrap(), 0);
    }
}
