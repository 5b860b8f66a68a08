//! The stateful part: template cache, options-derived sampling state and held
//! data, for all exporters.
//!
//! A datagram is decoded in one pass against an overlay (changes staged by earlier
//! sets of the same datagram, over the committed cache), so that a template and
//! its data in one datagram work, while nothing is committed until the whole
//! datagram has decoded: a malformed one changes no state.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::error::FlowError;
use crate::record::{decode_data, decode_options, Acc, Effect, HeaderCtx, SamplingView, SetCtx};
use crate::template::{specs_len, Kind, Template};
use crate::{v5, CollectorOptions, DecodeSummary, ExporterKey, FlowRecord};

/// Sampler/selector ids remembered per exporter domain; beyond, new ids are
/// ignored (an exporter has a handful of samplers, not thousands).
pub(crate) const MAX_SAMPLERS_PER_DOMAIN: usize = 4096;

/// Template scope: exporter, domain and protocol version (an exporter may speak
/// v9 and IPFIX with the same numeric domain; their templates are unrelated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DomainKey {
    pub key: ExporterKey,
    pub version: u16,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct DomainState {
    pub templates: HashMap<u16, Template>,
    /// (selector?, id) → sampling interval.
    pub samplers: HashMap<(bool, u64), u32>,
    /// Interval from options records naming no sampler (v9 system scope, IPFIX
    /// meteringProcess scope).
    pub default_rate: Option<u32>,
    pub sys_init_ms: Option<i64>,
}

/// A template change staged while decoding a datagram.
#[derive(Debug)]
enum Op {
    Define { id: u16, tpl: Template },
    Refresh { id: u16 },
    Withdraw { id: u16 },
    WithdrawAll(Kind),
}

/// Template changes staged by one datagram, with an index so that looking up a
/// template stays O(1) however many template records the datagram holds.
#[derive(Debug, Default)]
struct Staged {
    ops: Vec<Op>,
    /// Template id → index in `ops` of its latest Define/Withdraw.
    latest: HashMap<u16, usize>,
    /// Index of the latest "withdraw all" of data (0) and options (1) templates.
    wall: [Option<usize>; 2],
}

fn kind_idx(k: Kind) -> usize {
    match k {
        Kind::Data => 0,
        Kind::Options => 1,
    }
}

impl Staged {
    fn clear(&mut self) {
        self.ops.clear();
        // A hostile datagram can grow the index; do not keep paying for it.
        if self.latest.capacity() > 1024 {
            self.latest = HashMap::new();
        } else {
            self.latest.clear();
        }
        self.wall = [None; 2];
    }

    fn push(&mut self, op: Op) {
        let i = self.ops.len();
        match &op {
            Op::Define { id, .. } | Op::Withdraw { id } => {
                self.latest.insert(*id, i);
            }
            Op::WithdrawAll(k) => self.wall[kind_idx(*k)] = Some(i),
            Op::Refresh { .. } => {}
        }
        self.ops.push(op);
    }

    /// The template a data set refers to, as of this point of the datagram.
    fn find<'a>(&'a self, domain: Option<&'a DomainState>, id: u16) -> Option<&'a Template> {
        let walled = |t: &Template, after: Option<usize>| match (self.wall[kind_idx(t.kind)], after)
        {
            (Some(w), Some(i)) => w > i,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let Some(&i) = self.latest.get(&id) {
            return match self.ops.get(i) {
                Some(Op::Define { tpl, .. }) if !walled(tpl, Some(i)) => Some(tpl),
                _ => None,
            };
        }
        domain
            .and_then(|d| d.templates.get(&id))
            .filter(|t| !walled(t, None))
    }
}

/// Options effects staged by one datagram, folded to their final values (later
/// records win) so lookups stay O(1) however many options records it holds.
#[derive(Debug, Default)]
struct StagedEffects {
    samplers: HashMap<(bool, u64), u32>,
    default_rate: Option<u32>,
    sys_init_ms: Option<i64>,
}

impl StagedEffects {
    fn is_empty(&self) -> bool {
        self.samplers.is_empty() && self.default_rate.is_none() && self.sys_init_ms.is_none()
    }

