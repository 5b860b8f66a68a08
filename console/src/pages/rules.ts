// Response rules: the list, switching dry-run and enforce, a backtest over
// the recorded journal, and a form to create or edit one.

import { ApiError, canWrite, del, get, post, put } from '../api';
import { h, replace, type Child } from '../dom';
import { bytes, duration, num, time } from '../format';
import { navigate, type PageFn } from '../router';
import type { Backtest, Group, Rule, RuleStep, Tenant } from '../types';
import { SEVERITIES } from '../ui/palette';
import { card, dialog, errorBox, field, loading, toast } from '../ui/widgets';

function triggerText(r: Rule): string {
  const t = r.trigger;
  if ('finding' in t) {
    const types = t.finding.types?.length ? t.finding.types.join(', ') : 'any finding';
    return `${types} at ${t.finding.min_severity ?? 'warning'} or worse`;
  }
  if ('usage' in t) return `usage over ${bytes(t.usage.max_bytes)} per ${t.usage.period}`;
  return `device ${t.connectivity.event.replace(/_/g, ' ')}`;
}

function stepText(s: RuleStep): string {
  let x = s.action;
  if (s.kbps) x += ` ${s.kbps} kbit/s`;
  if (s.state) x += ` → ${s.state}`;
  if (s.expire_secs) x += ` for ${duration(s.expire_secs)}`;
  return x;
}

function scopeText(r: Rule): string {
  const s = r.scope;
  const parts = [s?.tenant && `tenant ${s.tenant}`, s?.group && `group ${s.group}`, s?.imsi && `IMSI ${s.imsi}`].filter(Boolean);
  return parts.length ? parts.join(', ') : 'every device you see';
}

function modeBadge(mode: string | null | undefined): HTMLElement {
  const m = mode ?? 'dry-run';
  return h('span', { class: `badge mode mode-${m}`, dataset: { mode: m } }, m === 'enforce' ? '⚡ enforce' : '◌ dry-run');
}

export function backtestView(b: Backtest): HTMLElement {
  const kv = (o: Record<string, number>) =>
    Object.entries(o).length ? Object.entries(o).map(([k, v]) => `${k}: ${num(v)}`).join(' · ') : 'none';
  return h(
    'div',
    { class: 'backtest', dataset: { actions: String(b.total_actions) } },
    h(
      'p',
      null,
      h('strong', null, `${num(b.total_actions)} actions on ${num(b.device_count)} devices`),
      ` from ${time(b.from)} to ${time(b.until)} (${num(b.replayed)} journal records replayed; nothing was written or sent).`,
    ),
    h('p', null, `By action: ${kv(b.by_action)}. By escalation step: ${kv(Object.fromEntries(Object.entries(b.by_step).map(([k, v]) => [`step ${Number(k) + 1}`, v])))}.`),
    b.devices.length
      ? h(
          'details',
          { open: b.devices.length <= 20 ? true : undefined },
          h('summary', null, `Devices (${num(b.devices.length)}${b.truncated ? ', cut' : ''})`),
          h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              null,
              h('thead', null, h('tr', null, ['IMSI', 'Group', 'Actions', 'First', 'Last', 'Highest step'].map((x) => h('th', { scope: 'col' }, x)))),
              h(
                'tbody',
                null,
                b.devices.slice(0, 200).map((d) =>
                  h('tr', null, h('td', null, h('a', { href: `/devices/${d.imsi}` }, d.imsi)), h('td', null, d.group ?? '–'), h('td', null, num(d.actions)), h('td', null, time(d.first)), h('td', null, time(d.last)), h('td', null, String(d.max_step + 1))),
                ),
              ),
            ),
          ),
        )
      : null,
    b.actions.length
      ? h(
          'details',
          null,
          h('summary', null, `Actions (${num(b.actions.length)})`),
          h(
            'ol',
            { class: 'audit' },
            b.actions.slice(0, 200).map((a) =>
              h('li', null, h('time', { class: 'muted small' }, time(a.time)), h('div', null, h('strong', null, a.action), ` ${a.imsi} · step ${a.step + 1}${a.would_set ? ` · would set ${a.would_set}` : ''}`, h('div', { class: 'reason' }, a.reason))),
            ),
          ),
        )
      : null,
  );
}

