//! Templates compiled into flat extraction tables.
//!
//! A template is parsed once when it arrives; data records are then decoded by
//! walking a short list of (offset, length, target) entries, only for the fields
//! simguard keeps. Fixed-length templates (the overwhelming majority) get their
//! offsets precomputed; templates with variable-length fields keep a per-field list
//! and compute offsets while walking each record.

use crate::error::FlowError;

/// Length value announcing an IPFIX variable-length field (RFC 7011 §7).
pub(crate) const VARLEN: u16 = 0xFFFF;

/// Where a field's value goes. The numbering is only internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Slot {
    Src4,
    Dst4,
    Src6,
    Dst6,
    SrcPort,
    DstPort,
    Proto,
    TcpFlags,
    Tos,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    InIf,
    OutIf,
    Direction,
    IpVersion,
    StartSec,
    EndSec,
    StartMs,
    EndMs,
    StartUs,
    EndUs,
    StartNs,
    EndNs,
    StartUptime,
    EndUptime,
    StartDeltaUs,
    EndDeltaUs,
    SysInitMs,
    SamplingInterval,
    SamplerRandomInterval,
    SamplerId,
    SelectorId,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
}

/// Number of [`Slot`] variants (the accumulator array size).
pub(crate) const NSLOTS: usize = Slot::SamplingPopulation as usize + 1;

/// Maps an information element to the slot it fills, if simguard keeps it and the
/// encoded length makes sense for it. IPFIX and v9 share the numbering of every
/// element used here (RFC 7012 kept NetFlow v9's 1..127).
fn slot_for(ie: u16, len: u16) -> Option<Slot> {
    use Slot::*;
    // Addresses have exactly one valid length; unsigned integers may be sent in
    // reduced size (RFC 7011 §6.2), so any width 1..=8 reads as big-endian.
    let int = (1..=8).contains(&len);
    let s = match ie {
        8 if len == 4 => Src4,
        12 if len == 4 => Dst4,
        27 if len == 16 => Src6,
        28 if len == 16 => Dst6,
        // dateTimeMicroseconds/Nanoseconds are NTP timestamps: always 8 bytes.
        154 if len == 8 => StartUs,
        155 if len == 8 => EndUs,
        156 if len == 8 => StartNs,
        157 if len == 8 => EndNs,
        _ if !int => return None,
        1 => Bytes,
        2 => Packets,
        4 => Proto,
        5 => Tos,
        6 => TcpFlags,
        7 => SrcPort,
        10 => InIf,
        11 => DstPort,
        14 => OutIf,
        21 => EndUptime,
        22 => StartUptime,
        34 => SamplingInterval,
        48 => SamplerId,
        50 => SamplerRandomInterval,
        60 => IpVersion,
        61 => Direction,
        85 => BytesTotal,
        86 => PacketsTotal,
        150 => StartSec,
        151 => EndSec,
        152 => StartMs,
        153 => EndMs,
        158 => StartDeltaUs,
        159 => EndDeltaUs,
        160 => SysInitMs,
        302 => SelectorId,
        305 => PacketInterval,
        306 => PacketSpace,
        309 => SamplingSize,
        310 => SamplingPopulation,
        _ => return None,
    };
    Some(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Data,
    Options,
}

/// A kept field at a fixed offset of the record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    pub off: u16,
    pub len: u16,
    pub slot: Slot,
}

/// One field of a template with variable-length fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Walk {
    /// Encoded length, or [`VARLEN`].
    pub len: u16,
    pub slot: Option<Slot>,
}

#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub kind: Kind,
    /// Scope fields of an options template (0 for data templates).
    pub scope_fields: u16,
    /// The field specifiers as they came on the wire: compared to detect plain
    /// refreshes without rebuilding, and persisted by `export_state`.
    pub raw: Box<[u8]>,
    /// Record length when no field is variable-length.
    pub fixed_len: Option<usize>,
    /// Shortest possible record (a variable-length field counts its 1-byte prefix).
    pub min_len: usize,
    /// Kept fields with offsets (fixed-length templates only).
    pub fixed: Box<[Fixed]>,
    /// Every field in order (variable-length templates only).
    pub walk: Box<[Walk]>,
}