    fn clear(&mut self) {
        if self.samplers.capacity() > 1024 {
            self.samplers = HashMap::new();
        } else {
            self.samplers.clear();
        }
        self.default_rate = None;
        self.sys_init_ms = None;
    }

    fn add(&mut self, e: Effect) {
        match e {
            Effect::Sampler { selector, id, rate } => {
                self.samplers.insert((selector, id), rate);
            }
            Effect::Default(r) => self.default_rate = Some(r),
            Effect::SysInit(ms) => self.sys_init_ms = Some(ms),
        }
    }
}

/// Per-datagram staging, kept in the collector so its buffers are reused.
#[derive(Debug, Default)]
struct Scratch {
    staged: Staged,
    effects: StagedEffects,
    /// Effects of the options set being decoded, before folding.
    set_effects: Vec<Effect>,
    /// Data sets without a template: (template id, range in `held_buf`).
    held: Vec<(u16, usize, usize)>,
    held_buf: Vec<u8>,
    defined: Vec<u16>,
}

impl Scratch {
    fn clear(&mut self) {
        self.staged.clear();
        self.effects.clear();
        self.set_effects.clear();
        self.held.clear();
        self.held_buf.clear();
        self.defined.clear();
    }
}

/// A data set waiting for its template.
#[derive(Debug)]
struct Pending {
    key: DomainKey,
    tid: u16,
    hdr: HeaderCtx,
    received_ms: i64,
    data: Vec<u8>,
}

/// Template cache, options-derived sampling state and pending buffer for all
/// exporters. Not thread-safe by itself; one per ingest worker (shard exporters
/// by address) or behind a lock.
#[derive(Debug)]
pub struct Collector {
    pub(crate) opts: CollectorOptions,
    pub(crate) domains: HashMap<DomainKey, DomainState>,
    pub(crate) template_total: usize,
    changed: u64,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    scratch: Scratch,
    acc: Acc,
}

/// Sampling state seen by data sets of the datagram being decoded: staged
/// effects first, then the committed domain.
struct Overlay<'a> {
    effects: Option<&'a StagedEffects>,
    domain: Option<&'a DomainState>,
}

impl SamplingView for Overlay<'_> {
    fn rate(&self, selector: bool, id: u64) -> Option<u32> {
        self.effects
            .and_then(|e| e.samplers.get(&(selector, id)).copied())
            .or_else(|| {
                self.domain
                    .and_then(|d| d.samplers.get(&(selector, id)).copied())
            })
    }
}

