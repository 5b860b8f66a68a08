//! One TCP connection to the SMSC: framing, timed writes, and the bind.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tracing::debug;

use super::config::SmsConfig;
use super::pdu::{self, status_name, Bind, Body, Header, Pdu, PduError, INTERFACE_VERSION};

/// Why a connection ended or never became a session. Its text is what
/// `send` reports while there is no session, so it names the cause.
#[derive(Debug, Error)]
pub enum ConnError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("bind_transceiver rejected: {name} (0x{status:08x})", name = status_name(*.status))]
    BindRejected { status: u32 },
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("SMSC closed the connection")]
    Closed,
    #[error("SMSC sent unbind")]
    Unbound,
    #[error("unframeable PDU from the SMSC: {0}")]
    Framing(PduError),
    #[error("encoding a PDU: {0}")]
    Encode(PduError),
}

/// What the reader yields: a PDU, or one whose body did not decode but
/// whose header did, so it can still be answered by sequence number.
#[derive(Debug)]
pub enum Frame {
    Pdu(Pdu),
    Malformed { header: Header, error: PduError },
}

pub struct Conn {
    reader: FrameReader,
    writer: OwnedWriteHalf,
    timeout: Duration,
    next_seq: u32,
}

impl Conn {
    /// Connects and binds as a transceiver. Returns the SMSC's system_id.
    pub async fn open(cfg: &SmsConfig) -> Result<(Conn, String), ConnError> {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let wait = cfg.response_timeout();
        let stream = timeout(wait, TcpStream::connect(&addr))
            .await
            .map_err(|_| ConnError::Timeout("connect", wait))?
            .map_err(|source| ConnError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Requests are small and latency matters more than packet count.
        stream.set_nodelay(true)?;
        let (rd, writer) = stream.into_split();
        let mut conn = Conn {
            reader: FrameReader::new(rd),
            writer,
            timeout: wait,
            next_seq: 1,
        };
        let seq = conn.next_seq();
        conn.write(&Pdu::new(
            seq,
            Body::BindTransceiver(Bind {
                system_id: cfg.system_id.clone(),
                password: cfg.password.clone(),
                system_type: cfg.system_type.clone(),
                interface_version: INTERFACE_VERSION,
                addr_ton: 0,
                addr_npi: 0,
                address_range: String::new(),
            }),
        ))
        .await?;
        let deadline = Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, conn.reader.next())
                .await
                .map_err(|_| ConnError::Timeout("bind_transceiver", wait))??;
            let Frame::Pdu(p) = frame else {
                continue;
            };
            if p.sequence_number != seq {
                debug!(
                    command_id = p.command_id(),
                    "SMPP PDU before bind_transceiver_resp ignored"
                );
                continue;
            }
            match p.body {
                Body::BindTransceiverResp { system_id, .. } if p.command_status == 0 => {
                    return Ok((conn, system_id));
                }
                Body::BindTransceiverResp { .. } | Body::GenericNack => {
                    return Err(ConnError::BindRejected {
                        status: p.command_status,
                    });
                }
                other => debug!(
                    command_id = other.command_id(),
                    "unexpected answer to bind_transceiver ignored"
                ),
            }
        }
    }

    /// Sequence numbers run 1..=0x7FFFFFFF (SMPP 3.4 5.1.4) and wrap.
    pub fn next_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    /// Writes one PDU. A peer that stops reading would block us forever,
    /// so the write has the response time-out too.
    pub async fn write(&mut self, pdu: &Pdu) -> Result<(), ConnError> {
        let bytes = pdu.encode().map_err(ConnError::Encode)?;
        timeout(self.timeout, self.writer.write_all(&bytes))
            .await
            .map_err(|_| ConnError::Timeout("write", self.timeout))??;
        Ok(())
    }

    /// The next frame; cancel-safe (see [`FrameReader::next`]).
    pub async fn read(&mut self) -> Result<Frame, ConnError> {
        self.reader.next().await
    }

    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}

pub struct FrameReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

impl FrameReader {
    fn new(rd: OwnedReadHalf) -> Self {
        FrameReader {
            rd,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Cancel-safe, so the session can `select!` on it: the only await is
    /// a `read`, which loses nothing when dropped, and all partial data
    /// lives in `self.buf`.
    pub async fn next(&mut self) -> Result<Frame, ConnError> {
        loop {
            if let Some(len) = pdu::frame_len(&self.buf).map_err(ConnError::Framing)? {
                if self.buf.len() >= len {
                    let frame = match Pdu::decode(&self.buf[..len]) {
                        Ok(p) => Frame::Pdu(p),
                        Err(error) => Frame::Malformed {
                            header: Header::parse(&self.buf[..len]).map_err(ConnError::Framing)?,
                            error,
                        },
                    };
                    self.buf.drain(..len);
                    return Ok(frame);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.rd.read(&mut chunk).await?;
            if n == 0 {
                return Err(ConnError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