async function runBacktest(path: string, body: unknown, out: HTMLElement, since: string): Promise<void> {
  replace(out, h('p', { class: 'muted', 'aria-busy': 'true' }, 'Replaying the journal…'));
  try {
    const b = await post<Backtest>(`${path}?since=${encodeURIComponent(since)}`, body);
    replace(out, backtestView(b));
  } catch (e) {
    replace(out, errorBox(e));
  }
}

function sinceSelect(): HTMLSelectElement {
  return h(
    'select',
    { name: 'since', 'aria-label': 'Backtest window' },
    h('option', { value: '24h' }, 'last 24 hours'),
    h('option', { value: '7d', selected: true }, 'last 7 days'),
    h('option', { value: '30d' }, 'last 30 days'),
  );
}

export const rulesPage: PageFn = (root) => {
  const body = h('div', null, loading());
  const result = h('div');
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Rules'), canWrite() ? h('a', { class: 'button primary', href: '/rules/new' }, 'New rule') : null),
    body,
    result,
  );
  let stopped = false;

  const setMode = async (r: Rule) => {
    const to = r.mode === 'enforce' ? 'dry-run' : 'enforce';
    const ok = await dialog({
      title: `Switch ${r.name ?? r.id} to ${to}?`,
      confirm: `Switch to ${to}`,
      danger: to === 'enforce',
      body: () =>
        h(
          'p',
          null,
          to === 'enforce'
            ? 'From now on its actions change lifecycles and are sent to the network (CoA / Disconnect). Run a backtest first to see what it would do.'
            : 'From now on it only records what it would do.',
        ),
      submit: () => put(`/api/v1/rules/${encodeURIComponent(r.id)}`, { ...r, mode: to }),
    });
    if (ok) {
      toast(`${r.id}: ${to}`);
      void load();
    }
  };

  const load = async () => {
    try {
      const { items } = await get<{ items: Rule[] }>('/api/v1/rules');
      if (stopped) return;
      root.dataset.loaded = 'true';
      if (!items.length) {
        replace(body, h('p', { class: 'muted' }, 'No rules yet. A rule turns findings or usage into actions: notify, throttle, quarantine or block.'));
        return;
      }
      replace(
        body,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'rules' },
            h('thead', null, h('tr', null, ['Rule', 'Mode', 'When', 'Then', 'Scope', ''].map((x) => h('th', { scope: 'col' }, x)))),
            h(
              'tbody',
              null,
              items.map((r) => {
                const since = sinceSelect();
                return h(
                  'tr',
                  { dataset: { rule: r.id } },
                  h('td', null, h('a', { href: `/rules/${encodeURIComponent(r.id)}` }, r.name ?? r.id), r.enabled === false ? h('span', { class: 'badge' }, 'disabled') : null, h('div', { class: 'muted small mono' }, r.id)),
                  h('td', null, modeBadge(r.mode)),
                  h('td', null, triggerText(r)),
                  h('td', null, h('ol', { class: 'steps' }, r.steps.map((s) => h('li', null, stepText(s))))),
                  h('td', null, scopeText(r)),
                  h(
                    'td',
                    { class: 'row-actions' },
                    canWrite() ? h('button', { type: 'button', class: 'small', dataset: { toggleMode: r.id }, onclick: () => void setMode(r) }, r.mode === 'enforce' ? 'Switch to dry-run' : 'Switch to enforce') : null,
                    since,
                    h(
                      'button',
                      {
                        type: 'button',
                        class: 'small',
                        dataset: { backtest: r.id },
                        onclick: () => {
                          replace(result);
                          const out = h('div');
                          result.append(card(`Backtest of ${r.name ?? r.id}`, out));
                          void runBacktest(`/api/v1/rules/${encodeURIComponent(r.id)}/backtest`, {}, out, since.value);
                          result.scrollIntoView({ behavior: 'smooth', block: 'start' });
                        },
                      },
                      'Backtest',
                    ),
                  ),
                );
              }),
            ),
          ),
        ),
      );
    } catch (e) {
      if (!stopped) replace(body, errorBox(e));
    }
  };
  void load();
  return () => {
    stopped = true;
  };
};

