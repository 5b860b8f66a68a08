// Settings: notification channels and subscriptions, users, API keys. Each
// section reads its route and says so plainly when the server has none yet
// (404) or the signed-in user may not see it (403). Channels come from the
// server's configuration only (they carry credentials); subscriptions from
// the configuration are read-only here, those made here can be changed.

import { ApiError, canWrite, del, get, isAdmin, me, post, put } from '../api';
import { h, replace, type Child } from '../dom';
import { num, time } from '../format';
import type { PageFn } from '../router';
import type { Group, Tenant } from '../types';
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


const SEVERITIES = ['warning', 'minor', 'major', 'critical'];

/** A channel as /api/v1/notify/channels lists it (a tenant's user gets name and type only). */
interface ChannelRow {
  name: string;
  type: string;
  endpoint?: string;
}

/** Where configuring a channel is explained, for when there is none. */
function channelHint(): HTMLElement {
  return h(
    'div',
    { class: 'muted', dataset: { hint: 'channels' } },
    h('p', null, 'No notification channels are configured. Channels hold credentials and endpoints, so they are set in the server\u2019s configuration, not here. Add one, e.g.:'),
    h('pre', { class: 'mono small' }, '[notify.channels.soc]\ntype = "webhook"            # or "email", "sms"\nurl = "https://siem.example.com/hooks/simguard"\nsecret = "whsec_..."          # Standard Webhooks key'),
    h('p', null, 'then restart simguard (`simguard configfile` prints every option). Subscriptions can then be added here.'),
  );
}

function sevSelect(name: string, value: string): HTMLSelectElement {
  return h('select', { name }, SEVERITIES.map((x) => h('option', { value: x, selected: x === value ? true : undefined }, x)));
}

