// Settings: notification channels and subscriptions, users, API keys. Each
// section reads its route and says so plainly when the server has none yet
// (404) or the signed-in user may not see it (403).

import { ApiError, del, get, isAdmin, me, post } from '../api';
import { h, replace, type Child } from '../dom';
import { num, time } from '../format';
import type { PageFn } from '../router';
import type { Tenant } from '../types';
import { card, dialog, errorBox, field, loading, toast } from '../ui/widgets';

type Row = Record<string, unknown>;
/** A row of JSON: each renderer reads the fields its route documents. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRow = Record<string, any>;

function table(head: string[], rows: Child[][]): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', null, h('thead', null, h('tr', null, head.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))),
  );
}

function items(v: unknown): Row[] {
  if (Array.isArray(v)) return v as Row[];
  const o = v as { items?: unknown; channels?: unknown; subscriptions?: unknown; users?: unknown; keys?: unknown } | null;
  const inner = o?.items ?? o?.channels ?? o?.subscriptions ?? o?.users ?? o?.keys;
  return Array.isArray(inner) ? (inner as Row[]) : [];
}

function cellText(k: string, v: unknown): Child {
  if (v === null || v === undefined || v === '') return '–';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number' && /(_ms|time|at)$/.test(k) && v > 1e11) return time(v).slice(0, 16);
  if (typeof v === 'string' && /(_at|time|created|expires|last_used)$/.test(k) && !Number.isNaN(Date.parse(v))) return time(v).slice(0, 16);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return h('code', null, JSON.stringify(v));
  return String(v);
}

/** A table of whatever fields the rows have (secrets are never shown). */
function genericTable(rows: Row[], actions?: (r: Row) => Child): HTMLElement {
  const hidden = /secret|password|hash|token$/i;
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !hidden.test(k)).slice(0, 8);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      h('thead', null, h('tr', null, keys.map((k) => h('th', { scope: 'col' }, k.replace(/_/g, ' '))), actions ? h('th', null, '') : null)),
      h('tbody', null, rows.map((r) => h('tr', null, keys.map((k) => h('td', null, cellText(k, r[k]))), actions ? h('td', null, actions(r)) : null))),
    ),
  );
}

async function section(el: HTMLElement, path: string, what: string, render: (rows: AnyRow[]) => Child): Promise<void> {
  replace(el, loading());
  try {
    const rows = items(await get<unknown>(path));
    replace(el, rows.length ? render(rows) : h('p', { class: 'muted' }, `No ${what} yet.`));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      replace(el, h('p', { class: 'muted', dataset: { missing: path } }, `This server does not offer ${what} yet.`));
    } else if (e instanceof ApiError && e.status === 403) {
      replace(el, h('p', { class: 'muted' }, `Your role may not see ${what}.`));
    } else {
      replace(el, errorBox(e));
    }
  }
}

function roleSelect(): HTMLSelectElement {
  return h('select', { name: 'role', required: true }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)));
}

function tenantSelect(tenants: Tenant[]): HTMLSelectElement {
  const mine = me()?.tenant;
  return h(
    'select',
    { name: 'tenant' },
    mine ? null : h('option', { value: '' }, 'operator-wide (all tenants)'),
    tenants.map((t) => h('option', { value: t.id, selected: t.id === mine ? true : undefined }, `${t.name} (${t.id})`)),
  );
}

