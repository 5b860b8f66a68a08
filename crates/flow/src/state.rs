//! Persisted collector state: templates and options-derived sampling state, so a
//! restarted server decodes data immediately instead of waiting (minutes, for
//! some exporters) for templates to be resent.
//!
//! Format (all big-endian), deterministic (sorted) so equal states give equal
//! bytes:
//!
//! ```text
//! "SGFL" u8 format=1  u32 domains
//! per domain: u8 family(4|6) addr(4|16) u32 domain u16 version(9|10)
//!             u8 has_sys_init [i64 sys_init_ms]  u32 default_rate (0 = none)
//!             u32 samplers { u8 selector u64 id u32 rate }
//!             u32 templates { u16 id u8 kind(0 data|1 options) u16 scope u16 raw_len raw }
//! ```
//! Templates are recompiled from their wire bytes on import, with the same checks
//! as on the wire.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::collector::{Collector, DomainKey, DomainState, MAX_SAMPLERS_PER_DOMAIN};
use crate::error::FlowError;
use crate::template::{Kind, Template};
use crate::ExporterKey;

const MAGIC: &[u8; 4] = b"SGFL";
const FORMAT: u8 = 1;

impl Collector {
    /// Templates (and options-derived sampling rates) serialized as bytes so the
    /// server can persist them across restarts.
    pub fn export_state(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(MAGIC);
        o.push(FORMAT);
        let mut keys: Vec<&DomainKey> = self.domains.keys().collect();
        keys.sort();
        o.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for k in keys {
            let Some(d) = self.domains.get(k) else {
                continue;
            };
            match k.key.exporter {
                IpAddr::V4(a) => {
                    o.push(4);
                    o.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    o.push(6);
                    o.extend_from_slice(&a.octets());
                }
            }
            o.extend_from_slice(&k.key.domain.to_be_bytes());
            o.extend_from_slice(&k.version.to_be_bytes());
            match d.sys_init_ms {
                Some(ms) => {
                    o.push(1);
                    o.extend_from_slice(&ms.to_be_bytes());
                }
                None => o.push(0),
            }
            o.extend_from_slice(&d.default_rate.unwrap_or(0).to_be_bytes());
            let mut s: Vec<(&(bool, u64), &u32)> = d.samplers.iter().collect();
            s.sort();
            o.extend_from_slice(&(s.len() as u32).to_be_bytes());
            for (&(sel, id), &rate) in s {
                o.push(sel as u8);
                o.extend_from_slice(&id.to_be_bytes());
                o.extend_from_slice(&rate.to_be_bytes());
            }
            let mut t: Vec<(&u16, &Template)> = d.templates.iter().collect();
            t.sort_by_key(|(id, _)| **id);
            o.extend_from_slice(&(t.len() as u32).to_be_bytes());
            for (&id, tpl) in t {
                o.extend_from_slice(&id.to_be_bytes());
                o.push(match tpl.kind {
                    Kind::Data => 0,
                    Kind::Options => 1,
                });
                o.extend_from_slice(&tpl.scope_fields.to_be_bytes());
                o.extend_from_slice(&(tpl.raw.len() as u16).to_be_bytes());
                o.extend_from_slice(&tpl.raw);
            }
        }
        o
    }

    /// Replaces templates and sampling state with a persisted
    /// [`export_state`](Self::export_state). All or nothing: on error the current
    /// state is kept. Held (pending) data is left alone. Returns the number of
    /// templates restored.
    pub fn import_state(&mut self, bytes: &[u8]) -> Result<usize, FlowError> {
        let mut r = Reader { b: bytes, p: 0 };
        if r.take(4)? != MAGIC {
            return Err(FlowError::BadState("not a simguard flow state"));
        }
        if r.u8()? != FORMAT {
            return Err(FlowError::BadState("unknown state format"));
        }
        let n = r.u32()?;
        let mut domains: HashMap<DomainKey, DomainState> = HashMap::new();
        let mut total = 0usize;
        for _ in 0..n {
            let exporter = match r.u8()? {
                4 => {
                    let a: [u8; 4] = r.take(4)?.try_into().map_err(|_| short())?;
                    IpAddr::V4(Ipv4Addr::from(a))
                }
                6 => {
                    let a: [u8; 16] = r.take(16)?.try_into().map_err(|_| short())?;
                    IpAddr::V6(Ipv6Addr::from(a))
                }
                _ => return Err(FlowError::BadState("bad address family")),
            };
            let domain = r.u32()?;
            let version = r.u16()?;
            if version != 9 && version != 10 {
                return Err(FlowError::BadState("bad version"));
            }
            let mut d = DomainState {
                sys_init_ms: match r.u8()? {
                    0 => None,
                    1 => Some(i64::from_be_bytes(
                        r.take(8)?.try_into().map_err(|_| short())?,
                    )),
                    _ => return Err(FlowError::BadState("bad flag")),
                },
                ..DomainState::default()
            };
            d.default_rate = match r.u32()? {
                0 => None,
                x => Some(x),
            };
            let ns = r.u32()? as usize;
            if ns > MAX_SAMPLERS_PER_DOMAIN {
                return Err(FlowError::BadState("too many samplers"));
            }
            for _ in 0..ns {
                let sel = r.u8()? != 0;
                let id = u64::from_be_bytes(r.take(8)?.try_into().map_err(|_| short())?);
                let rate = r.u32()?;
                d.samplers.insert((sel, id), rate);
            }
            let nt = r.u32()? as usize;
            for _ in 0..nt {
                let id = r.u16()?;
                let kind = match r.u8()? {
                    0 => Kind::Data,
                    1 => Kind::Options,
                    _ => return Err(FlowError::BadState("bad template kind")),
                };
                let scope = r.u16()?;
                let len = r.u16()? as usize;
                let raw = r.take(len)?;
                let tpl = Template::build(version, id, kind, scope, raw)
                    .map_err(|_| FlowError::BadState("bad template"))?;
                if d.templates.insert(id, tpl).is_none() {
                    total += 1;
                }
            }
            if total > self.opts.max_templates {
                return Err(FlowError::BadState("more templates than max_templates"));
            }
            let key = DomainKey {
                key: ExporterKey { exporter, domain },
                version,
            };
            if domains.insert(key, d).is_some() {
                return Err(FlowError::BadState("duplicate domain"));
            }
        }
        if r.p != bytes.len() {
            return Err(FlowError::BadState("trailing bytes"));
        }
        self.domains = domains;
        self.template_total = total;
        Ok(total)
    }
}

fn short() -> FlowError {
    FlowError::BadState("truncated")
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FlowError> {
        let s = self.b.get(self.p..self.p + n).ok_or_else(short)?;
        self.p += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FlowError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FlowError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, FlowError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}
