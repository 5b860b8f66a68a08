//! A small IPFIX / NetFlow v9 / v5 encoder for building test vectors.
#![allow(dead_code)]

use std::net::IpAddr;

/// A field specifier: element id, length (65535 = variable), enterprise number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct F {
    pub ie: u16,
    pub len: u16,
    pub pen: Option<u32>,
}

pub const fn f(ie: u16, len: u16) -> F {
    F { ie, len, pen: None }
}

pub const fn fe(ie: u16, len: u16, pen: u32) -> F {
    F {
        ie,
        len,
        pen: Some(pen),
    }
}

fn spec(out: &mut Vec<u8>, x: &F) {
    let id = if x.pen.is_some() { x.ie | 0x8000 } else { x.ie };
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&x.len.to_be_bytes());
    if let Some(p) = x.pen {
        out.extend_from_slice(&p.to_be_bytes());
    }
}

/// A message under construction.
#[derive(Debug, Clone)]
pub struct Msg {
    pub version: u16,
    pub export_secs: u32,
    pub domain: u32,
    pub uptime_ms: u32,
    pub sets: Vec<u8>,
    pub count: u16,
}

impl Msg {
    pub fn ipfix(export_secs: u32, domain: u32) -> Msg {
        Msg {
            version: 10,
            export_secs,
            domain,
            uptime_ms: 0,
            sets: Vec::new(),
            count: 0,
        }
    }

    pub fn v9(uptime_ms: u32, unix_secs: u32, source_id: u32) -> Msg {
        Msg {
            version: 9,
            export_secs: unix_secs,
            domain: source_id,
            uptime_ms,
            sets: Vec::new(),
            count: 0,
        }
    }

    /// Appends a set with this id and body (padding not added).
    pub fn set(&mut self, id: u16, body: &[u8]) -> &mut Self {
        self.sets.extend_from_slice(&id.to_be_bytes());
        self.sets
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.sets.extend_from_slice(body);
        self
    }

    pub fn template(&mut self, id: u16, fields: &[F]) -> &mut Self {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for x in fields {
            spec(&mut b, x);
        }
        let sid = if self.version == 9 { 0 } else { 2 };
        self.count += 1;
        self.set(sid, &b)
    }

    pub fn options_template(&mut self, id: u16, scope: &[F], fields: &[F]) -> &mut Self {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        if self.version == 9 {
            b.extend_from_slice(&((scope.len() * 4) as u16).to_be_bytes());
            b.extend_from_slice(&((fields.len() * 4) as u16).to_be_bytes());
        } else {
            b.extend_from_slice(&((scope.len() + fields.len()) as u16).to_be_bytes());
            b.extend_from_slice(&(scope.len() as u16).to_be_bytes());
        }
        for x in scope.iter().chain(fields) {
            spec(&mut b, x);
        }
        if self.version == 9 {
            // v9 options flowsets are padded to 4 bytes.
            while (b.len() + 4) % 4 != 0 {
                b.push(0);
            }
        }
        let sid = if self.version == 9 { 1 } else { 3 };
        self.count += 1;
        self.set(sid, &b)
    }

    /// IPFIX template withdrawal (field count 0) in a template set.
    pub fn withdraw(&mut self, id: u16) -> &mut Self {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&0u16.to_be_bytes());
        self.set(2, &b)
    }

    pub fn data(&mut self, id: u16, records: &[Vec<u8>]) -> &mut Self {
        let body: Vec<u8> = records.concat();
        self.count += records.len() as u16;
        self.set(id, &body)
    }

    pub fn build(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&self.version.to_be_bytes());
        if self.version == 9 {
            o.extend_from_slice(&self.count.to_be_bytes());
            o.extend_from_slice(&self.uptime_ms.to_be_bytes());
            o.extend_from_slice(&self.export_secs.to_be_bytes());
            o.extend_from_slice(&1u32.to_be_bytes());
            o.extend_from_slice(&self.domain.to_be_bytes());
        } else {
            o.extend_from_slice(&((16 + self.sets.len()) as u16).to_be_bytes());
            o.extend_from_slice(&self.export_secs.to_be_bytes());
            o.extend_from_slice(&1u32.to_be_bytes());
            o.extend_from_slice(&self.domain.to_be_bytes());
        }
        o.extend_from_slice(&self.sets);
        o
    }
}

/// Record bytes builder.
#[derive(Debug, Clone, Default)]
pub struct Rec(pub Vec<u8>);

impl Rec {
    pub fn new() -> Rec {
        Rec(Vec::new())
    }
    /// Unsigned integer in `len` big-endian bytes (reduced size when < 8).
    pub fn u(mut self, v: u64, len: usize) -> Rec {
        let b = v.to_be_bytes();
        self.0.extend_from_slice(&b[8 - len..]);
        self
    }
    pub fn ip(mut self, a: IpAddr) -> Rec {
        match a {
            IpAddr::V4(a) => self.0.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => self.0.extend_from_slice(&a.octets()),
        }
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Rec {
        self.0.extend_from_slice(b);
        self
    }
    /// IPFIX variable-length value: 1-byte length below 255, else 255 + 2 bytes.
    pub fn varlen(mut self, b: &[u8]) -> Rec {
        if b.len() < 255 {
            self.0.push(b.len() as u8);
        } else {
            self.0.push(255);
            self.0.extend_from_slice(&(b.len() as u16).to_be_bytes());
        }
        self.0.extend_from_slice(b);
        self
    }
    /// Same, but always with the 3-byte form (legal for short values too).
    pub fn varlen3(mut self, b: &[u8]) -> Rec {
        self.0.push(255);
        self.0.extend_from_slice(&(b.len() as u16).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// NetFlow v5 record fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct V5Rec {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub bytes: u32,
    pub first: u32,
    pub last: u32,
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub proto: u8,
    pub tos: u8,
}

pub fn v5(uptime: u32, secs: u32, nsecs: u32, sampling: u16, recs: &[V5Rec]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&5u16.to_be_bytes());
    o.extend_from_slice(&(recs.len() as u16).to_be_bytes());
    o.extend_from_slice(&uptime.to_be_bytes());
    o.extend_from_slice(&secs.to_be_bytes());
    o.extend_from_slice(&nsecs.to_be_bytes());
    o.extend_from_slice(&7u32.to_be_bytes());
    o.extend_from_slice(&[0, 0]);
    o.extend_from_slice(&sampling.to_be_bytes());
    for r in recs {
        o.extend_from_slice(&r.src);
        o.extend_from_slice(&r.dst);
        o.extend_from_slice(&[0; 4]);
        o.extend_from_slice(&r.input.to_be_bytes());
        o.extend_from_slice(&r.output.to_be_bytes());
        o.extend_from_slice(&r.packets.to_be_bytes());
        o.extend_from_slice(&r.bytes.to_be_bytes());
        o.extend_from_slice(&r.first.to_be_bytes());
        o.extend_from_slice(&r.last.to_be_bytes());
        o.extend_from_slice(&r.sport.to_be_bytes());
        o.extend_from_slice(&r.dport.to_be_bytes());
        o.extend_from_slice(&[0, r.flags, r.proto, r.tos]);
        o.extend_from_slice(&[0; 8]);
    }
    o
}

pub mod pcap;
