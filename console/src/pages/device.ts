// One device: who it is, how it is connected right now, where it has been,
// what it sends against what it should, what detection found and what was
// done about it, and the actions a person can take (with a reason, after a
// confirmation).

import { ApiError, canWrite, get, post, qs } from '../api';
import { h, replace } from '../dom';
import { invalidateFleet } from '../fleet';
import { ago, bytes, duration, num, setEngineTime, time } from '../format';
import * as live from '../live';
import { project } from '../map/basemap';
import { MapView } from '../map/mapview';
import type { PageFn } from '../router';
import type { Alert, AuditAction, Baseline, Device, Finding, Page, Position, Traffic, Usage } from '../types';
import { barChart } from '../ui/chart';
import { alertActions } from '../ui/alertactions';
import { auditItem, findingRow, protoName, table } from '../ui/records';
import { card, dialog, errorBox, field, kv, lifecycleBadge, loading, severityBadge, statusBadge, toast } from '../ui/widgets';

const POLL_MS = 5000;
const HOUR = 3600_000;

type ActionName = 'block' | 'unblock' | 'throttle' | 'unthrottle' | 'quarantine' | 'release';

const ACTIONS: { name: ActionName; label: string; when: (l: string | null) => boolean; danger: boolean; effect: string }[] = [
  { name: 'block', label: 'Block', when: (l) => l !== 'blocked', danger: true, effect: 'Its sessions are disconnected (RFC 5176 Disconnect) and new sessions are rejected.' },
  { name: 'unblock', label: 'Unblock', when: (l) => l === 'blocked', danger: false, effect: 'It may connect again.' },
  { name: 'throttle', label: 'Throttle', when: (l) => l === 'active', danger: true, effect: 'Its sessions are rate-limited (CoA) to the rate you give.' },
  { name: 'unthrottle', label: 'Unthrottle', when: (l) => l === 'throttled', danger: false, effect: 'The rate limit is lifted (CoA).' },
  { name: 'quarantine', label: 'Quarantine', when: (l) => l === 'active' || l === 'throttled', danger: true, effect: 'Only its group’s allow-list gets through (CoA).' },
  { name: 'release', label: 'Release', when: (l) => l === 'quarantined', danger: false, effect: 'Quarantine ends (CoA).' },
];

/** Hourly usage against the learned baseline and the declared daily volume
 *  (spread over 24 hours): the last 7 days, or less for a device with a
 *  shorter history (whole days, at least one). */
function usageChart(u: Usage, b: Baseline | null): HTMLElement {
  const end = Math.ceil(Date.parse(u.to) / HOUR) * HOUR;
  const first = Math.min(end, ...u.hours.map((p) => Date.parse(p.hour)));
  const days = Math.max(1, Math.min(7, Math.ceil((end - first) / (24 * HOUR))));
  const start = end - days * 24 * HOUR;
  const xs: number[] = [];
  for (let t = start; t < end; t += HOUR) xs.push(t);
  const up = new Array<number>(xs.length).fill(0);
  const down = new Array<number>(xs.length).fill(0);
  for (const p of u.hours) {
    const i = Math.floor((Date.parse(p.hour) - start) / HOUR);
    if (i >= 0 && i < xs.length) {
      up[i] = p.up_octets;
      down[i] = p.down_octets;
    }
  }
  const lines = [];
  if (b?.uplink_per_hour) {
    lines.push({ label: 'learned baseline, uplink/h (p90)', value: b.uplink_per_hour.p90, color: '#000', dash: '6 4' });
  }
  if (b?.declared?.max_bytes_per_day) {
    lines.push({ label: 'declared, uplink/day ÷ 24', value: b.declared.max_bytes_per_day / 24, color: '#D55E00', dash: '2 3' });
  }
  return barChart({
    title: `Hourly usage, last ${days === 1 ? '24 hours' : `${days} days`}: ${bytes(u.total_up_octets)} up, ${bytes(u.total_down_octets)} down`,
    xs,
    series: [
      { label: 'uplink', color: '#0072B2', values: up },
      { label: 'downlink', color: '#56B4E9', values: down },
    ],
    lines,
    labelEvery: days <= 2 ? 6 : 24,
    tick: (x) => (days <= 2 ? new Date(x).toISOString().slice(11, 16) : new Date(x).toISOString().slice(5, 10)),
  });
}

