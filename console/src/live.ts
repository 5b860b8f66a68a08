// The live stream (GET /api/v1/events, server-sent events), read with fetch
// rather than EventSource: EventSource cannot send the bearer token of an
// API-token sign-in. Reconnects with back-off and resumes after the last
// finding it saw (Last-Event-ID), so a dropped connection loses nothing the
// server still has. Alerts, actions and their results are not resumed:
// pages that show them reload them from the API.

import { authHeaders } from './api';
import type { Alert, AuditAction, Finding, LiveActionResult } from './types';

export type LiveState = 'connecting' | 'live' | 'offline';

type Events = {
  finding: Finding;
  alert: Alert;
  action: AuditAction;
  action_result: LiveActionResult;
  lagged: { missed: number; reason: string };
  state: LiveState;
};

type Listener<K extends keyof Events> = (v: Events[K]) => void;

const listeners: { [K in keyof Events]: Set<Listener<K>> } = {
  finding: new Set(),
  alert: new Set(),
  action: new Set(),
  action_result: new Set(),
  lagged: new Set(),
  state: new Set(),
};

let state: LiveState = 'offline';
let lastId: string | null = null;
let abort: AbortController | null = null;
let retry = 0;
let timer: number | undefined;

export function liveState(): LiveState {
  return state;
}

export function subscribe<K extends keyof Events>(kind: K, fn: Listener<K>): () => void {
  listeners[kind].add(fn);
  return () => listeners[kind].delete(fn);
}

function emit<K extends keyof Events>(kind: K, v: Events[K]): void {
  for (const f of listeners[kind]) {
    try {
      f(v);
    } catch (e) {
      console.error('live listener failed', e);
    }
  }
}

function setState(s: LiveState): void {
  if (s !== state) {
    state = s;
    emit('state', s);
  }
}

function dispatch(event: string, data: string, id: string | null): void {
  if (id) lastId = id;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return;
  }
  if (event === 'ready') setState('live');
  else if (event === 'finding') emit('finding', v as Finding);
  else if (event === 'alert') emit('alert', v as Alert);
  // Actions and results carry no id: missed ones are read from the audit
  // trail (the device page reloads it), not resumed.
  else if (event === 'action') emit('action', v as AuditAction);
  else if (event === 'action_result') emit('action_result', v as LiveActionResult);
  else if (event === 'lagged') emit('lagged', v as Events['lagged']);
  // Other event types are newer than this console: ignored, as SSE says.
}

async function run(signal: AbortSignal): Promise<void> {
  const h = authHeaders();
  h.set('accept', 'text/event-stream');
  if (lastId) h.set('last-event-id', lastId);
  const r = await fetch('/api/v1/events', { headers: h, credentials: 'same-origin', signal });
  if (!r.ok || !r.body) throw new Error(`stream answered ${r.status}`);
  retry = 0;
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  let id: string | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) dispatch(event, data.join('\n'), id);
        event = 'message';
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? '' : line.slice(c + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') event = val;
      else if (field === 'data') data.push(val);
      else if (field === 'id') id = val;
    }
  }
}

export function start(): void {
  if (abort) return;
  const ctl = new AbortController();
  abort = ctl;
  const loop = async () => {
    setState('connecting');
    try {
      await run(ctl.signal);
    } catch {
      // Reconnect below, unless stopped.
    }
    if (ctl.signal.aborted) return;
    setState('offline');
    retry = Math.min(retry + 1, 6);
    timer = window.setTimeout(loop, 500 * 2 ** retry);
  };
  void loop();
}

export function stop(): void {
  abort?.abort();
  abort = null;
  window.clearTimeout(timer);
  setState('offline');
}
