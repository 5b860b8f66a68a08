// Small shared pieces: badges, bars, dialogs, toasts, empty states.

import { add, h, type Child } from '../dom';
import { num, pct } from '../format';
import type { Severity, Status } from '../types';
import {
  LIFECYCLE_GLYPH,
  SEVERITY_COLOR,
  SEVERITY_GLYPH,
  SEVERITY_INK,
  STATUS_COLOR,
  STATUS_GLYPH,
  STATUS_LABEL,
} from './palette';

export function statusBadge(st: Status | string | null | undefined): HTMLElement {
  const s = (st ?? 'never_seen') as Status;
  return h(
    'span',
    { class: `badge status status-${s}`, dataset: { status: s } },
    h('span', { class: 'glyph', 'aria-hidden': 'true', style: { color: STATUS_COLOR[s] ?? '#888' } }, STATUS_GLYPH[s] ?? '?'),
    STATUS_LABEL[s] ?? s,
  );
}

export function severityBadge(sev: Severity | string | null | undefined): HTMLElement {
  if (!sev) return h('span', { class: 'muted' }, '–');
  const s = sev as Severity;
  return h(
    'span',
    {
      class: `badge sev sev-${s}`,
      dataset: { severity: s },
      style: { background: SEVERITY_COLOR[s] ?? '#ccc', color: SEVERITY_INK[s] ?? '#000' },
    },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, SEVERITY_GLYPH[s] ?? '?'),
    s,
  );
}

export function lifecycleBadge(l: string | null | undefined): HTMLElement {
  if (!l) return h('span', { class: 'badge lc lc-unprovisioned' }, 'unprovisioned');
  return h(
    'span',
    { class: `badge lc lc-${l}`, dataset: { lifecycle: l } },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, LIFECYCLE_GLYPH[l] ?? '•'),
    l,
  );
}

/** A labelled horizontal bar list: what people compare at a glance. */
export function barList(
  rows: { label: Child; value: number; color?: string; key?: string; href?: string }[],
  opts: { total?: number; name: string; empty?: string } = { name: '' },
): HTMLElement {
  const max = Math.max(1, ...rows.map((r) => r.value));
  if (!rows.length) return h('p', { class: 'muted' }, opts.empty ?? 'Nothing yet.');
  return h(
    'ul',
    { class: 'bars', 'aria-label': opts.name },
    rows.map((r) =>
      h(
        'li',
        { dataset: r.key ? { key: r.key } : {} },
        h('span', { class: 'bar-label' }, r.href ? h('a', { href: r.href }, r.label) : r.label),
        h(
          'span',
          { class: 'bar-track', 'aria-hidden': 'true' },
          h('span', {
            class: 'bar-fill',
            style: { width: `${(100 * r.value) / max}%`, background: r.color ?? '#0072B2' },
          }),
        ),
        h(
          'span',
          { class: 'bar-value', dataset: r.key ? { count: r.key } : {} },
          num(r.value),
          opts.total ? h('small', null, ` ${pct(r.value, opts.total)}`) : null,
        ),
      ),
    ),
  );
}

export function card(title: Child, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', null, title), ...body);
}

export function kv(rows: [string, Child][]): HTMLElement {
  return h(
    'dl',
    { class: 'kv' },
    rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v === null || v === undefined || v === '' ? '–' : v)]),
  );
}

export function errorBox(e: unknown): HTMLElement {
  const msg = e instanceof Error ? e.message : String(e);
  return h('p', { class: 'error', role: 'alert' }, msg);
}

let toastHost: HTMLElement | null = null;

export function toast(text: string, kind: 'ok' | 'error' = 'ok'): void {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastHost);
  }
  const t = h('div', { class: `toast toast-${kind}` }, text);
  toastHost.appendChild(t);
  window.setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/**
 * A modal dialog (native <dialog>: focus is trapped and Escape closes it).
 * `body` builds the content; the promise settles with what `submit` returns,
 * or null when cancelled.
 */
export function dialog<T>(opts: {
  title: string;
  body: (form: HTMLFormElement) => Child;
  confirm: string;
  danger?: boolean;
  submit: (form: HTMLFormElement) => Promise<T>;
}): Promise<T | null> {
  return new Promise((resolve) => {
    const err = h('p', { class: 'error', role: 'alert', hidden: true });
    const ok = h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary' }, opts.confirm);
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const form = h('form', { method: 'dialog', class: 'dialog-form' });
    form.append(h('h2', null, opts.title));
    add(form, opts.body(form));
    form.append(err, h('div', { class: 'dialog-buttons' }, cancel, ok));
    const dlg = h('dialog', { class: 'modal', 'aria-label': opts.title }, form);
    document.body.appendChild(dlg);
    let done = false;
    const finish = (v: T | null) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(null);
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      ok.disabled = true;
      err.hidden = true;
      try {
        finish(await opts.submit(form));
      } catch (x) {
        err.textContent = x instanceof Error ? x.message : String(x);
        err.hidden = false;
        ok.disabled = false;
      }
    });
    dlg.showModal();
    const first = form.querySelector<HTMLElement>('input, textarea, select');
    first?.focus();
  });
}

export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

export function loading(): HTMLElement {
  return h('p', { class: 'muted loading', 'aria-busy': 'true' }, 'Loading…');
}
