// The API client. Two ways in: a user session (an HttpOnly cookie set by
// POST /api/v1/session, plus a CSRF token that every state-changing request
// echoes in `x-csrf-token`), or an API token sent as a bearer token (kept in
// sessionStorage: gone when the tab closes).

import type { Me } from './types';

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: { index?: number; field?: string; message: string }[] = [],
  ) {
    super(message);
  }
}

interface AuthState {
  mode: 'session' | 'token';
  token?: string;
  csrf?: string;
  me: Me;
}

const TOKEN_KEY = 'simguard.token';
const CSRF_KEY = 'simguard.csrf';

let auth: AuthState | null = null;
const unauthorizedListeners = new Set<() => void>();

export function currentAuth(): AuthState | null {
  return auth;
}

export function me(): Me | null {
  return auth?.me ?? null;
}

/** Whether the signed-in user may change things (operator or admin). */
export function canWrite(): boolean {
  const r = auth?.me.role;
  return r === undefined || r === 'admin' || r === 'operator' || r === 'unknown';
}

export function isAdmin(): boolean {
  const r = auth?.me.role;
  return r === 'admin' || r === 'unknown';
}

export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

function headers(method: string, body: unknown): Headers {
  const h = new Headers({ accept: 'application/json' });
  if (body !== undefined) h.set('content-type', 'application/json');
  if (auth?.mode === 'token' && auth.token) h.set('authorization', `Bearer ${auth.token}`);
  if (auth?.mode === 'session' && auth.csrf && method !== 'GET' && method !== 'HEAD') {
    h.set('x-csrf-token', auth.csrf);
  }
  return h;
}

async function errorOf(r: Response): Promise<ApiError> {
  let code = 'http_' + r.status;
  let message = r.statusText || `HTTP ${r.status}`;
  let details: ApiError['details'] = [];
  try {
    const j = await r.json();
    if (j?.error) {
      code = j.error.code ?? code;
      message = j.error.message ?? message;
      details = j.error.details ?? [];
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(r.status, code, message, details);
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { signal?: AbortSignal; quiet401?: boolean } = {},
): Promise<T> {
  const r = await fetch(path, {
    method,
    headers: headers(method, body),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal: opts.signal,
  });
  if (!r.ok) {
    const e = await errorOf(r);
    if (r.status === 401 && auth && !opts.quiet401) {
      auth = null;
      unauthorizedListeners.forEach((f) => f());
    }
    throw e;
  }
  if (r.status === 204) return undefined as T;
  const text = await r.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, undefined, { signal });
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {});
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, body);
export const del = <T>(path: string) => request<T>('DELETE', path);

/** The auth headers for a request made outside `request` (the live stream). */
export function authHeaders(): Headers {
  return headers('GET', undefined);
}

/** `?a=1&b=x` from the set values of `q`. */
export function qs(q: Record<string, string | number | boolean | null | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Every page of a cursor-paged list (at most `max` items). */
export async function all<T>(path: string, max = 10000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page: { items: T[]; next_cursor: string | null } = await get(
      `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

// ---- signing in and out ----

/** Restores a session (cookie) or a token from this tab; null if neither. */
export async function restore(): Promise<Me | null> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    auth = { mode: 'token', token, me: { user: 'API token', role: 'unknown', tenant: null } };
    try {
      auth.me = await whoAmI(true);
      return auth.me;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        auth = null;
        return null;
      }
      throw e;
    }
  }
  try {
    const m = await request<Me>('GET', '/api/v1/session', undefined, { quiet401: true });
    const csrf = m.csrf_token ?? sessionStorage.getItem(CSRF_KEY) ?? undefined;
    auth = { mode: 'session', csrf, me: m };
    return m;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
    throw e;
  }
}

/** Who the token belongs to: the session route when the server has one, else
 *  a read that proves the token works. */
async function whoAmI(token: boolean): Promise<Me> {
  try {
    return await request<Me>('GET', '/api/v1/session', undefined, { quiet401: true });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) {
      if (!(token && e instanceof ApiError && e.status === 401)) throw e;
    }
  }
  await request('GET', '/api/v1/status', undefined, { quiet401: true });
  return { user: 'API token', role: 'unknown', tenant: null };
}

export async function login(username: string, password: string): Promise<Me> {
  const m = await request<Me>('POST', '/api/v1/session', { username, password }, { quiet401: true });
  auth = { mode: 'session', csrf: m.csrf_token, me: m };
  if (m.csrf_token) sessionStorage.setItem(CSRF_KEY, m.csrf_token);
  sessionStorage.removeItem(TOKEN_KEY);
  return m;
}

export async function loginWithToken(token: string): Promise<Me> {
  auth = { mode: 'token', token, me: { user: 'API token', role: 'unknown', tenant: null } };
  try {
    auth.me = await whoAmI(true);
  } catch (e) {
    auth = null;
    throw e;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  return auth.me;
}

export async function logout(): Promise<void> {
  const was = auth;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CSRF_KEY);
  if (was?.mode === 'session') {
    try {
      await request('DELETE', '/api/v1/session', undefined, { quiet401: true });
    } catch {
      // Already gone: signed out either way.
    }
  }
  auth = null;
}
