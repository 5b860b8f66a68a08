//! Record decoding: template tables → accumulator → [`FlowRecord`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::FlowError;
use crate::template::{Kind, Slot, Template, NSLOTS, VARLEN};
use crate::FlowRecord;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Big-endian unsigned integer of any width 1..=8 (reduced-size encoding,
/// RFC 7011 §6.2). Common widths take the direct path.
#[inline(always)]
pub(crate) fn be_uint(b: &[u8]) -> u64 {
    match *b {
        [a] => a as u64,
        [a, b] => u16::from_be_bytes([a, b]) as u64,
        [a, b, c, d] => u32::from_be_bytes([a, b, c, d]) as u64,
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => b.iter().fold(0u64, |v, &x| (v << 8) | x as u64),
    }
}

/// Per-record scratch: raw values by slot, plus a presence mask. Reused across
/// records: only `have` is reset, and values are read only when their bit is set,
/// so no per-record clearing of the arrays is needed.
#[derive(Debug, Clone)]
pub(crate) struct Acc {
    have: u64,
    vals: [u64; NSLOTS],
    src6: [u8; 16],
    dst6: [u8; 16],
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            have: 0,
            vals: [0; NSLOTS],
            src6: [0; 16],
            dst6: [0; 16],
        }
    }
}

impl Acc {
    #[inline(always)]
    fn reset(&mut self) {
        self.have = 0;
    }

    #[inline(always)]
    fn put(&mut self, slot: Slot, b: &[u8]) {
        match slot {
            Slot::Src6 => {
                if let Ok(a) = <[u8; 16]>::try_from(b) {
                    self.src6 = a;
                }
            }
            Slot::Dst6 => {
                if let Ok(a) = <[u8; 16]>::try_from(b) {
                    self.dst6 = a;
                }
            }
            _ => self.vals[slot as usize] = be_uint(b),
        }
        self.have |= 1u64 << slot as u32;
    }

    #[inline(always)]
    fn has(&self, slot: Slot) -> bool {
        self.have & (1u64 << slot as u32) != 0
    }

    #[inline(always)]
    fn get(&self, slot: Slot) -> Option<u64> {
        if self.has(slot) {
            Some(self.vals[slot as usize])
        } else {
            None
        }
    }

    /// Sampling interval stated by the record itself (data or options record).
    pub(crate) fn own_rate(&self) -> Option<u32> {
        let nz = |s| self.get(s).filter(|&v| v > 0);
        let r = if let Some(v) = nz(Slot::SamplingInterval) {
            v
        } else if let Some(v) = nz(Slot::SamplerRandomInterval) {
            v
        } else if let (Some(size), Some(pop)) =
            (nz(Slot::SamplingSize), self.get(Slot::SamplingPopulation))
        {
            // Random n-out-of-N (RFC 5476): one in population/size packets.
            pop / size
        } else if let (Some(iv), Some(space)) =
            (nz(Slot::PacketInterval), self.get(Slot::PacketSpace))
        {
            // Systematic count-based: `interval` taken, `space` skipped.
            space.saturating_add(iv) / iv
        } else {
            return None;
        };
        Some(r.clamp(1, u32::MAX as u64) as u32)
    }

    pub(crate) fn sampler_id(&self) -> Option<u64> {
        self.get(Slot::SamplerId)
    }

    pub(crate) fn selector_id(&self) -> Option<u64> {
        self.get(Slot::SelectorId)
    }

    pub(crate) fn sys_init_ms(&self) -> Option<i64> {
        self.get(Slot::SysInitMs).map(sat_i64)
    }
}

#[inline(always)]
fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// NTP 64-bit timestamp (seconds since 1900, 2^-32 fractions) to Unix ms.
fn ntp_to_ms(v: u64) -> i64 {
    let secs = v >> 32;
    let frac = v & 0xFFFF_FFFF;
    let ms_frac = ((frac * 1000) >> 32) as i64;
    (secs as i64 - NTP_UNIX_OFFSET as i64) * 1000 + ms_frac
}

/// What the header says about time, needed to turn record times absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderCtx {
    pub version: u16,
    /// Export time, Unix ms.
    pub export_ms: i64,
    /// NetFlow v9/v5 sysUptime in ms at export (None for IPFIX).
    pub uptime_ms: Option<u32>,
}

/// Sampling and time state of the exporter domain as seen by one data set.
pub(crate) trait SamplingView {
    /// Rate of a sampler (`selector == false`, element 48) or selector (302) id.
    fn rate(&self, selector: bool, id: u64) -> Option<u32>;
}

/// Per-set constants derived from the domain.
pub(crate) struct SetCtx<'a, V: SamplingView> {
    pub hdr: HeaderCtx,
    pub default_rate: u32,
    pub sys_init_ms: Option<i64>,
    pub view: &'a V,
}

