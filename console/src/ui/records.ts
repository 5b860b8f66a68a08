// How findings (with their evidence) and audit entries (with the network's
// answers) read, wherever they are listed.

import { h, type Child } from '../dom';
import { bytes, num, time } from '../format';
import type { AuditAction, Finding } from '../types';
import { severityBadge } from './widgets';

export function protoName(p: number): string {
  return p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 1 ? 'ICMP' : String(p);
}

export function table(head: string[], rows: Child[][], caption?: string): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      caption ? h('caption', null, caption) : null,
      h('thead', null, h('tr', null, head.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))),
    ),
  );
}

export function evidence(f: Finding): HTMLElement {
  const e = f.evidence;
  return h(
    'div',
    { class: 'evidence' },
    h('p', null, h('strong', null, 'Held to: '), e.baseline || '–', ` · confidence ${Math.round(f.confidence * 100)}%`),
    e.facts.length
      ? table(
          ['', 'Observed', 'Expected'],
          e.facts.map((x) => [x.name.replace(/_/g, ' '), h('strong', null, x.observed), x.expected ?? '–']),
        )
      : null,
    e.records.length
      ? h(
          'details',
          null,
          h('summary', null, `${e.records.length} records behind it`),
          table(['Time', 'What', 'Detail', 'Journal seq'], e.records.map((r) => [time(r.time), r.what, r.detail, String(r.seq)])),
        )
      : null,
    e.flows.length
      ? h(
          'details',
          null,
          h('summary', null, `${e.flows.length} sample flows`),
          table(
            ['Start', 'From', 'To', 'Proto', 'Bytes', 'Packets'],
            e.flows.map((x) => [time(x.start), `${x.src}:${x.src_port}`, `${x.dst}:${x.dst_port}`, protoName(x.proto), bytes(x.bytes), num(x.packets)]),
          ),
        )
      : null,
  );
}

export function findingRow(f: Finding, showDevice = false): HTMLElement {
  return h(
    'li',
    { class: 'finding', dataset: { finding: f.id } },
    h(
      'details',
      null,
      h(
        'summary',
        null,
        severityBadge(f.severity),
        h('strong', null, ` ${f.type.replace(/_/g, ' ')} `),
        showDevice && f.imsi ? h('a', { href: `/devices/${f.imsi}` }, f.imsi) : null,
        h('span', null, ` ${f.summary} `),
        h('time', { class: 'muted small', datetime: f.time }, time(f.time)),
      ),
      evidence(f),
    ),
  );
}

export function auditItem(a: AuditAction): HTMLElement {
  const results = a.results.length
    ? h(
        'ul',
        { class: 'results' },
        a.results.map((r) =>
          h(
            'li',
            { dataset: { result: r.result } },
            h('span', { class: `result result-${r.result}` }, r.result === 'ack' ? '✓ ' : r.result === 'nak' || r.result === 'timeout' || r.result === 'error' ? '✗ ' : '• ', r.result),
            ` ${r.detail} · ${time(r.time)}`,
            r.sent.length ? h('div', { class: 'muted small mono' }, r.sent.join(' | ')) : null,
          ),
        ),
      )
    : a.enforce && a.mode === 'enforce'
      ? h('p', { class: 'muted small' }, 'Waiting for the network’s answer…')
      : null;
  return h(
    'li',
    { class: 'audit-item', dataset: { action: a.action, actionId: a.id } },
    h('time', { class: 'muted small', datetime: a.time }, time(a.time)),
    h(
      'div',
      null,
      h('strong', null, a.action),
      a.kbps ? ` ${a.kbps} kbit/s` : '',
      a.mode === 'dry-run' ? h('span', { class: 'badge dry' }, 'dry-run') : null,
      ` by ${a.actor}`,
      a.from !== a.to ? ` · ${a.from ?? '–'} → ${a.to ?? '–'}` : '',
      a.expires ? ` · until ${time(a.expires)}` : '',
      h('div', { class: 'reason' }, a.reason),
      results,
    ),
  );
}

