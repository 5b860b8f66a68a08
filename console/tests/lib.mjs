// Shared by the browser tests and the benchmark: Debian's Chromium driven by
// playwright-core (never a downloaded browser), the API read with the admin
// token, and signing in through the console's own login page.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const BASE = (process.env.SIMGUARD_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
export const TOKEN = process.env.SIMGUARD_TOKEN ?? '';
export const PASSWORD = process.env.SIMGUARD_DEMO_PASSWORD ?? '';
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = process.env.SCREENSHOT_DIR ?? join(process.cwd(), '..', 'target', 'console-screenshots');

/** The flags TESTING-PEERS.md lists for Debian's Chromium on these machines. */
export const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/** GET/POST on the API with the admin token. */
export async function api(path, { method = 'GET', body, token = TOKEN } = {}) {
  const r = await fetch(BASE + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: r.status, json, text };
}

export async function apiOk(path, opts) {
  const r = await api(path, opts);
  if (r.status < 200 || r.status >= 300) throw new Error(`${opts?.method ?? 'GET'} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** Every item of a cursor-paged list. */
export async function apiAll(path) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await apiOk(`${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** Whether the server has user sign-in (POST /api/v1/session). */
export async function hasUsers() {
  const r = await fetch(`${BASE}/api/v1/session`);
  return r.status !== 404;
}

/**
 * Signs in through the login page: user and password when the server has
 * users and a password is known, else the API token form.
 */
export async function signIn(page, { user = 'admin', password = PASSWORD, token = TOKEN } = {}) {
  await page.goto(`${BASE}/login`);
  if (password && (await hasUsers())) {
    await page.fill('#login-user', user);
    await page.fill('#login-pass', password);
    await page.click('form.login-form button[type=submit]');
  } else {
    await page.click('.token-login summary');
    await page.fill('#login-token', token);
    await page.click('.token-login button[type=submit]');
  }
  await page.waitForSelector('header.top nav a[aria-current=page]', { timeout: 15000 });
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