const splitList = (v: FormDataEntryValue | null): string[] =>
  String(v ?? '')
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Marks the inputs the API named (`recipients[1]` is the recipients field). */
function markFields(form: HTMLFormElement, e: unknown): void {
  form.querySelectorAll('.field-error').forEach((x) => x.remove());
  form.querySelectorAll('[aria-invalid]').forEach((x) => x.removeAttribute('aria-invalid'));
  if (!(e instanceof ApiError)) return;
  let first: HTMLElement | null = null;
  for (const d of e.details) {
    const name = (d.field ?? '').replace(/\[\d+\]$/, '');
    const input = form.querySelector<HTMLElement>(`[name="${CSS.escape(name)}"]`);
    if (!input) continue;
    const id = `err-${name}`;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    input.insertAdjacentElement('afterend', h('small', { class: 'field-error', id, role: 'alert', dataset: { field: d.field ?? '' } }, d.message));
    first ??= input;
  }
  first?.focus();
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
      card('Notification channels', h('p', { class: 'muted small' }, 'Set in the server’s configuration ([notify.channels.<name>]): they hold credentials and endpoints.'), channels),
      card(h('span', null, 'Subscriptions ', canWrite() ? h('button', { type: 'button', class: 'small', dataset: { create: 'subscription' }, onclick: () => void editSubscription(null) }, 'Add subscription') : null), subs),
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

  const loadSubs = () =>
    section(subs, '/api/v1/notify/subscriptions', 'subscriptions', (rows) =>
      table(
        ['Subscription', 'Channel', 'Recipients', 'Scope', 'When', 'Quiet hours', 'Cap', ''],
        rows.map((x) => [
          h('span', { dataset: { subscription: String(x.name), source: String(x.source ?? 'config') } }, h('strong', null, String(x.name)), x.source === 'config' ? h('span', { class: 'badge', title: 'Set in the server\u2019s configuration; change it there' }, ' from config') : null, x.problem ? h('span', { class: 'badge bad', title: String(x.problem), role: 'status' }, ' cannot deliver') : null),
          String(x.channel),
          Array.isArray(x.recipients) && x.recipients.length ? x.recipients.join(', ') : '–',
          [x.tenant && `tenant ${x.tenant}`, x.group && `group ${x.group}`].filter(Boolean).join(', ') || 'all',
          `${x.min_severity} or worse${Array.isArray(x.types) && x.types.length ? `, ${x.types.join(', ')}` : ''}${x.on_clear ? ', and when cleared' : ''}`,
          x.quiet_hours ? `${x.quiet_hours} (still ${x.quiet_min_severity}+)` : '–',
          x.cap ? String(x.cap) : '–',
          x.source === 'api' && canWrite()
            ? h(
                'span',
                { class: 'row-actions' },
                h('button', { type: 'button', class: 'small', 'aria-label': `Edit subscription ${x.name}`, onclick: () => void editSubscription(x) }, 'Edit'),
                ' ',
                h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete subscription ${x.name}`, onclick: remove(`/api/v1/notify/subscriptions/${encodeURIComponent(String(x.name))}`, `subscription ${x.name}`, () => void loadSubs()) }, 'Delete'),
              )
            : x.source === 'config'
              ? h('span', { class: 'muted small' }, 'read-only')
              : null,
        ]),
      ),
    );

  let channelRows: ChannelRow[] = [];
  const channelsLoaded = get<ChannelRow[]>('/api/v1/notify/channels').then(
    (c) => (channelRows = Array.isArray(c) ? c : []),
    () => [],
  );

  const editSubscription = async (existing: AnyRow | null) => {
    await channelsLoaded;
    if (!channelRows.length) {
      toast('No notification channel is configured: add one to the server\u2019s configuration first', 'error');
      return;
    }
    const groups = await get<Group[]>('/api/v1/groups').catch(() => [] as Group[]);
    const mine = me()?.tenant;
    const x = existing ?? {};
    const r = await dialog({
      title: existing ? `Edit subscription ${x.name}` : 'Add subscription',
      confirm: existing ? 'Save' : 'Add subscription',
      body: () => [
        field('Name', h('input', { name: 'name', required: true, autocomplete: 'off', pattern: '[^.:]{1,64}', value: x.name ?? '', readonly: existing ? true : undefined }), existing ? 'a name cannot change (it is part of notification ids)' : '1 to 64 characters, no . or :'),
        field('Channel', h('select', { name: 'channel', required: true }, channelRows.map((c) => h('option', { value: c.name, selected: c.name === x.channel ? true : undefined }, `${c.name} (${c.type})`)))),
        field('Recipients', h('textarea', { name: 'recipients', rows: 2, placeholder: 'ops@example.com, +4915112345678' }, Array.isArray(x.recipients) ? x.recipients.join('\n') : ''), 'email addresses or MSISDNs, one per line; none for a webhook'),
        mine ? null : field('Tenant', h('select', { name: 'tenant' }, h('option', { value: '' }, 'every tenant'), tenants.map((t) => h('option', { value: t.id, selected: t.id === x.tenant ? true : undefined }, `${t.name} (${t.id})`)))),
        field(
          'Device group',
          h('select', { name: 'group' }, h('option', { value: '' }, 'every group'), groups.map((g) => h('option', { value: g.id, selected: g.id === x.group ? true : undefined }, `${g.name} (${g.id}${mine ? '' : `, ${g.tenant}`})`))),
        ),
        field('Minimum severity', sevSelect('min_severity', x.min_severity ?? 'warning')),
        field('Alert types', h('input', { name: 'types', autocomplete: 'off', placeholder: 'scanning, silent, rule:block-scanners', value: Array.isArray(x.types) ? x.types.join(', ') : '' }), 'finding types or rule:<id>, comma-separated; empty = every type'),
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'on_clear', checked: x.on_clear === false ? undefined : true }), 'Also notify when the alert clears'),
        field('Quiet hours', h('input', { name: 'quiet_hours', autocomplete: 'off', placeholder: '22:00-07:00', pattern: '\\d{1,2}:\\d{2}-\\d{1,2}:\\d{2}', value: x.quiet_hours ?? '' }), 'HH:MM-HH:MM local time; below the severity next, notifications wait for a digest'),
        field('Still send in quiet hours from', sevSelect('quiet_min_severity', x.quiet_min_severity ?? 'critical')),
        field('UTC offset (minutes)', h('input', { name: 'utc_offset_minutes', type: 'number', min: -720, max: 840, step: 1, value: String(x.utc_offset_minutes ?? 0) })),
        field('Cap', h('input', { name: 'cap', type: 'number', min: 1, step: 1, value: x.cap ? String(x.cap) : '' }), 'at most this many per recipient per cap window; the rest in one digest. Empty: no cap'),
      ],
      submit: async (form) => {
        const fd = new FormData(form);
        const cap = String(fd.get('cap') ?? '').trim();
        const body = {
          name: String(fd.get('name') ?? '').trim(),
          channel: fd.get('channel'),
          recipients: splitList(fd.get('recipients')),
          tenant: mine ? mine : fd.get('tenant') || null,
          group: fd.get('group') || null,
          min_severity: fd.get('min_severity'),
          types: splitList(fd.get('types')),
          on_clear: fd.get('on_clear') !== null,
          quiet_hours: String(fd.get('quiet_hours') ?? '').trim() || null,
          quiet_min_severity: fd.get('quiet_min_severity'),
          utc_offset_minutes: Number(fd.get('utc_offset_minutes') || 0),
          cap: cap ? Number(cap) : null,
        };
        try {
          return existing ? await put<AnyRow>(`/api/v1/notify/subscriptions/${encodeURIComponent(String(x.name))}`, body) : await post<AnyRow>('/api/v1/notify/subscriptions', body);
        } catch (e) {
          markFields(form, e);
          throw e;
        }
      },
    });
    if (r !== null) {
      toast(existing ? `Saved subscription ${x.name}` : `Added subscription ${String((r as AnyRow).name ?? '')}`);
      void loadSubs();
    }
  };

  void section(channels, '/api/v1/notify/channels', 'notification channels', (rows) =>
    table(
      ['Channel', 'Health', 'Circuit', 'Pending', 'Retrying', 'Sent', 'Failed', 'Latency p50 / p99'],
      rows.map((c) => [
        h('span', null, h('strong', null, String(c.name)), ` ${c.type ?? ''}`, c.endpoint ? h('div', { class: 'muted small mono' }, String(c.endpoint)) : null),
        c.healthy === undefined ? '–' : c.healthy ? h('span', { class: 'result-ack' }, '✓ healthy') : h('span', { class: 'result-nak' }, '✗ failing'),
        String(c.circuit ?? '–'),
        c.pending === undefined ? '–' : num(c.pending),
        c.retrying === undefined ? '–' : num(c.retrying),
        c.sent === undefined ? '–' : num(c.sent),
        c.failed === undefined ? '–' : num(c.failed),
        c.latency_p50_ms !== null && c.latency_p50_ms !== undefined ? `${Number(c.latency_p50_ms).toFixed(0)} / ${Number(c.latency_p99_ms ?? 0).toFixed(0)} ms` : '–',
      ]),
    ),
  ).then(() => {
    // No channel: say how to configure one instead of a bare "none".
    if (!channels.querySelector('table') && channels.textContent?.startsWith('No notification channels')) replace(channels, channelHint());
  });
  void loadSubs();
  void loadUsers();
  void loadKeys();
  root.dataset.loaded = 'true';
};