function trailMap(host: HTMLElement, trail: Position[], countryName: string | null): () => void {
  const view = new MapView(host, 'Location trail of the device');
  const pts = trail.map((p) => project(p.lon, p.lat));
  if (countryName && !pts.length) {
    view.highlight = [countryName];
    view.onBasemap = (b) => {
      const box = b.bounds.get(countryName);
      if (box) view.fit(box[0], box[1], box[2], box[3], 64);
    };
  }
  view.layers.push({
    draw(ctx, v) {
      if (!pts.length) return;
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#0072B2';
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * v.k + v.tx, y * v.k + v.ty) : ctx.moveTo(x * v.k + v.tx, y * v.k + v.ty)));
      ctx.stroke();
      ctx.setLineDash([]);
      pts.forEach(([x, y], i) => {
        const sx = x * v.k + v.tx;
        const sy = y * v.k + v.ty;
        const acc = trail[i]?.accuracy_m;
        if (i === 0 && acc) {
          // The accuracy circle of the newest position (metres to pixels).
          const mPerUnit = (40075016 * Math.cos(((trail[0]?.lat ?? 0) * Math.PI) / 180)) / 1024;
          ctx.beginPath();
          ctx.arc(sx, sy, Math.max(6, (acc / mPerUnit) * v.k), 0, 2 * Math.PI);
          ctx.fillStyle = 'rgba(0,114,178,0.12)';
          ctx.fill();
        }
        ctx.beginPath();
        ctx.arc(sx, sy, i === 0 ? 7 : 4, 0, 2 * Math.PI);
        ctx.fillStyle = i === 0 ? '#0072B2' : '#fff';
        ctx.strokeStyle = '#0072B2';
        ctx.lineWidth = 2;
        ctx.fill();
        ctx.stroke();
      });
    },
  });
  if (pts.length) {
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    // At least a few hundred kilometres around the trail: enough borders
    // and coast to tell where it is.
    const pad = 4;
    view.fit(Math.min(...xs) - pad, Math.min(...ys) - pad, Math.max(...xs) + pad, Math.max(...ys) + pad, 64);
  }
  return () => view.dispose();
}

function trailOf(v: unknown): Position[] {
  const arr = Array.isArray(v) ? v : ((v as { items?: unknown[]; trail?: unknown[] })?.items ?? (v as { trail?: unknown[] })?.trail ?? []);
  return (arr as Position[]).filter((p) => typeof p?.lat === 'number' && typeof p?.lon === 'number');
}