/// Absolute time of one end of the flow, from whichever encoding the record used.
#[inline]
fn abs_time(acc: &Acc, start: bool, hdr: &HeaderCtx, sys_init: Option<i64>) -> i64 {
    let (ms, sec, us, ns, up, dus) = if start {
        (
            Slot::StartMs,
            Slot::StartSec,
            Slot::StartUs,
            Slot::StartNs,
            Slot::StartUptime,
            Slot::StartDeltaUs,
        )
    } else {
        (
            Slot::EndMs,
            Slot::EndSec,
            Slot::EndUs,
            Slot::EndNs,
            Slot::EndUptime,
            Slot::EndDeltaUs,
        )
    };
    if let Some(v) = acc.get(ms) {
        return sat_i64(v);
    }
    if let Some(v) = acc.get(sec) {
        return sat_i64(v).saturating_mul(1000);
    }
    if let Some(v) = acc.get(us) {
        return ntp_to_ms(v);
    }
    if let Some(v) = acc.get(ns) {
        return ntp_to_ms(v);
    }
    if let Some(v) = acc.get(dus) {
        return hdr.export_ms.saturating_sub(sat_i64(v / 1000));
    }
    if let Some(v) = acc.get(up) {
        match hdr.uptime_ms {
            // v9: relative to the header's sysUptime. Reading the difference as a
            // signed 32-bit value survives the 49.7-day wrap of the counter.
            Some(uptime) => {
                let age = uptime.wrapping_sub(v as u32) as i32 as i64;
                return hdr.export_ms - age;
            }
            // IPFIX: relative to systemInitTimeMilliseconds (in-record or options).
            None => {
                if let Some(init) = acc.sys_init_ms().or(sys_init) {
                    return init.saturating_add(sat_i64(v));
                }
            }
        }
    }
    hdr.export_ms
}

/// Last sampler lookup of a data set: (selector?, id, rate found).
type SamplerCache = Option<(bool, u64, Option<u32>)>;

/// Turns the accumulated fields of a data record into a [`FlowRecord`].
#[inline]
fn finish<V: SamplingView>(acc: &Acc, ctx: &SetCtx<'_, V>, cache: &mut SamplerCache) -> FlowRecord {
    let v4 = acc.has(Slot::Src4) || acc.has(Slot::Dst4);
    let v6 = acc.has(Slot::Src6) || acc.has(Slot::Dst6);
    let src4 = acc.get(Slot::Src4).unwrap_or(0) as u32;
    let dst4 = acc.get(Slot::Dst4).unwrap_or(0) as u32;
    // Templates may carry both families (Cisco v9 313 does, with the unused one
    // zeroed). ipVersion decides when present; otherwise a non-zero IPv4 address
    // wins, as in pmacct's NF_evaluate_flow_type.
    let use_v6 = match acc.get(Slot::IpVersion) {
        Some(6) if v6 => true,
        Some(4) if v4 => false,
        _ => v6 && !(v4 && (src4 != 0 || dst4 != 0)),
    };
    let (src, dst) = if use_v6 {
        (
            IpAddr::V6(Ipv6Addr::from(acc.v6_addr(Slot::Src6))),
            IpAddr::V6(Ipv6Addr::from(acc.v6_addr(Slot::Dst6))),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(src4)),
            IpAddr::V4(Ipv4Addr::from(dst4)),
        )
    };

    let sampling = match acc.own_rate() {
        Some(r) => r,
        None => {
            let mut r = None;
            for (selector, id) in [(true, acc.selector_id()), (false, acc.sampler_id())] {
                let Some(id) = id else { continue };
                // Records of one set nearly always name the same sampler: remember
                // the last answer (found or not) instead of looking it up per record.
                let rate = match *cache {
                    Some((s, i, rate)) if s == selector && i == id => rate,
                    _ => {
                        let rate = ctx.view.rate(selector, id);
                        *cache = Some((selector, id, rate));
                        rate
                    }
                };
                if rate.is_some() {
                    r = rate;
                    break;
                }
            }
            r.unwrap_or(ctx.default_rate)
        }
    };

    FlowRecord {
        src,
        dst,
        src_port: acc.get(Slot::SrcPort).unwrap_or(0) as u16,
        dst_port: acc.get(Slot::DstPort).unwrap_or(0) as u16,
        proto: acc.get(Slot::Proto).unwrap_or(0) as u8,
        tcp_flags: acc.get(Slot::TcpFlags).unwrap_or(0) as u8,
        tos: acc.get(Slot::Tos).unwrap_or(0) as u8,
        bytes: acc
            .get(Slot::Bytes)
            .or(acc.get(Slot::BytesTotal))
            .unwrap_or(0),
        packets: acc
            .get(Slot::Packets)
            .or(acc.get(Slot::PacketsTotal))
            .unwrap_or(0),
        sampling,
        start_ms: abs_time(acc, true, &ctx.hdr, ctx.sys_init_ms),
        end_ms: abs_time(acc, false, &ctx.hdr, ctx.sys_init_ms),
        input_if: acc.get(Slot::InIf).unwrap_or(0) as u32,
        output_if: acc.get(Slot::OutIf).unwrap_or(0) as u32,
        direction: acc.get(Slot::Direction).map(|v| v as u8),
    }
}