// ---- the form ----

const STEP_ACTIONS = ['notify', 'throttle', 'quarantine', 'block', 'set_lifecycle'];
const EVENTS = ['came_online', 'went_offline', 'country_changed', 'imei_changed'];
const LIFECYCLES = ['active', 'throttled', 'quarantined', 'blocked', 'retired'];

function options(values: string[], selected: string | null | undefined, blank?: string): HTMLOptionElement[] {
  return [
    ...(blank !== undefined ? [h('option', { value: '' }, blank)] : []),
    ...values.map((v) => h('option', { value: v, selected: v === selected ? true : undefined }, v.replace(/_/g, ' '))),
  ];
}

export const ruleEditPage: PageFn = (root, ctx) => {
  const editing = ctx.params.id ?? null;
  const form = h('form', { class: 'rule-form', novalidate: true });
  const out = h('div');
  const problems = h('div', { role: 'alert' });
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '/rules' }, '← Rules')),
    h('div', { class: 'page-head' }, h('h1', null, editing ? `Rule ${editing}` : 'New rule')),
    h('div', null, loading()),
  );
  let stopped = false;

  const build = (r: Rule, types: string[], tenants: Tenant[], groups: Group[]) => {
    const t = r.trigger;
    const kind = 'finding' in t ? 'finding' : 'usage' in t ? 'usage' : 'connectivity';
    const id = h('input', { name: 'id', required: true, pattern: '[a-z0-9_-]{1,64}', value: r.id, readonly: editing ? true : undefined });
    const name = h('input', { name: 'name', value: r.name ?? '' });
    const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: r.enabled !== false });
    const mode = h('select', { name: 'mode' }, options(['dry-run', 'enforce'], r.mode ?? 'dry-run'));
    const tenant = h('select', { name: 'scope.tenant' }, options(tenants.map((x) => x.id), r.scope?.tenant, 'any'));
    const group = h('select', { name: 'scope.group' }, options(groups.map((x) => x.id), r.scope?.group, 'any'));
    const imsi = h('input', { name: 'scope.imsi', inputmode: 'numeric', value: r.scope?.imsi ?? '', placeholder: 'any' });
    const trig = h('select', { name: 'trigger' }, options(['finding', 'usage', 'connectivity'], kind));
    const ft = 'finding' in t ? t.finding : { types: [], min_severity: 'warning' };
    const typeBoxes = types.map((x) =>
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'types', value: x, checked: ft.types?.includes(x) }), ` ${x.replace(/_/g, ' ')}`),
    );
    const minSev = h('select', { name: 'min_severity' }, options(SEVERITIES, ft.min_severity ?? 'warning'));
    const ut = 'usage' in t ? t.usage : { period: 'day', max_bytes: 10_000_000 };
    const period = h('select', { name: 'period' }, options(['day', 'month'], ut.period));
    const maxBytes = h('input', { name: 'max_bytes', type: 'number', min: 1, value: String(ut.max_bytes) });
    const ev = h('select', { name: 'event' }, options(EVENTS, 'connectivity' in t ? t.connectivity.event : 'went_offline'));
    const cooldown = h('input', { name: 'cooldown_secs', type: 'number', min: 0, value: String(r.cooldown_secs ?? 600) });
    const window_ = h('input', { name: 'escalation_window_secs', type: 'number', min: 0, value: String(r.escalation_window_secs ?? 86400) });
    const parts = {
      finding: h('fieldset', null, h('legend', null, 'Finding types (none ticked: any)'), h('div', { class: 'checks' }, typeBoxes), field('At least', minSev)),
      usage: h('fieldset', null, h('legend', null, 'Usage'), field('Per', period), field('More than (bytes)', maxBytes)),
      connectivity: h('fieldset', null, h('legend', null, 'Connectivity'), field('When the device', ev)),
    };
    const showTrigger = () => {
      for (const [k, el] of Object.entries(parts)) el.hidden = k !== trig.value;
    };
    trig.addEventListener('change', showTrigger);
    showTrigger();

    const steps = h('ol', { class: 'step-list' });
    const addStep = (s: RuleStep) => {
      const action = h('select', { name: 'action', 'aria-label': 'Action' }, options(STEP_ACTIONS, s.action));
      const kbps = h('input', { name: 'kbps', type: 'number', min: 1, value: s.kbps ? String(s.kbps) : '', placeholder: 'kbit/s', 'aria-label': 'Rate, kbit/s' });
      const state = h('select', { name: 'state', 'aria-label': 'Lifecycle state' }, options(LIFECYCLES, s.state, '–'));
      const expire = h('input', { name: 'expire_secs', type: 'number', min: 0, value: s.expire_secs ? String(s.expire_secs) : '', placeholder: 'undo after (s)', 'aria-label': 'Undo after, seconds' });
      const sync = () => {
        kbps.hidden = action.value !== 'throttle';
        state.hidden = action.value !== 'set_lifecycle';
        expire.hidden = !['throttle', 'quarantine', 'block'].includes(action.value);
      };
      action.addEventListener('change', sync);
      sync();
      const li = h(
        'li',
        { class: 'step' },
        action,
        kbps,
        state,
        expire,
        h('button', { type: 'button', class: 'small', onclick: () => steps.children.length > 1 && li.remove() }, 'Remove'),
      );
      steps.append(li);
    };
    (r.steps.length ? r.steps : [{ action: 'notify' }]).forEach(addStep);

    const collect = (): Rule => {
      const num_ = (v: string) => (v.trim() === '' ? undefined : Number(v));
      const trigger: Rule['trigger'] =
        trig.value === 'finding'
          ? { finding: { types: typeBoxes.map((l) => l.querySelector('input') as HTMLInputElement).filter((b) => b.checked).map((b) => b.value), min_severity: minSev.value } }
          : trig.value === 'usage'
            ? { usage: { period: period.value, max_bytes: Number(maxBytes.value) } }
            : { connectivity: { event: ev.value } };
      const st: RuleStep[] = [...steps.children].map((li) => {
        const g = (n: string) => (li.querySelector(`[name=${n}]`) as HTMLInputElement).value;
        const s: RuleStep = { action: g('action') };
        if (s.action === 'throttle') s.kbps = num_(g('kbps'));
        if (s.action === 'set_lifecycle') s.state = g('state') || undefined;
        if (['throttle', 'quarantine', 'block'].includes(s.action)) s.expire_secs = num_(g('expire_secs'));
        return s;
      });
      const scope = { tenant: tenant.value || null, group: group.value || null, imsi: imsi.value.trim() || null };
      return {
        id: id.value.trim(),
        name: name.value.trim() || null,
        enabled: enabled.checked,
        mode: mode.value,
        scope: scope.tenant || scope.group || scope.imsi ? scope : null,
        trigger,
        steps: st,
        cooldown_secs: num_(cooldown.value) ?? null,
        escalation_window_secs: num_(window_.value) ?? null,
      };
    };

    const showProblems = (e: unknown) => {
      if (e instanceof ApiError && e.details.length) {
        replace(problems, h('div', { class: 'error' }, h('p', null, e.message), h('ul', null, e.details.map((d) => h('li', null, h('code', null, d.field ?? ''), ` ${d.message}`)))));
      } else replace(problems, errorBox(e));
    };

    const since = sinceSelect();
    replace(
      form,
      h('div', { class: 'form-grid' }, field('Id', id, 'a-z, 0-9, - and _'), field('Name', name), h('label', { class: 'check' }, enabled, ' Enabled'), field('Mode', mode, 'dry-run records what it would do; enforce acts')),
      h('fieldset', null, h('legend', null, 'Scope'), h('div', { class: 'form-grid' }, field('Tenant', tenant), field('Group', group), field('IMSI', imsi))),
      h('fieldset', null, h('legend', null, 'When'), field('Trigger', trig), parts.finding, parts.usage, parts.connectivity),
      h(
        'fieldset',
        null,
        h('legend', null, 'Then (the n-th firing within the escalation window takes step n)'),
        steps,
        h('button', { type: 'button', class: 'small', onclick: () => steps.children.length < 8 && addStep({ action: 'block' }) }, 'Add step'),
      ),
      h('div', { class: 'form-grid' }, field('Cooldown per device (s)', cooldown), field('Escalation window (s)', window_)),
      problems,
      h(
        'div',
        { class: 'form-buttons' },
        canWrite() ? h('button', { type: 'submit', class: 'primary' }, 'Save') : null,
        since,
        h(
          'button',
          {
            type: 'button',
            dataset: { backtestDraft: '1' },
            onclick: () => {
              replace(problems);
              void runBacktest('/api/v1/rules/backtest', { ...collect(), id: collect().id || 'draft' }, out, since.value);
            },
          },
          'Backtest this rule',
        ),
        editing && canWrite()
          ? h(
              'button',
              {
                type: 'button',
                class: 'danger',
                onclick: async () => {
                  const ok = await dialog({
                    title: `Delete rule ${editing}?`,
                    confirm: 'Delete',
                    danger: true,
                    body: () => h('p', null, 'Actions it took stay in the audit trail; expiries it armed still run.'),
                    submit: () => del(`/api/v1/rules/${encodeURIComponent(editing)}`),
                  });
                  if (ok !== null) {
                    toast(`Deleted ${editing}`);
                    navigate('/rules');
                  }
                },
              },
              'Delete',
            )
          : null,
      ),
    );
    form.onsubmit = async (e) => {
      e.preventDefault();
      replace(problems);
      const rule = collect();
      try {
        if (editing) await put(`/api/v1/rules/${encodeURIComponent(editing)}`, rule);
        else await post('/api/v1/rules', rule);
        toast(`Saved ${rule.id}`);
        navigate('/rules');
      } catch (x) {
        showProblems(x);
      }
    };
  };

  const load = async () => {
    try {
      const [rule, summary, tenants, groups] = await Promise.all([
        editing ? get<Rule>(`/api/v1/rules/${encodeURIComponent(editing)}`) : Promise.resolve(null),
        get<{ by_type: Record<string, number> }>('/api/v1/findings/summary'),
        get<Tenant[]>('/api/v1/tenants'),
        get<Group[]>('/api/v1/groups'),
      ]);
      if (stopped) return;
      const r: Rule = rule ?? {
        id: '',
        name: '',
        enabled: true,
        mode: 'dry-run',
        trigger: { finding: { types: [], min_severity: 'major' } },
        steps: [{ action: 'notify' }],
      };
      build(r, Object.keys(summary.by_type), tenants, groups);
      const holder = root.lastElementChild as HTMLElement;
      replace(holder, form, card('Backtest', out) as Child);
      root.dataset.loaded = 'true';
    } catch (e) {
      if (!stopped) replace(root.lastElementChild as HTMLElement, errorBox(e));
    }
  };
  void load();
  return () => {
    stopped = true;
  };
};