export const devicePage: PageFn = (root, ctx) => {
  const imsi = ctx.params.imsi ?? '';
  const head = h('div', { class: 'page-head device-head' }, h('h1', null, imsi), loading());
  const identity = h('div');
  const network = h('div');
  const location = h('div');
  const usage = h('div');
  const destinations = h('div');
  const findings = h('ul', { class: 'finding-list' });
  const alerts = h('div');
  const audit = h('ol', { class: 'audit' });
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '/devices' }, '← Devices')),
    head,
    h(
      'div',
      { class: 'grid device-grid' },
      card('Identity and lifecycle', identity),
      card('Session and network', network),
      card('Location', location),
      card('Usage', usage),
      card('Top destinations', destinations),
      card('Alerts', alerts),
      card('Findings', findings),
      card('Audit timeline', audit),
    ),
  );

  let stopped = false;
  let device: Device | null = null;
  let disposeMap: (() => void) | null = null;
  let mapKey = '';

  const renderHead = (d: Device) => {
    const buttons = canWrite() && d.provisioned
      ? ACTIONS.filter((a) => a.when(d.lifecycle)).map((a) =>
          h('button', { type: 'button', class: a.danger ? 'danger' : '', dataset: { act: a.name }, onclick: () => void act(a.name) }, a.label),
        )
      : [];
    replace(
      head,
      h('div', null, h('h1', null, d.label ?? d.imsi), h('p', { class: 'muted mono' }, `IMSI ${d.imsi}`)),
      h('div', { class: 'head-badges' }, statusBadge(d.status), lifecycleBadge(d.lifecycle)),
      h('div', { class: 'actions' }, buttons),
    );
  };

  const renderDevice = (d: Device) => {
    renderHead(d);
    replace(
      identity,
      kv([
        ['Lifecycle', lifecycleBadge(d.lifecycle)],
        ['Tenant', d.tenant],
        ['Group', d.group],
        ['ICCID', d.iccid],
        ['MSISDN', d.msisdn],
        ['Bound IMEI', d.bound_imei],
        ['IMEISV seen', d.imeisv],
        ['Device model (TAC)', d.tac],
        ['First seen', d.first_seen ? time(d.first_seen) : null],
        ['Last seen', d.last_seen ? `${time(d.last_seen)} (${ago(d.last_seen)})` : 'never'],
      ]),
    );
    const n = d.network;
    replace(
      network,
      kv([
        ['Status', h('span', null, statusBadge(d.status), d.offline_reason ? ` (${d.offline_reason.replace(/_/g, ' ')})` : '')],
        ['Online until', d.online_until ? time(d.online_until) : null],
        ['Network', n ? `${n.plmn}${n.country_name ? ` · ${n.country_name}` : ''}` : null],
        ['RAT', d.rat ? `${d.rat.name} (${d.rat.code})` : null],
        ['Cell', d.cell ? `${d.cell.type} ${d.cell.plmn} ${d.cell.tac ?? d.cell.lac ?? ''}-${d.cell.eci ?? d.cell.ci ?? ''}` : null],
        ['Time zone', d.time_zone ? `UTC${d.time_zone.offset_minutes >= 0 ? '+' : ''}${d.time_zone.offset_minutes / 60}` : null],
        ['This period', `${bytes(d.usage.period_up_octets)} up · ${bytes(d.usage.period_down_octets)} down · ${d.usage.period_sessions} sessions`],
      ]),
      d.sessions.length
        ? table(
            ['Session', 'NAS', 'APN', 'IP', 'Started', 'Last update', 'Up', 'Down'],
            d.sessions.map((s) => [h('span', { class: 'mono' }, s.session_id), s.nas, s.apn ?? '–', s.framed_ip ?? '–', ago(s.start), ago(s.last_update), bytes(s.up_octets), bytes(s.down_octets)]),
            'Open sessions',
          )
        : h('p', { class: 'muted' }, 'No open session.'),
    );
  };

  const loadLocation = async (d: Device) => {
    let trail: Position[] = [];
    let note: string | null = null;
    try {
      trail = trailOf(await get<unknown>(`/api/v1/devices/${imsi}/locations`));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      note = 'This server keeps no location trail; the serving country is shown.';
    }
    if (!trail.length && d.position) trail = [d.position];
    const key = `${trail.length}:${trail[0]?.lat},${trail[0]?.lon}:${d.network?.country_name}`;
    if (key === mapKey) return;
    mapKey = key;
    disposeMap?.();
    const host = h('div', { class: 'mini-map' });
    const p = trail[0];
    replace(
      location,
      host,
      p
        ? h(
            'p',
            { class: 'small' },
            `Newest: ${p.lat.toFixed(4)}, ${p.lon.toFixed(4)}`,
            p.accuracy_m ? ` ± ${p.accuracy_m >= 1000 ? `${(p.accuracy_m / 1000).toFixed(1)} km` : `${Math.round(p.accuracy_m)} m`}` : '',
            p.source ? ` (from ${p.source})` : '',
            p.time ? ` · ${time(p.time)}` : '',
            trail.length > 1 ? ` · ${trail.length} positions in the trail` : '',
          )
        : h('p', { class: 'muted small' }, note ?? 'No position known yet.', d.network?.country_name ? ` Serving country: ${d.network.country_name}.` : ''),
    );
    disposeMap = trailMap(host, trail, trail.length ? null : d.network?.country_name ?? null);
  };

  const loadUsage = async () => {
    const [u, b] = await Promise.all([
      get<Usage>(`/api/v1/devices/${imsi}/usage`),
      get<Baseline>(`/api/v1/devices/${imsi}/baseline`).catch(() => null),
    ]);
    if (stopped) return;
    replace(
      usage,
      usageChart(u, b),
      b
        ? kv([
            ['Learned from', `${b.reports} reports${b.reports < b.warmup_reports ? ` (held to its group until ${b.warmup_reports})` : ''}`],
            ['Uplink per report', b.uplink_per_report ? `median ${bytes(b.uplink_per_report.p50)}, p90 ${bytes(b.uplink_per_report.p90)}` : null],
            ['Reports every', b.interval_secs ? duration(b.interval_secs) : null],
            ['Uplink today', bytes(b.uplink_today)],
            ['Declared', b.declared ? `${b.declared.max_bytes_per_day ? `${bytes(b.declared.max_bytes_per_day)}/day` : 'no volume'}${b.declared.report_interval_secs ? `, every ${duration(b.declared.report_interval_secs)}` : ''}${b.declared.active_hours ? `, ${b.declared.active_hours[0]}–${b.declared.active_hours[1]} h UTC` : ''}` : null],
          ])
        : null,
    );
  };

  const loadTraffic = async () => {
    const t = await get<Traffic>(`/api/v1/devices/${imsi}/traffic`);
    if (stopped) return;
    replace(
      destinations,
      t.top_destinations.length
        ? table(
            ['Destination', 'Port', 'Proto', 'Bytes', 'Flows'],
            t.top_destinations.map((x) => [h('span', { class: 'mono' }, x.address), String(x.port), protoName(x.proto), bytes(x.bytes), num(x.flows)]),
          )
        : h('p', { class: 'muted' }, 'No flows attributed to this device yet.'),
      h(
        'p',
        { class: 'small muted' },
        `${num(t.flows)} flows`,
        t.never_answered_share !== null ? ` · ${Math.round(t.never_answered_share * 100)}% of TCP attempts never answered` : '',
        ` · ${num(t.policy_violations)} policy violations`,
      ),
    );
  };

  const loadFindings = async () => {
    const p = await get<Page<Finding>>(`/api/v1/devices/${imsi}/findings${qs({ limit: 50 })}`);
    if (stopped) return;
    replace(findings, p.items.length ? p.items.map((f) => findingRow(f)) : h('li', { class: 'muted' }, 'No findings.'));
  };

  const loadAlerts = async () => {
    const p = await get<Page<Alert>>(`/api/v1/alerts${qs({ imsi, limit: 50 })}`);
    if (stopped) return;
    replace(
      alerts,
      p.items.length
        ? h(
            'ul',
            { class: 'alert-list' },
            p.items.map((a) =>
              h(
                'li',
                { dataset: { alert: a.id, state: a.state } },
                severityBadge(a.severity),
                h('strong', null, ` ${a.type.replace(/_/g, ' ')} `),
                h('span', { class: 'muted' }, `${a.state}${a.acknowledged ? ', acknowledged' : ''} · ${a.count}× · ${ago(a.last_ms)}`),
                h('div', { class: 'small' }, a.summary),
                alertActions(a, () => void loadAlerts()),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No alerts.'),
    );
  };

  const loadAudit = async () => {
    const p = await get<Page<AuditAction>>(`/api/v1/devices/${imsi}/audit${qs({ limit: 50 })}`);
    if (stopped) return p;
    replace(audit, p.items.length ? p.items.map(auditItem) : h('li', { class: 'muted' }, 'Nothing was done to this device.'));
    return p;
  };

  const loadDevice = async (first: boolean) => {
    try {
      const [d, st] = await Promise.all([
        get<Device>(`/api/v1/devices/${imsi}`),
        get<{ engine_time_ms: number }>('/api/v1/status').catch(() => null),
      ]);
      if (stopped) return;
      setEngineTime(st?.engine_time_ms);
      device = d;
      renderDevice(d);
      root.dataset.loaded = 'true';
      if (first) {
        const tasks: [string, HTMLElement, () => Promise<unknown>][] = [
          ['location', location, () => loadLocation(d)],
          ['usage', usage, loadUsage],
          ['traffic', destinations, loadTraffic],
          ['findings', findings, loadFindings],
          ['alerts', alerts, loadAlerts],
          ['audit', audit, loadAudit],
        ];
        for (const [, el, f] of tasks) {
          replace(el, loading());
          f().catch((e) => !stopped && replace(el, errorBox(e)));
        }
      } else {
        void loadLocation(d).catch(() => undefined);
      }
    } catch (e) {
      if (stopped) return;
      if (e instanceof ApiError && e.status === 404) {
        replace(head, h('h1', null, imsi), h('p', { class: 'error' }, 'No such device, or not one you may see.'));
      } else if (first) {
        replace(head, h('h1', null, imsi), errorBox(e));
      }
    }
  };

  /** Polls the audit trail until the action's entry has the network's answer. */
  const awaitResults = async (actionId: string) => {
    for (let i = 0; i < 40 && !stopped; i++) {
      const p = await loadAudit();
      const a = p?.items.find((x) => x.id === actionId);
      if (a && (a.results.length || !a.enforce || a.mode !== 'enforce')) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const act = async (name: ActionName) => {
    const d = device;
    const spec = ACTIONS.find((a) => a.name === name);
    if (!d || !spec) return;
    const res = await dialog({
      title: `${spec.label} ${d.label ?? d.imsi}?`,
      confirm: `${spec.label} device`,
      danger: spec.danger,
      body: () => [
        h('p', null, spec.effect, d.sessions.length ? ` ${d.sessions.length} open session(s) on ${[...new Set(d.sessions.map((s) => s.nas))].join(', ')}.` : ' It has no open session now.'),
        h('p', { class: 'muted small mono' }, `IMSI ${d.imsi} · ${d.tenant ?? ''} / ${d.group ?? ''}`),
        field('Reason (goes into the audit trail)', h('textarea', { name: 'reason', required: true, rows: 3, minlength: 3, id: 'action-reason' })),
        name === 'throttle' ? field('Rate, kbit/s', h('input', { name: 'kbps', type: 'number', min: 1, required: true, value: '64' })) : null,
        ['block', 'throttle', 'quarantine'].includes(name)
          ? field(
              'Undo after',
              h(
                'select',
                { name: 'expire' },
                h('option', { value: '' }, 'never (until someone does)'),
                h('option', { value: '3600' }, '1 hour'),
                h('option', { value: '86400' }, '24 hours'),
                h('option', { value: '604800' }, '7 days'),
              ),
            )
          : null,
      ],
      submit: async (form) => {
        const fd = new FormData(form);
        const body: Record<string, unknown> = { action: name, reason: String(fd.get('reason') ?? '').trim() };
        if (fd.get('kbps')) body.kbps = Number(fd.get('kbps'));
        if (fd.get('expire')) body.expire_secs = Number(fd.get('expire'));
        return post<{ seq: number; action_id: string; lifecycle: string | null }>(`/api/v1/devices/${imsi}/actions`, body);
      },
    });
    if (!res) return;
    toast(`${spec.label}: done, lifecycle now ${res.lifecycle ?? '–'}`);
    invalidateFleet();
    await loadDevice(false);
    await awaitResults(res.action_id);
  };

  // Live audit updates, coalesced: an escalation or a NAS answering
  // several requests brings a burst of events, worth one reload.
  let refreshTimer: number | undefined;
  let refreshDevice = false;
  const liveRefresh = (lifecycleChanged: boolean) => {
    refreshDevice ||= lifecycleChanged;
    if (refreshTimer !== undefined) return;
    refreshTimer = window.setTimeout(() => {
      refreshTimer = undefined;
      const withDevice = refreshDevice;
      refreshDevice = false;
      if (stopped) return;
      void loadAudit().catch(() => undefined);
      if (withDevice) void loadDevice(false);
    }, 250);
  };

  void loadDevice(true);
  const timer = window.setInterval(() => {
    if (!document.hidden) void loadDevice(false);
  }, POLL_MS);
  const unsubs = [
    live.subscribe('finding', (f) => {
      if (f.imsi === imsi) {
        findings.querySelector(':scope > .muted')?.remove();
        findings.prepend(findingRow(f));
      }
    }),
    live.subscribe('alert', (a) => {
      if (a.imsi === imsi) void loadAlerts().catch(() => undefined);
    }),
    // A rule's block or the NAS's answer shows without a reload. The audit
    // timeline is reloaded (one request: an entry's results are nested in
    // it), the device too when the action changed its lifecycle.
    live.subscribe('action', (a) => {
      if (a.imsi === imsi) liveRefresh(a.from !== a.to);
    }),
    live.subscribe('action_result', (r) => {
      if (r.imsi === imsi) liveRefresh(false);
    }),
  ];
  return () => {
    stopped = true;
    window.clearInterval(timer);
    window.clearTimeout(refreshTimer);
    unsubs.forEach((u) => u());
    disposeMap?.();
  };
};
