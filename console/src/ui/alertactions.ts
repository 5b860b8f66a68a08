// Acknowledge, clear and comment on one alert.

import { canWrite, post } from '../api';
import { h } from '../dom';
import type { Alert } from '../types';
import { dialog, field, toast } from './widgets';

async function comment(a: Alert): Promise<boolean> {
  const r = await dialog({
    title: `Comment on ${a.type.replace(/_/g, ' ')}${a.imsi ? ` (${a.imsi})` : ''}`,
    confirm: 'Add comment',
    body: () => field('Comment', h('textarea', { name: 'text', required: true, rows: 4, maxlength: 4096 })),
    submit: (form) => post(`/api/v1/alerts/${a.id}/comments`, { text: String(new FormData(form).get('text') ?? '') }),
  });
  return r !== null;
}

/** Acknowledge / clear / comment buttons for one alert. */
export function alertActions(a: Alert, changed: () => void): HTMLElement | null {
  if (!canWrite()) return null;
  const run = async (what: 'ack' | 'clear', btn: HTMLButtonElement) => {
    btn.disabled = true;
    try {
      await post(`/api/v1/alerts/${a.id}/${what}`);
      toast(what === 'ack' ? 'Acknowledged' : 'Cleared');
      changed();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
      btn.disabled = false;
    }
  };
  const ack = h('button', { type: 'button', class: 'small', dataset: { alertAct: 'ack' } }, 'Acknowledge');
  ack.addEventListener('click', () => void run('ack', ack));
  const clr = h('button', { type: 'button', class: 'small', dataset: { alertAct: 'clear' } }, 'Clear');
  clr.addEventListener('click', () => void run('clear', clr));
  return h(
    'span',
    { class: 'row-actions' },
    !a.acknowledged ? ack : null,
    a.state === 'active' ? clr : null,
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        dataset: { alertAct: 'comment' },
        onclick: async () => {
          if (await comment(a)) {
            toast('Comment added');
            changed();
          }
        },
      },
      'Comment',
    ),
  );
}

