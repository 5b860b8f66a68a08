// The alert inbox: filter, acknowledge, clear and comment, one at a time or
// in bulk; alerts change in place as the live stream reports them.

import { canWrite, get, post, qs } from '../api';
import { h, replace } from '../dom';
import { ago, num, time } from '../format';
import * as live from '../live';
import { setQuery, type PageFn } from '../router';
import type { Alert, AlertComment, Finding, Notification, Page } from '../types';
import { SEVERITIES } from '../ui/palette';
import { dialog, errorBox, field, loading, severityBadge, toast } from '../ui/widgets';
import { alertActions } from '../ui/alertactions';
import { evidence } from '../ui/records';

const FILTERS = ['state', 'severity', 'type', 'acknowledged', 'imsi', 'group'] as const;

export const alertsPage: PageFn = (root, ctx) => {
  const q: Record<string, string> = {};
  for (const k of FILTERS) {
    const v = ctx.query.get(k);
    if (v) q[k] = v;
  }
  if (!ctx.query.has('state')) q.state = 'active';
  const selected = new Set<string>();
  const rows = new Map<string, { a: Alert; el: HTMLElement }>();
  const list = h('ul', { class: 'inbox', 'aria-label': 'Alerts' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const count = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });
  const bulk = h('div', { class: 'bulk', hidden: true, role: 'region', 'aria-label': 'Bulk actions' });
  let cursor: string | null = null;
  let stopped = false;

  const sel = (name: string, label: string, opts: [string, string][]) => {
    const s = h(
      'select',
      { name, 'aria-label': label },
      h('option', { value: '' }, `${label}: all`),
      opts.map(([v, t]) => h('option', { value: v, selected: q[name] === v ? true : undefined }, t)),
    );
    s.addEventListener('change', () => {
      if (s.value) q[name] = s.value;
      else delete q[name];
      void reload();
    });
    return s;
  };
  const imsiInput = h('input', { type: 'search', name: 'imsi', placeholder: 'IMSI', 'aria-label': 'IMSI', value: q.imsi ?? '', inputmode: 'numeric' });
  imsiInput.addEventListener('change', () => {
    if (imsiInput.value.trim()) q.imsi = imsiInput.value.trim();
    else delete q.imsi;
    void reload();
  });
  const typeInput = h('input', { type: 'search', name: 'type', placeholder: 'Type (silent, scanning…)', 'aria-label': 'Alert type', value: q.type ?? '' });
  typeInput.addEventListener('change', () => {
    if (typeInput.value.trim()) q.type = typeInput.value.trim();
    else delete q.type;
    void reload();
  });
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all shown alerts' });
  selectAll.addEventListener('change', () => {
    for (const [id, r] of rows) {
      const box = r.el.querySelector<HTMLInputElement>('input[type=checkbox]');
      if (box) box.checked = selectAll.checked;
      if (selectAll.checked) selected.add(id);
      else selected.delete(id);
    }
    renderBulk();
  });

  root.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Alerts'), count),
    h(
      'form',
      { class: 'toolbar', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      sel('state', 'State', [['active', 'active'], ['cleared', 'cleared']]),
      sel('severity', 'Severity', SEVERITIES.map((s) => [s, `${s} or worse`])),
      sel('acknowledged', 'Acknowledged', [['false', 'not acknowledged'], ['true', 'acknowledged']]),
      typeInput,
      imsiInput,
    ),
    bulk,
    h('div', { class: 'inbox-head' }, h('label', null, selectAll, ' Select all')),
    list,
    more,
  );

  const bulkRun = async (what: 'ack' | 'clear' | 'comment') => {
    const ids = [...selected];
    let text = '';
    if (what === 'comment') {
      const r = await dialog({
        title: `Comment on ${ids.length} alerts`,
        confirm: 'Add comment',
        body: () => field('Comment', h('textarea', { name: 'text', required: true, rows: 4 })),
        submit: async (form) => String(new FormData(form).get('text') ?? ''),
      });
      if (r === null) return;
      text = r;
    } else {
      const ok = await dialog({
        title: `${what === 'ack' ? 'Acknowledge' : 'Clear'} ${ids.length} alerts?`,
        confirm: what === 'ack' ? 'Acknowledge all' : 'Clear all',
        danger: what === 'clear',
        body: () => h('p', null, what === 'clear' ? 'Cleared alerts leave the active list and notify their subscribers.' : 'Your name is recorded as who acknowledged them.'),
        submit: async () => true,
      });
      if (!ok) return;
    }
    let failed = 0;
    // A few at a time: a thousand at once would queue behind each other anyway.
    for (let i = 0; i < ids.length; i += 8) {
      const part = ids.slice(i, i + 8);
      const res = await Promise.allSettled(
        part.map((id) => (what === 'comment' ? post(`/api/v1/alerts/${id}/comments`, { text }) : post(`/api/v1/alerts/${id}/${what}`))),
      );
      failed += res.filter((r) => r.status === 'rejected').length;
    }
    toast(failed ? `${ids.length - failed} done, ${failed} failed` : `${ids.length} alerts: done`, failed ? 'error' : 'ok');
    selected.clear();
    void reload();
  };

  const renderBulk = () => {
    bulk.hidden = selected.size === 0 || !canWrite();
    replace(
      bulk,
      h('strong', null, `${selected.size} selected`),
      h('button', { type: 'button', dataset: { bulk: 'ack' }, onclick: () => void bulkRun('ack') }, 'Acknowledge'),
      h('button', { type: 'button', dataset: { bulk: 'clear' }, onclick: () => void bulkRun('clear') }, 'Clear'),
      h('button', { type: 'button', dataset: { bulk: 'comment' }, onclick: () => void bulkRun('comment') }, 'Comment'),
    );
  };

  const matches = (a: Alert) =>
    (!q.state || a.state === q.state) &&
    (!q.severity || SEVERITIES.indexOf(a.severity) >= SEVERITIES.indexOf(q.severity as never)) &&
    (!q.acknowledged || String(a.acknowledged) === q.acknowledged) &&
    (!q.imsi || a.imsi === q.imsi) &&
    (!q.type || q.type.split(',').map((x) => x.trim()).includes(a.type));

  const detail = async (a: Alert, host: HTMLElement) => {
    replace(host, loading());
    try {
      const [d, f, sent] = await Promise.all([
        get<{ alert: Alert; comments: AlertComment[] }>(`/api/v1/alerts/${a.id}`),
        a.finding ? get<Finding>(`/api/v1/findings/${a.finding}`).catch(() => null) : Promise.resolve(null),
        // Who was told: absent on a server without notifications.
        get<Notification[]>(`/api/v1/alerts/${a.id}/notifications`).catch(() => null),
      ]);
      replace(
        host,
        h(
          'p',
          { class: 'small' },
          `Started ${time(d.alert.start)} · last ${time(d.alert.last)} · ${d.alert.count} occurrence(s)`,
          d.alert.acknowledged_by ? ` · acknowledged by ${d.alert.acknowledged_by} ${time(d.alert.acknowledged_at)}` : '',
          d.alert.cleared_by ? ` · cleared by ${d.alert.cleared_by} ${time(d.alert.cleared_at)}` : '',
        ),
        f ? evidence(f) : null,
        sent && sent.length
          ? [
              h('h3', null, 'Notifications'),
              h(
                'ul',
                { class: 'notifications' },
                sent.map((n) =>
                  h(
                    'li',
                    { dataset: { notification: n.status } },
                    h('strong', null, `${n.channel}`),
                    ` → ${n.recipient ?? '–'} · ${n.event} · `,
                    h('span', { class: n.status === 'sent' ? 'result-ack' : n.status === 'failed' ? 'result-nak' : '' }, n.status),
                    n.attempts.length ? ` · ${n.attempts.length} attempt(s), last: ${n.attempts[n.attempts.length - 1]?.result ?? ''}` : '',
                    n.last_error ? h('div', { class: 'muted small' }, n.last_error) : null,
                  ),
                ),
              ),
            ]
          : null,
        h('h3', null, 'Comments'),
        d.comments.length
          ? h('ol', { class: 'comments' }, d.comments.map((c) => h('li', null, h('strong', null, c.author), h('span', { class: 'muted small' }, ` ${time(c.time)}`), h('p', null, c.text))))
          : h('p', { class: 'muted' }, 'No comments.'),
      );
    } catch (e) {
      replace(host, errorBox(e));
    }
  };

  const row = (a: Alert): HTMLElement => {
    const box = h('input', { type: 'checkbox', 'aria-label': `Select alert ${a.type} ${a.imsi ?? a.subject.id}`, checked: selected.has(a.id) });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(a.id);
      else selected.delete(a.id);
      renderBulk();
    });
    const more = h('div', { class: 'alert-detail' });
    const det = h(
      'details',
      null,
      h(
        'summary',
        null,
        severityBadge(a.severity),
        h('strong', null, ` ${a.type.replace(/_/g, ' ')} `),
        a.imsi ? h('a', { href: `/devices/${a.imsi}` }, a.imsi) : h('span', null, `${a.subject.type} ${a.subject.id}`),
        h('span', { class: 'muted' }, ` · ${a.state}${a.acknowledged ? ' · ✓ acknowledged' : ' · not acknowledged'} · ${a.count}× · ${ago(a.last_ms)}`),
        h('div', { class: 'small' }, a.summary),
      ),
      more,
    );
    det.addEventListener('toggle', () => {
      if (det.open) void detail(a, more);
    });
    return h(
      'li',
      { class: `inbox-row ${a.acknowledged ? 'acked' : ''}`, dataset: { alert: a.id, state: a.state, acknowledged: String(a.acknowledged) } },
      box,
      det,
      alertActions(a, () => void refreshOne(a.id)),
    );
  };

  const upsert = (a: Alert, top: boolean) => {
    const old = rows.get(a.id);
    if (!matches(a)) {
      old?.el.remove();
      rows.delete(a.id);
      selected.delete(a.id);
      return;
    }
    const el = row(a);
    if (old) old.el.replaceWith(el);
    else if (top) list.prepend(el);
    else list.append(el);
    rows.set(a.id, { a, el });
    list.querySelector(':scope > .muted')?.remove();
  };

  const refreshOne = async (id: string) => {
    try {
      const d = await get<{ alert: Alert }>(`/api/v1/alerts/${id}`);
      upsert(d.alert, false);
      renderBulk();
      updateCount();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
    }
  };

  const updateCount = () => {
    count.textContent = `${num(rows.size)}${cursor ? '+' : ''} alerts shown`;
  };

  const page = async () => {
    const p = await get<Page<Alert>>(`/api/v1/alerts${qs({ ...q, limit: 100, cursor })}`);
    if (stopped) return;
    for (const a of p.items) upsert(a, false);
    cursor = p.next_cursor;
    more.hidden = !cursor;
    if (!rows.size) replace(list, h('li', { class: 'muted' }, 'No alerts match.'));
    updateCount();
    root.dataset.loaded = 'true';
  };

  const reload = async () => {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (q[k]) p.set(k, q[k] as string);
    if (!q.state) p.set('state', '');
    setQuery(p);
    cursor = null;
    rows.clear();
    selected.clear();
    selectAll.checked = false;
    renderBulk();
    replace(list, loading());
    try {
      replace(list);
      await page();
    } catch (e) {
      replace(list, errorBox(e));
    }
  };

  more.addEventListener('click', () => void page().catch((e) => toast(String(e), 'error')));
  void reload();
  const unsub = live.subscribe('alert', (a) => upsert(a, true));
  return () => {
    stopped = true;
    unsub();
  };
};
