// The fleet at a glance: devices by status, country and RAT; active alerts
// by severity; ingest rates; the newest findings as they arrive.

import { get, qs } from '../api';
import { h, replace } from '../dom';
import { ago, num, pct, rate, setEngineTime } from '../format';
import * as live from '../live';
import type { PageFn } from '../router';
import type { AlertSummary, DeviceSummary, Finding, Page, Status_ } from '../types';
import { sparkline } from '../ui/chart';
import { SERIES, SEVERITIES, SEVERITY_COLOR, STATUS_COLOR, STATUS_GLYPH, STATUS_LABEL } from '../ui/palette';
import { barList, card, errorBox, lifecycleBadge, severityBadge } from '../ui/widgets';

const POLL_MS = 5000;
const RATE_POINTS = 60;

export const overviewPage: PageFn = (root) => {
  const statusBox = h('div', { class: 'status-tiles' });
  const lifecycleBox = h('div');
  const countryBox = h('div');
  const ratBox = h('div');
  const alertBox = h('div');
  const ingestBox = h('div', { class: 'ingest' });
  const findingsList = h('ol', { class: 'findings-feed', 'aria-live': 'polite' });
  const stamp = h('p', { class: 'muted stamp' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Overview'), stamp),
    statusBox,
    h(
      'div',
      { class: 'grid' },
      card('Active alerts by severity', alertBox),
      card('Ingest', ingestBox),
      card('Devices by country', countryBox),
      card('Devices by radio access', ratBox),
      card('Lifecycle', lifecycleBox),
      card(
        h('span', null, 'Newest findings ', h('a', { href: '/alerts', class: 'small' }, 'alerts →')),
        findingsList,
      ),
    ),
  );

  let stopped = false;
  const samples: { t: number; acct: number; flows: number }[] = [];
  const acctRates: number[] = [];
  const flowRates: number[] = [];

  const renderDevices = (d: DeviceSummary) => {
    const tiles: [string, number, string, string][] = [
      ['total', d.total, 'Devices', '#333'],
      ['online', d.by_status.online, `${STATUS_GLYPH.online} ${STATUS_LABEL.online}`, STATUS_COLOR.online],
      ['offline', d.by_status.offline, `${STATUS_GLYPH.offline} ${STATUS_LABEL.offline}`, STATUS_COLOR.offline],
      ['never_seen', d.by_status.never_seen, `${STATUS_GLYPH.never_seen} ${STATUS_LABEL.never_seen}`, '#777'],
    ];
    replace(
      statusBox,
      tiles.map(([key, n, label, color]) =>
        h(
          'a',
          {
            class: 'tile',
            href: key === 'total' ? '/devices' : `/devices?status=${key}`,
            style: { borderTopColor: color },
          },
          h('span', { class: 'tile-label' }, label),
          h('strong', { class: 'tile-value', dataset: { count: key } }, num(n)),
          key === 'total' ? null : h('small', { class: 'muted' }, pct(n, d.total)),
        ),
      ),
      h(
        'div',
        { class: 'status-strip', role: 'img', 'aria-label': `Online ${d.by_status.online}, offline ${d.by_status.offline}, never seen ${d.by_status.never_seen}` },
        (['online', 'offline', 'never_seen'] as const).map((k) =>
          h('span', {
            class: `strip-${k}`,
            style: { flexGrow: String(d.by_status[k]), background: STATUS_COLOR[k] },
          }),
        ),
      ),
    );
    const top = d.by_country.slice(0, 10);
    const rest = d.by_country.slice(10).reduce((a, c) => a + c.count, 0);
    replace(
      countryBox,
      barList(
        [
          ...top.map((c) => ({
            label: c.country ? `${c.name ?? c.country} (${c.country})` : 'Unknown',
            value: c.count,
            key: `country-${c.country ?? 'unknown'}`,
            href: c.country ? `/devices?country=${c.country}` : undefined,
          })),
          ...(rest ? [{ label: `${d.by_country.length - 10} more`, value: rest, color: '#999' }] : []),
        ],
        { total: d.total, name: 'Devices by country' },
      ),
    );
    replace(
      ratBox,
      barList(
        d.by_rat.map((r, i) => ({
          label: r.name ?? 'Not reported',
          value: r.count,
          color: r.name ? SERIES[i % SERIES.length] : '#999',
          key: `rat-${r.name ?? 'none'}`,
          href: r.name ? `/devices?rat=${encodeURIComponent(r.name)}` : undefined,
        })),
        { total: d.total, name: 'Devices by RAT' },
      ),
    );
    replace(
      lifecycleBox,
      h(
        'ul',
        { class: 'chips' },
        Object.entries(d.by_lifecycle)
          .filter(([, n]) => n > 0)
          .map(([l, n]) =>
            h(
              'li',
              null,
              h('a', { href: l === 'unprovisioned' ? '/devices?provisioned=false' : `/devices?lifecycle=${l}` }, lifecycleBadge(l === 'unprovisioned' ? null : l)),
              h('strong', { dataset: { count: `lifecycle-${l}` } }, ` ${num(n)}`),
            ),
          ),
      ),
    );
    stamp.textContent = `Engine time ${d.engine_time.replace('T', ' ').replace('Z', ' UTC')}`;
  };

  const renderAlerts = (a: AlertSummary) => {
    replace(
      alertBox,
      h('p', null, h('strong', { dataset: { alerts: 'total' } }, num(a.active_total)), ' active, ', num(SEVERITIES.reduce((x, s) => x + a.active_unacknowledged[s], 0)), ' not acknowledged'),
      barList(
        [...SEVERITIES].reverse().map((s) => ({
          label: severityBadge(s),
          value: a.active[s],
          color: SEVERITY_COLOR[s],
          key: `alerts-${s}`,
          href: `/alerts?state=active&severity=${s}`,
        })),
        { name: 'Active alerts by severity' },
      ),
    );
  };

  const renderIngest = (st: Status_) => {
    const now = performance.now();
    const acct = st.accounting.accepted ?? 0;
    const flows = st.flows.records ?? 0;
    const prev = samples[samples.length - 1];
    samples.push({ t: now, acct, flows });
    if (samples.length > 2) samples.shift();
    if (prev && now > prev.t) {
      const dt = (now - prev.t) / 1000;
      acctRates.push(Math.max(0, (acct - prev.acct) / dt));
      flowRates.push(Math.max(0, (flows - prev.flows) / dt));
      if (acctRates.length > RATE_POINTS) acctRates.shift();
      if (flowRates.length > RATE_POINTS) flowRates.shift();
    }
    const dropped = Object.entries(st.accounting)
      .filter(([k]) => k.startsWith('dropped_'))
      .reduce((x, [, v]) => x + v, 0);
    const last = (v: number[]) => (v.length ? rate(v[v.length - 1] ?? 0) : '…');
    replace(
      ingestBox,
      h(
        'div',
        { class: 'rate' },
        h('span', null, 'Accounting records'),
        h('strong', { dataset: { rate: 'accounting' } }, last(acctRates)),
        sparkline(acctRates, 'Accounting records per second, last minutes'),
        h('small', { class: 'muted' }, `${num(acct)} accepted, ${num(st.accounting.duplicates ?? 0)} duplicates, ${num(dropped)} dropped`),
      ),
      h(
        'div',
        { class: 'rate' },
        h('span', null, 'Flow records'),
        h('strong', { dataset: { rate: 'flows' } }, last(flowRates)),
        sparkline(flowRates, 'Flow records per second, last minutes', '#009E73'),
        h('small', { class: 'muted' }, `${num(flows)} received, ${num(st.flows.attributed ?? 0)} attributed`),
      ),
    );
  };

  const findingItem = (f: Finding) =>
    h(
      'li',
      { dataset: { finding: f.id } },
      severityBadge(f.severity),
      h(
        'div',
        null,
        h('strong', null, f.type.replace(/_/g, ' ')),
        ' ',
        f.imsi ? h('a', { href: `/devices/${f.imsi}` }, f.imsi) : h('span', null, f.subject.id),
        h('div', { class: 'muted small' }, f.summary),
      ),
      h('time', { class: 'muted small', datetime: f.time, title: f.time }, ago(f.time_ms)),
    );

  const refreshAlerts = async () => renderAlerts(await get<AlertSummary>('/api/v1/alerts/summary'));

  const poll = async () => {
    try {
      const [d, a, st] = await Promise.all([
        get<DeviceSummary>('/api/v1/devices/summary'),
        get<AlertSummary>('/api/v1/alerts/summary'),
        get<Status_>('/api/v1/status'),
      ]);
      if (stopped) return;
      setEngineTime(d.engine_time_ms);
      renderDevices(d);
      renderAlerts(a);
      renderIngest(st);
      root.dataset.loaded = 'true';
    } catch (e) {
      if (!stopped) replace(statusBox, errorBox(e));
    }
  };

  // Two samples a second apart give the first rates without waiting a poll.
  void poll().then(() =>
    window.setTimeout(() => {
      if (!stopped) void get<Status_>('/api/v1/status').then((st) => !stopped && renderIngest(st), () => undefined);
    }, 1000),
  );
  void get<Page<Finding>>(`/api/v1/findings${qs({ limit: 12 })}`).then(
    (p) => {
      if (stopped) return;
      replace(findingsList, p.items.length ? p.items.map(findingItem) : h('li', { class: 'muted' }, 'No findings yet.'));
    },
    (e) => replace(findingsList, errorBox(e)),
  );
  const timer = window.setInterval(() => {
    if (!document.hidden) void poll();
  }, POLL_MS);
  let alertTimer: number | undefined;
  const unsubs = [
    live.subscribe('finding', (f) => {
      findingsList.querySelector('.muted:only-child')?.remove();
      findingsList.prepend(findingItem(f));
      while (findingsList.children.length > 12) findingsList.lastElementChild?.remove();
    }),
    live.subscribe('alert', () => {
      // A burst of alert changes refreshes the counts once.
      window.clearTimeout(alertTimer);
      alertTimer = window.setTimeout(() => void refreshAlerts().catch(() => undefined), 300);
    }),
  ];
  return () => {
    stopped = true;
    window.clearInterval(timer);
    window.clearTimeout(alertTimer);
    unsubs.forEach((u) => u());
  };
};