export const settingsPage: PageFn = (root) => {
  const channels = h('div');
  const subs = h('div');
  const users = h('div');
  const keys = h('div');
  const m = me();
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Settings'), m ? h('p', { class: 'muted' }, `Signed in as ${m.user}${m.role !== 'unknown' ? ` (${m.role}${m.tenant ? `, tenant ${m.tenant}` : ', operator-wide'})` : ''}`) : null),
    h(
      'div',
      { class: 'grid settings-grid' },
      card('Notification channels', channels),
      card('Subscriptions', subs),
      card(h('span', null, 'Users ', isAdmin() ? h('button', { type: 'button', class: 'small', dataset: { create: 'user' }, onclick: () => void newUser() }, 'Add user') : null), users),
      card(h('span', null, 'API keys ', isAdmin() ? h('button', { type: 'button', class: 'small', dataset: { create: 'apikey' }, onclick: () => void newKey() }, 'Create key') : null), keys),
    ),
  );
  let tenants: Tenant[] = [];
  void get<Tenant[]>('/api/v1/tenants').then((t) => (tenants = t), () => undefined);

  const remove = (path: string, what: string, reload: () => void) => async () => {
    const ok = await dialog({
      title: `Delete ${what}?`,
      confirm: 'Delete',
      danger: true,
      body: () => h('p', null, 'This cannot be undone.'),
      submit: () => del(path),
    });
    if (ok !== null) {
      toast(`Deleted ${what}`);
      reload();
    }
  };

  const loadUsers = () =>
    section(users, '/api/v1/users', 'users', (rows) =>
      genericTable(rows, (r) => {
        const id = String(r.name ?? r.id ?? '');
        return isAdmin() && id ? h('button', { type: 'button', class: 'small danger', onclick: remove(`/api/v1/users/${encodeURIComponent(id)}`, `user ${id}`, () => void loadUsers()) }, 'Delete') : null;
      }),
    );
  const loadKeys = () =>
    section(keys, '/api/v1/apikeys', 'API keys', (rows) =>
      genericTable(rows, (r) => {
        const id = String(r.id ?? r.name ?? '');
        return isAdmin() && id ? h('button', { type: 'button', class: 'small danger', onclick: remove(`/api/v1/apikeys/${encodeURIComponent(id)}`, `API key ${id}`, () => void loadKeys()) }, 'Revoke') : null;
      }),
    );

  const newUser = async () => {
    const r = await dialog({
      title: 'Add user',
      confirm: 'Add user',
      body: () => [
        field('User name', h('input', { name: 'name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9.@_-]{1,64}' }), 'letters, digits and . - _ @'),
        field('Password', h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' }), 'at least 8 characters'),
        field('Role', roleSelect()),
        field('Tenant', tenantSelect(tenants)),
      ],
      submit: (form) => {
        const fd = new FormData(form);
        return post('/api/v1/users', {
          name: fd.get('name'),
          password: fd.get('password'),
          role: fd.get('role'),
          tenant: fd.get('tenant') || null,
        });
      },
    });
    if (r !== null) {
      toast('User added');
      void loadUsers();
    }
  };

  const newKey = async () => {
    const r = await dialog({
      title: 'Create API key',
      confirm: 'Create',
      body: () => [field('Name', h('input', { name: 'name', required: true })), field('Role', roleSelect()), field('Tenant', tenantSelect(tenants))],
      submit: (form) => {
        const fd = new FormData(form);
        return post<Row>('/api/v1/apikeys', { name: fd.get('name'), role: fd.get('role'), tenant: fd.get('tenant') || null });
      },
    });
    if (r === null) return;
    const token = String((r as Row).token ?? (r as { key?: Row }).key?.token ?? '');
    if (token) {
      await dialog({
        title: 'Your new API key',
        confirm: 'Done',
        body: () => [
          h('p', null, 'Copy it now: it is shown only once.'),
          h('input', { readonly: true, value: token, class: 'mono wide', 'aria-label': 'API token', onfocus: (e: FocusEvent) => (e.target as HTMLInputElement).select() }),
        ],
        submit: async () => true,
      });
    }
    void loadKeys();
  };

  void section(channels, '/api/v1/notify/channels', 'notification channels', (rows) =>
    table(
      ['Channel', 'Health', 'Circuit', 'Pending', 'Retrying', 'Sent', 'Failed', 'Latency p50 / p99'],
      rows.map((c) => [
        h('span', null, h('strong', null, String(c.name)), ` ${c.type ?? ''}`, h('div', { class: 'muted small mono' }, String(c.endpoint ?? ''))),
        c.healthy ? h('span', { class: 'result-ack' }, '✓ healthy') : h('span', { class: 'result-nak' }, '✗ failing'),
        String(c.circuit ?? '–'),
        num(c.pending),
        num(c.retrying),
        num(c.sent),
        num(c.failed),
        c.latency_p50_ms !== null && c.latency_p50_ms !== undefined ? `${Number(c.latency_p50_ms).toFixed(0)} / ${Number(c.latency_p99_ms ?? 0).toFixed(0)} ms` : '–',
      ]),
    ),
  );
  void section(subs, '/api/v1/notify/subscriptions', 'subscriptions', (rows) =>
    table(
      ['Subscription', 'Channel', 'Recipients', 'Scope', 'When', 'Quiet hours', 'Cap'],
      rows.map((x) => [
        String(x.name),
        String(x.channel),
        Array.isArray(x.recipients) ? x.recipients.join(', ') : '–',
        [x.tenant && `tenant ${x.tenant}`, x.group && `group ${x.group}`].filter(Boolean).join(', ') || 'all',
        `${x.min_severity} or worse${Array.isArray(x.types) && x.types.length ? `, ${x.types.join(', ')}` : ''}${x.on_clear ? ', and when cleared' : ''}`,
        x.quiet_hours ? `${x.quiet_hours} (still ${x.quiet_min_severity}+)` : '–',
        x.cap ? String(x.cap) : '–',
      ]),
    ),
  );
  void loadUsers();
  void loadKeys();
  root.dataset.loaded = 'true';
};