impl Overlay<'_> {
    fn default_rate(&self) -> u32 {
        self.effects
            .and_then(|e| e.default_rate)
            .or(self.domain.and_then(|d| d.default_rate))
            .unwrap_or(1)
    }

    fn sys_init_ms(&self) -> Option<i64> {
        self.effects
            .and_then(|e| e.sys_init_ms)
            .or(self.domain.and_then(|d| d.sys_init_ms))
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// True when the rest of a template set is zero padding.
fn is_padding(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Parses one template or options template set into staged ops.
fn parse_template_set(
    version: u16,
    options: bool,
    body: &[u8],
    staged: &mut Staged,
    domain: Option<&DomainState>,
    sum: &mut DecodeSummary,
) -> Result<(), FlowError> {
    let kind = if options { Kind::Options } else { Kind::Data };
    // The set id itself, used by IPFIX "withdraw all" records (RFC 7011 §8.1).
    let all_id: u16 = if options { 3 } else { 2 };
    let mut p = 0usize;
    loop {
        let rest = &body[p.min(body.len())..];
        // Shorter than a record header: padding (sets are padded to 4 bytes; a v9
        // options template header is 6 bytes).
        let min_hdr = if version == 9 && options { 6 } else { 4 };
        if rest.len() < min_hdr {
            break;
        }
        let tid = be16(rest, 0);
        let count = be16(rest, 2);
        if tid < 256 {
            if version == 10 && tid == all_id && count == 0 {
                staged.push(Op::WithdrawAll(kind));
                sum.templates += 1;
                p += 4;
                continue;
            }
            if is_padding(rest) {
                break;
            }
            return Err(FlowError::BadTemplate {
                id: tid,
                reason: "template id below 256",
            });
        }
        let (scope, raw, used) = if version == 9 && options {
            // v9 options: id, scope length (bytes), option length (bytes), specs.
            let scope_len = count as usize;
            let opt_len = be16(rest, 4) as usize;
            let bad = |reason| FlowError::BadTemplate { id: tid, reason };
            if scope_len % 4 != 0 || opt_len % 4 != 0 {
                return Err(bad("options lengths not multiples of 4"));
            }
            if scope_len + opt_len == 0 {
                return Err(bad("options template without fields"));
            }
            let Some(raw) = rest.get(6..6 + scope_len + opt_len) else {
                return Err(bad("field count overruns set"));
            };
            ((scope_len / 4) as u16, raw, 6 + scope_len + opt_len)
        } else {
            if count == 0 {
                if version == 9 {
                    return Err(FlowError::BadTemplate {
                        id: tid,
                        reason: "template without fields",
                    });
                }
                // IPFIX withdrawal: the header alone (RFC 7011 §8.1).
                staged.push(Op::Withdraw { id: tid });
                sum.templates += 1;
                p += 4;
                continue;
            }
            let (scope, hdr) = if options {
                let scope = be16(rest, 4);
                if rest.len() < 6 || scope == 0 || scope > count {
                    return Err(FlowError::BadTemplate {
                        id: tid,
                        reason: "bad scope field count",
                    });
                }
                (scope, 6)
            } else {
                (0, 4)
            };
            let specs = &rest[hdr..];
            let n = specs_len(version, tid, specs, count)?;
            (scope, &specs[..n], hdr + n)
        };
        let current = staged.find(domain, tid);
        if current.is_some_and(|t| t.same(kind, scope, raw)) {
            staged.push(Op::Refresh { id: tid });
        } else {
            let tpl = Template::build(version, tid, kind, scope, raw)?;
            staged.push(Op::Define { id: tid, tpl });
        }
        sum.templates += 1;
        p += used;
    }
    Ok(())
}

/// Decodes all sets of a v9 or IPFIX message against the overlay. Stages every
/// state change in `sc`; appends records to `out`.
#[allow(clippy::too_many_arguments)]
fn walk_sets(
    hdr: &HeaderCtx,
    sets: &[u8],
    header_len: usize,
    domain: Option<&DomainState>,
    sc: &mut Scratch,
    acc: &mut Acc,
    out: &mut Vec<FlowRecord>,
    sum: &mut DecodeSummary,
) -> Result<(), FlowError> {
    let v9 = hdr.version == 9;
    let (tmpl_id, opt_id) = if v9 { (0u16, 1u16) } else { (2, 3) };
    let mut p = 0usize;
    while p < sets.len() {
        let rem = sets.len() - p;
        if rem < 4 {
            // v9 has no message length: some exporters pad the datagram. IPFIX
            // declares its length, so a stub there is malformed.
            if v9 {
                break;
            }
            return Err(FlowError::BadSet {
                offset: header_len + p,
                reason: "trailing bytes shorter than a set header",
            });
        }
        let sid = be16(sets, p);
        let slen = be16(sets, p + 2) as usize;
        if slen < 4 {
            // Also what keeps a zero-length set from looping forever.
            return Err(FlowError::BadSet {
                offset: header_len + p,
                reason: "set length below 4",
            });
        }
        if slen > rem {
            return Err(FlowError::BadSet {
                offset: header_len + p,
                reason: "set overruns message",
            });
        }
        let body = &sets[p + 4..p + slen];
        if sid == tmpl_id || sid == opt_id {
            parse_template_set(
                hdr.version,
                sid == opt_id,
                body,
                &mut sc.staged,
                domain,
                sum,
            )?;
        } else if sid < 256 {
            // Reserved set ids: skip, as the RFCs ask.
            sum.skipped_sets += 1;
        } else {
            match sc.staged.find(domain, sid) {
                Some(t) if t.kind == Kind::Data => {
                    let view = Overlay {
                        effects: Some(&sc.effects),
                        domain,
                    };
                    let ctx = SetCtx {
                        hdr: *hdr,
                        default_rate: view.default_rate(),
                        sys_init_ms: view.sys_init_ms(),
                        view: &view,
                    };
                    sum.records += decode_data(t, sid, body, &ctx, acc, out)?;
                }
                Some(t) => {
                    sc.set_effects.clear();
                    sum.options_records += decode_options(t, sid, body, acc, &mut sc.set_effects)?;
                    for e in sc.set_effects.drain(..) {
                        sc.effects.add(e);
                    }
                }
                None => {
                    let start = sc.held_buf.len();
                    sc.held_buf.extend_from_slice(body);
                    sc.held.push((sid, start, sc.held_buf.len()));
                    sum.pending_sets += 1;
                }
            }
        }
        p += slen;
    }
    Ok(())
}

/// Applies one options effect to a domain; true when something changed.
fn apply_effect(dom: &mut DomainState, e: Effect) -> bool {
    match e {
        Effect::Sampler { selector, id, rate } => {
            let k = (selector, id);
            match dom.samplers.get(&k) {
                Some(&r) if r == rate => false,
                None if dom.samplers.len() >= MAX_SAMPLERS_PER_DOMAIN => false,
                _ => {
                    dom.samplers.insert(k, rate);
                    true
                }
            }
        }
        Effect::Default(r) => {
            let changed = dom.default_rate != Some(r);
            dom.default_rate = Some(r);
            changed
        }
        Effect::SysInit(ms) => {
            let changed = dom.sys_init_ms != Some(ms);
            dom.sys_init_ms = Some(ms);
            changed
        }
    }
}

impl Collector {
    pub fn new(opts: CollectorOptions) -> Self {
        Collector {
            opts,
            domains: HashMap::new(),
            template_total: 0,
            changed: 0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            scratch: Scratch::default(),
            acc: Acc::default(),
        }
    }

    /// Decode one UDP payload from `exporter`. Appends decoded records to `out`.
    /// Data sets whose template is unknown are kept (the raw set bytes, bounded)
    /// and decoded later when the template arrives (the records are then appended
    /// to `out` of that later call). On error nothing was appended and no state
    /// changed.
    pub fn decode(
        &mut self,
        exporter: IpAddr,
        datagram: &[u8],
        now_ms: i64,
        out: &mut Vec<FlowRecord>,
    ) -> Result<DecodeSummary, FlowError> {
        if datagram.len() < 2 {
            return Err(FlowError::TooShort {
                need: 2,
                got: datagram.len(),
            });
        }
        // A dual-stack socket reports IPv4 exporters as ::ffff:a.b.c.d; key them
        // the same as on an IPv4 socket.
        let exporter = exporter.to_canonical();
        match be16(datagram, 0) {
            5 => v5::decode(datagram, out),
            9 => {
                if datagram.len() < 20 {
                    return Err(FlowError::TooShort {
                        need: 20,
                        got: datagram.len(),
                    });
                }
                let hdr = HeaderCtx {
                    version: 9,
                    export_ms: be32(datagram, 8) as i64 * 1000,
                    uptime_ms: Some(be32(datagram, 4)),
                };
                let domain = be32(datagram, 16);
                self.decode_templated(exporter, domain, hdr, &datagram[20..], 20, now_ms, out)
            }
            10 => {
                if datagram.len() < 16 {
                    return Err(FlowError::TooShort {
                        need: 16,
                        got: datagram.len(),
                    });
                }
                let len = be16(datagram, 2) as usize;
                if len < 16 || len > datagram.len() {
                    return Err(FlowError::BadLength {
                        declared: len,
                        actual: datagram.len(),
                    });
                }
                let hdr = HeaderCtx {
                    version: 10,
                    export_ms: be32(datagram, 4) as i64 * 1000,
                    uptime_ms: None,
                };
                let domain = be32(datagram, 12);
                // Bytes past the declared length are not part of the message.
                self.decode_templated(exporter, domain, hdr, &datagram[16..len], 16, now_ms, out)
            }
            v => Err(FlowError::BadVersion(v)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_templated(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        hdr: HeaderCtx,
        sets: &[u8],
        header_len: usize,
        now_ms: i64,
        out: &mut Vec<FlowRecord>,
    ) -> Result<DecodeSummary, FlowError> {
        let dk = DomainKey {
            key: ExporterKey { exporter, domain },
            version: hdr.version,
        };
        let mut sum = DecodeSummary {
            version: hdr.version,
            ..DecodeSummary::default()
        };
        let out_start = out.len();
        self.scratch.clear();
        let res = walk_sets(
            &hdr,
            sets,
            header_len,
            self.domains.get(&dk),
            &mut self.scratch,
            &mut self.acc,
            out,
            &mut sum,
        );
        if let Err(e) = res {
            out.truncate(out_start);
            self.scratch.clear();
            return Err(e);
        }
        self.commit(dk, hdr, now_ms, out, &mut sum);
        Ok(sum)
    }

    /// Applies what a validated datagram staged, then decodes held data whose
    /// template just arrived.
    fn commit(
        &mut self,
        dk: DomainKey,
        hdr: HeaderCtx,
        now_ms: i64,
        out: &mut Vec<FlowRecord>,
        sum: &mut DecodeSummary,
    ) {
        let sc = &mut self.scratch;
        if !sc.staged.ops.is_empty() || !sc.effects.is_empty() {
            let dom = self.domains.entry(dk).or_default();
            for op in sc.staged.ops.drain(..) {
                match op {
                    Op::Define { id, tpl } => {
                        sc.defined.push(id);
                        if let Some(slot) = dom.templates.get_mut(&id) {
                            *slot = tpl;
                            self.changed += 1;
                        } else if self.template_total >= self.opts.max_templates {
                            sum.templates_refused += 1;
                        } else {
                            dom.templates.insert(id, tpl);
                            self.template_total += 1;
                            self.changed += 1;
                        }
                    }
                    Op::Refresh { id } => sc.defined.push(id),
                    Op::Withdraw { id } => {
                        if dom.templates.remove(&id).is_some() {
                            self.template_total -= 1;
                            self.changed += 1;
                        }
                    }
                    Op::WithdrawAll(kind) => {
                        let before = dom.templates.len();
                        dom.templates.retain(|_, t| t.kind != kind);
                        let gone = before - dom.templates.len();
                        if gone > 0 {
                            self.template_total -= gone;
                            self.changed += 1;
                        }
                    }
                }
            }
            // Sorted so that which ids fit under MAX_SAMPLERS_PER_DOMAIN does
            // not depend on hash order.
            let mut samplers: Vec<((bool, u64), u32)> = sc.effects.samplers.drain().collect();
            samplers.sort_unstable();
            let effects = samplers
                .into_iter()
                .map(|((selector, id), rate)| Effect::Sampler { selector, id, rate })
                .chain(sc.effects.default_rate.take().map(Effect::Default))
                .chain(sc.effects.sys_init_ms.take().map(Effect::SysInit));
            for e in effects {
                if apply_effect(dom, e) {
                    self.changed += 1;
                }
            }
        }
        let held = std::mem::take(&mut sc.held);
        for &(tid, s, e) in &held {
            let data = self.scratch.held_buf.get(s..e).unwrap_or_default().to_vec();
            self.push_pending(
                Pending {
                    key: dk,
                    tid,
                    hdr,
                    received_ms: now_ms,
                    data,
                },
                sum,
            );
        }
        self.scratch.held = held;
        self.scratch.held.clear();
        if !self.scratch.defined.is_empty() && !self.pending.is_empty() {
            self.release(dk, out, sum);
        }
    }

    fn push_pending(&mut self, p: Pending, sum: &mut DecodeSummary) {
        let len = p.data.len();
        if self.opts.pending_max_packets == 0 || len > self.opts.pending_max_bytes {
            sum.pending_dropped += 1;
            return;
        }
        while self.pending.len() >= self.opts.pending_max_packets
            || self.pending_bytes + len > self.opts.pending_max_bytes
        {
            match self.pending.pop_front() {
                Some(old) => {
                    self.pending_bytes -= old.data.len();
                    sum.pending_dropped += 1;
                }
                None => break,
            }
        }
        self.pending_bytes += len;
        self.pending.push_back(p);
    }

    /// Decodes held data sets of `dk` whose template was (re)defined in this call
    /// and is in the cache now (not withdrawn later in the datagram, not refused).
    fn release(&mut self, dk: DomainKey, out: &mut Vec<FlowRecord>, sum: &mut DecodeSummary) {
        let ids = &mut self.scratch.defined;
        ids.sort_unstable();
        ids.dedup();
        let Some(dom) = self.domains.get_mut(&dk) else {
            return;
        };
        let ready = |p: &Pending| {
            p.key == dk && ids.binary_search(&p.tid).is_ok() && dom.templates.contains_key(&p.tid)
        };
        if !self.pending.iter().any(ready) {
            return;
        }
        let mut released = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if ready(&p) {
                self.pending_bytes -= p.data.len();
                released.push(p);
            } else {
                self.pending.push_back(p);
            }
        }
        // Options first: held sampling/time options describe the exporter, and
        // should apply to the data held alongside them.
        released.sort_by_key(|p| match dom.templates.get(&p.tid) {
            Some(t) if t.kind == Kind::Options => 0u8,
            _ => 1,
        });
        let mut effects = Vec::new();
        for p in released {
            let Some(t) = dom.templates.get(&p.tid) else {
                continue; // not reachable: `ready` checked presence
            };
            match t.kind {
                Kind::Data => {
                    let view = Overlay {
                        effects: None,
                        domain: Some(dom),
                    };
                    let ctx = SetCtx {
                        hdr: p.hdr,
                        default_rate: view.default_rate(),
                        sys_init_ms: view.sys_init_ms(),
                        view: &view,
                    };
                    let before = out.len();
                    match decode_data(t, p.tid, &p.data, &ctx, &mut self.acc, out) {
                        Ok(n) => sum.released_records += n,
                        Err(_) => {
                            out.truncate(before);
                            sum.skipped_sets += 1;
                        }
                    }
                }
                Kind::Options => {
                    effects.clear();
                    match decode_options(t, p.tid, &p.data, &mut self.acc, &mut effects) {
                        Ok(_) => {
                            for e in effects.drain(..) {
                                if apply_effect(dom, e) {
                                    self.changed += 1;
                                }
                            }
                        }
                        Err(_) => sum.skipped_sets += 1,
                    }
                }
            }
        }
    }

    /// Drop pending data older than `pending_max_age_ms` (counted as expired).
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let max_age = self.opts.pending_max_age_ms;
        let before = self.pending.len();
        let mut bytes = self.pending_bytes;
        self.pending.retain(|p| {
            let keep = now_ms.saturating_sub(p.received_ms) <= max_age;
            if !keep {
                bytes -= p.data.len();
            }
            keep
        });
        self.pending_bytes = bytes;
        before - self.pending.len()
    }

    /// Templates cached over all exporters.
    pub fn template_count(&self) -> usize {
        self.template_total
    }

    /// Bumped whenever a template is added, redefined or withdrawn, or an
    /// options-derived sampling rate or system init time changes: the server
    /// persists [`export_state`](Self::export_state) when it moves.
    pub fn templates_changed(&self) -> u64 {
        self.changed
    }

    /// Data sets held for a template that has not arrived.
    pub fn pending_sets(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held for templates that have not arrived.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Sampling interval an options record announced for this exporter domain
    /// (`selector` = IPFIX selectorId 302, else samplerId / FLOW_SAMPLER_ID 48;
    /// `id` None = the domain-wide rate). For diagnostics and tests.
    pub fn sampling_rate(
        &self,
        version: u16,
        key: ExporterKey,
        selector: bool,
        id: Option<u64>,
    ) -> Option<u32> {
        let d = self.domains.get(&DomainKey { key, version })?;
        match id {
            Some(id) => d.samplers.get(&(selector, id)).copied(),
            None => d.default_rate,
        }
    }

    /// Template ids cached for an exporter domain, sorted. For diagnostics and tests.
    pub fn template_ids(&self, version: u16, key: ExporterKey) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .domains
            .get(&DomainKey { key, version })
            .map(|d| d.templates.keys().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
}

impl Default for Collector {
    fn default() -> Self {
        Collector::new(CollectorOptions::default())
    }
}