impl Acc {
    fn v6_addr(&self, slot: Slot) -> [u8; 16] {
        match (slot, self.has(slot)) {
            (Slot::Src6, true) => self.src6,
            (Slot::Dst6, true) => self.dst6,
            _ => [0; 16],
        }
    }
}

/// Walks the records of one data set, calling `each` with the filled accumulator.
/// Returns the number of records. The trailing bytes shorter than a record are
/// padding (RFC 7011 §3.3.1, RFC 3954 §5.3).
#[inline]
fn for_each_record(
    t: &Template,
    tid: u16,
    body: &[u8],
    acc: &mut Acc,
    mut each: impl FnMut(&Acc),
) -> Result<usize, FlowError> {
    if let Some(rec_len) = t.fixed_len {
        // Build guarantees rec_len >= 1 and every (off, len) inside the record.
        let mut n = 0;
        for rec in body.chunks_exact(rec_len) {
            acc.reset();
            for f in t.fixed.iter() {
                let (o, l) = (f.off as usize, f.len as usize);
                if let Some(b) = rec.get(o..o + l) {
                    acc.put(f.slot, b);
                }
            }
            each(acc);
            n += 1;
        }
        return Ok(n);
    }
    let bad = |reason| FlowError::BadRecord {
        template: tid,
        reason,
    };
    let mut n = 0;
    let mut p = 0usize;
    while body.len() - p >= t.min_len {
        acc.reset();
        for w in t.walk.iter() {
            let len = if w.len == VARLEN {
                // 1-byte length, or 255 then a 2-byte length (RFC 7011 §7).
                let Some(&l) = body.get(p) else {
                    return Err(bad("variable-length prefix overruns set"));
                };
                p += 1;
                if l == 255 {
                    let Some(b) = body.get(p..p + 2) else {
                        return Err(bad("variable-length prefix overruns set"));
                    };
                    p += 2;
                    u16::from_be_bytes([b[0], b[1]]) as usize
                } else {
                    l as usize
                }
            } else {
                w.len as usize
            };
            let Some(b) = body.get(p..p + len) else {
                return Err(bad("field overruns set"));
            };
            if let Some(slot) = w.slot {
                acc.put(slot, b);
            }
            p += len;
        }
        each(acc);
        n += 1;
    }
    Ok(n)
}

/// Decodes a data set of a data template into `out`.
pub(crate) fn decode_data<V: SamplingView>(
    t: &Template,
    tid: u16,
    body: &[u8],
    ctx: &SetCtx<'_, V>,
    acc: &mut Acc,
    out: &mut Vec<FlowRecord>,
) -> Result<usize, FlowError> {
    debug_assert!(t.kind == Kind::Data);
    if let Some(l) = t.fixed_len {
        out.reserve(body.len() / l);
    }
    let mut cache: SamplerCache = None;
    for_each_record(t, tid, body, acc, |a| out.push(finish(a, ctx, &mut cache)))
}

/// What an options record tells about sampling and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Rate of a selector (302, `selector`) or sampler (48) id.
    Sampler { selector: bool, id: u64, rate: u32 },
    /// Rate of the whole exporter domain (options record without an id).
    Default(u32),
    /// systemInitTimeMilliseconds of the exporter domain.
    SysInit(i64),
}

/// Decodes a data set of an options template into effects.
pub(crate) fn decode_options(
    t: &Template,
    tid: u16,
    body: &[u8],
    acc: &mut Acc,
    effects: &mut Vec<Effect>,
) -> Result<usize, FlowError> {
    for_each_record(t, tid, body, acc, |a| {
        if let Some(rate) = a.own_rate() {
            let (sel, smp) = (a.selector_id(), a.sampler_id());
            if let Some(id) = sel {
                effects.push(Effect::Sampler {
                    selector: true,
                    id,
                    rate,
                });
            }
            if let Some(id) = smp {
                effects.push(Effect::Sampler {
                    selector: false,
                    id,
                    rate,
                });
            }
            if sel.is_none() && smp.is_none() {
                effects.push(Effect::Default(rate));
            }
        }
        if let Some(ms) = a.sys_init_ms() {
            effects.push(Effect::SysInit(ms));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_size_reads() {
        assert_eq!(be_uint(&[0x12]), 0x12);
        assert_eq!(be_uint(&[0x12, 0x34, 0x56]), 0x12_3456);
        assert_eq!(be_uint(&[1, 2, 3, 4, 5]), 0x01_0203_0405);
        assert_eq!(be_uint(&[0xff; 8]), u64::MAX);
    }

    #[test]
    fn ntp_conversion() {
        // 2023-01-01T00:00:00.5Z
        let secs = 1_672_531_200u64 + NTP_UNIX_OFFSET;
        assert_eq!(ntp_to_ms((secs << 32) | 0x8000_0000), 1_672_531_200_500);
    }
}