impl Template {
    /// Compiles field specifiers. `version` is 9 or 10: only IPFIX has enterprise
    /// numbers (bit 15 of the element id) and variable-length fields. In a v9
    /// options template the scope fields use their own type space (1 = System,
    /// 2 = Interface, ...), which must not be read as information elements.
    pub fn build(
        version: u16,
        id: u16,
        kind: Kind,
        scope_fields: u16,
        raw: &[u8],
    ) -> Result<Template, FlowError> {
        let bad = |reason| FlowError::BadTemplate { id, reason };
        let mut fields: Vec<(u16, Option<Slot>)> = Vec::new();
        let mut p = 0usize;
        while p < raw.len() {
            let (ie, len) = match raw.get(p..p + 4) {
                Some(b) => (
                    u16::from_be_bytes([b[0], b[1]]),
                    u16::from_be_bytes([b[2], b[3]]),
                ),
                None => return Err(bad("truncated field specifier")),
            };
            p += 4;
            let mut enterprise = false;
            if version == 10 && ie & 0x8000 != 0 {
                if raw.len() < p + 4 {
                    return Err(bad("truncated enterprise number"));
                }
                p += 4;
                enterprise = true;
            }
            if len == VARLEN && version != 10 {
                return Err(bad("variable-length field in NetFlow v9"));
            }
            let in_v9_scope =
                version == 9 && kind == Kind::Options && fields.len() < scope_fields as usize;
            let slot = if enterprise || in_v9_scope || len == VARLEN {
                None
            } else {
                slot_for(ie, len)
            };
            fields.push((len, slot));
        }
        if fields.len() > u16::MAX as usize {
            return Err(bad("too many fields"));
        }
        let varlen = fields.iter().any(|f| f.0 == VARLEN);
        let min_len: usize = fields
            .iter()
            .map(|&(len, _)| if len == VARLEN { 1 } else { len as usize })
            .sum();
        // A record must fit in one set; a template that cannot is unusable, and one
        // whose records are empty would make a data set an endless record loop.
        if min_len == 0 {
            return Err(bad("records would be empty"));
        }
        if min_len > u16::MAX as usize - 4 {
            return Err(bad("record longer than a set"));
        }
        let (fixed, walk, fixed_len) = if varlen {
            // Runs of skipped fixed-length fields collapse into one skip, and
            // zero-length ones vanish: per-record work stays bounded by the bytes
            // the record consumes, whatever the field count.
            let mut walk: Vec<Walk> = Vec::new();
            for &(len, slot) in &fields {
                match (slot, walk.last_mut()) {
                    (None, _) if len == 0 => {}
                    (None, Some(Walk { len: l, slot: None })) if len != VARLEN && *l != VARLEN => {
                        *l += len
                    }
                    _ => walk.push(Walk { len, slot }),
                }
            }
            (Vec::new(), walk, None)
        } else {
            let mut fixed: Vec<Fixed> = Vec::new();
            let mut off = 0usize;
            for &(len, slot) in &fields {
                if let Some(slot) = slot {
                    // A repeated element (tunnel templates repeat ports, protocol,
                    // addresses for the inner header) keeps its last occurrence,
                    // as pmacct does: the inner flow is the one that was carried.
                    fixed.retain(|f| f.slot != slot);
                    fixed.push(Fixed {
                        off: off as u16,
                        len,
                        slot,
                    });
                }
                off += len as usize;
            }
            (fixed, Vec::new(), Some(min_len))
        };
        Ok(Template {
            kind,
            scope_fields,
            raw: raw.into(),
            fixed_len,
            min_len,
            fixed: fixed.into(),
            walk: walk.into(),
        })
    }

    /// True when an incoming definition is byte-identical (a periodic refresh).
    pub fn same(&self, kind: Kind, scope_fields: u16, raw: &[u8]) -> bool {
        self.kind == kind && self.scope_fields == scope_fields && *self.raw == *raw
    }
}

/// Length in bytes of `count` field specifiers at the start of `b`, following
/// enterprise numbers (IPFIX only).
pub(crate) fn specs_len(version: u16, id: u16, b: &[u8], count: u16) -> Result<usize, FlowError> {
    let mut p = 0usize;
    for _ in 0..count {
        let ie = match b.get(p..p + 4) {
            Some(s) => u16::from_be_bytes([s[0], s[1]]),
            None => {
                return Err(FlowError::BadTemplate {
                    id,
                    reason: "field count overruns set",
                })
            }
        };
        p += 4;
        if version == 10 && ie & 0x8000 != 0 {
            p += 4;
            if p > b.len() {
                return Err(FlowError::BadTemplate {
                    id,
                    reason: "field count overruns set",
                });
            }
        }
    }
    Ok(p)
}
