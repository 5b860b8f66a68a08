// Console benchmark in Debian's Chromium: first paint and time-to-usable of
// the overview and the device list, filtering and sorting the list, scrolling
// it, time to render the map with every device, and the frame rate while
// panning the map.
//
// Against a running demo:
//   SIMGUARD_URL=http://127.0.0.1:8080 SIMGUARD_TOKEN=... node bench/pages.mjs
// Or let it start one (100,000 devices by default):
//   SIMGUARD_BIN=../target/release/simguard node bench/pages.mjs [devices]
// RUNS (default 5), SPEED (the demo's simulated time factor, default 60),
// WARMUP (seconds to let the fleet report before measuring, default 0).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { FLAGS } from '../tests/lib.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

async function startDemo(bin, devices) {
  const data = mkdtempSync(join(tmpdir(), 'sg-bench-'));
  const token = `bench-${Date.now()}`;
  // Only the overrides below: the server reads every other SIMGUARD_* as
  // configuration (and SIMGUARD_BIN is not one).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIMGUARD_')));
  const env = {
    ...inherited,
    SIMGUARD_DATA_DIR: join(data, 'data'),
    SIMGUARD_ADMIN_TOKEN: token,
    SIMGUARD_HTTP__BIND: '127.0.0.1:0',
    SIMGUARD_RADIUS__ACCOUNTING_BIND: '127.0.0.1:0',
    SIMGUARD_RADIUS__AUTH_BIND: '127.0.0.1:0',
    SIMGUARD_FLOWS__IPFIX_BIND: '127.0.0.1:0',
    SIMGUARD_FLOWS__NETFLOW_BIND: '127.0.0.1:0',
    SIMGUARD_RADIUS__COA__SOURCE: '127.0.0.1:0',
  };
  const child = spawn(bin, ['demo', '--devices', String(devices), '--speed', process.env.SPEED ?? '60'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the demo printed no API line within 10 minutes')), 600_000);
    rl.on('line', (l) => {
      const m = /^\s*API\s+(http:\/\/[^/\s]+)/.exec(l);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (c) => reject(new Error(`the demo exited (${c})`)));
  });
  rl.on('line', () => undefined);
  return {
    url,
    token,
    stop: () => {
      child.kill('SIGINT');
      setTimeout(() => rmSync(data, { recursive: true, force: true }), 3000);
    },
  };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const fmt = (ms) => `${ms.toFixed(0)} ms`;

async function timings(page, url, readySelector) {
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector(readySelector, { timeout: 60_000 });
  return page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN;
    return { fcp, usable: performance.now() };
  });
}

async function main() {
  let demo = null;
  let base = process.env.SIMGUARD_URL;
  let token = process.env.SIMGUARD_TOKEN;
  const devices = Number(process.argv[2] ?? 100_000);
  if (!base) {
    const bin = process.env.SIMGUARD_BIN;
    if (!bin) throw new Error('set SIMGUARD_URL and SIMGUARD_TOKEN, or SIMGUARD_BIN to start a demo');
    console.log(`starting ${bin} demo --devices ${devices} …`);
    demo = await startDemo(bin, devices);
    base = demo.url;
    token = demo.token;
  }
  const api = async (p) => (await fetch(base + p, { headers: { authorization: `Bearer ${token}` } })).json();
  // Let the fleet come up: wait until every device is provisioned.
  for (let i = 0; i < 600; i++) {
    const s = await api('/api/v1/status');
    if (s.devices >= devices * 0.99) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  // WARMUP seconds more, so that more of the fleet has reported (and has a
  // position on the map).
  const warm = Number(process.env.WARMUP ?? 0);
  if (warm > 0) {
    console.log(`letting the fleet run for ${warm} s …`);
    await new Promise((r) => setTimeout(r, warm * 1000));
  }
  const st = await api('/api/v1/status');
  console.log(`server ${base}: ${st.devices} devices`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${base}/login`);
  await page.click('.token-login summary');
  await page.fill('#login-token', token);
  await page.click('.token-login button[type=submit]');
  await page.waitForSelector('header.top nav');

  const r = { overview: [], devices: [], map: [], filter: [], sort: [], scroll: [], pan: [] };
  for (let i = 0; i < RUNS; i++) {
    r.overview.push(await timings(page, `${base}/`, '[data-page=overview][data-loaded=true]'));
    r.devices.push(await timings(page, `${base}/devices`, '[data-page=devices][data-loaded=true] .vt-rows .vt-row'));
    // Search, then sort by usage (descending), on all rows.
    await page.fill('input[name=q]', '90170000001');
    await page.waitForFunction(() => document.querySelector('input[name=q]')?.value && location.search.includes('q='));
    r.filter.push(Number(await page.getAttribute('[data-page=devices]', 'data-filter-ms')));
    await page.fill('input[name=q]', '');
    await page.waitForFunction(() => !location.search.includes('q='));
    await page.click('button[data-sort=usage]');
    await page.waitForFunction(() => location.search.includes('sort=usage'));
    r.sort.push(Number(await page.getAttribute('[data-page=devices]', 'data-filter-ms')));
    // Scroll the list for two seconds: frame intervals.
    r.scroll.push(
      await page.evaluate(async () => {
        const body = document.querySelector('.vt-body');
        const page = document.querySelector('[data-page=devices]');
        const frames = [];
        const costs = [];
        let last = performance.now();
        const end = last + 2000;
        await new Promise((done) => {
          const step = (t) => {
            frames.push(t - last);
            costs.push(Number(page.dataset.renderMs ?? 0));
            last = t;
            body.scrollTop += 900;
            if (t < end) requestAnimationFrame(step);
            else done();
          };
          requestAnimationFrame(step);
        });
        frames.sort((a, b) => a - b);
        costs.sort((a, b) => a - b);
        return {
          fps: 1000 / (frames.reduce((a, b) => a + b, 0) / frames.length),
          p95: frames[Math.floor(frames.length * 0.95)],
          scriptP50: costs[Math.floor(costs.length / 2)],
          scriptP95: costs[Math.floor(costs.length * 0.95)],
        };
      }),
    );
    const m = await timings(page, `${base}/map`, '[data-page=map][data-loaded=true]');
    const { pts, drawnAt } = await page.evaluate(() => ({ pts: window.__simguardMap?.points ?? 0, drawnAt: window.__simguardMap?.drawnAt ?? NaN }));
    r.map.push({ ...m, drawnAt, points: pts });
    // Pan for three seconds at a zoom that shows all of Europe (the fleet's
    // densest part), one pan step per frame: each frame re-clusters every
    // device and redraws the basemap.
    r.pan.push(
      await page.evaluate(async () => {
        const m = window.__simguardMap;
        m.view.fit(450, 280, 620, 400, 64);
        const frames = [];
        const costs = [];
        let last = performance.now();
        const end = last + 3000;
        let dir = 1;
        await new Promise((done) => {
          const step = (t) => {
            frames.push(t - last);
            costs.push(m.view.lastFrameMs);
            last = t;
            if (frames.length % 60 === 0) dir = -dir;
            m.view.pan(6 * dir, 3 * dir);
            if (t < end) requestAnimationFrame(step);
            else done();
          };
          requestAnimationFrame(step);
        });
        frames.shift();
        frames.sort((a, b) => a - b);
        costs.sort((a, b) => a - b);
        return {
          fps: 1000 / (frames.reduce((a, b) => a + b, 0) / frames.length),
          p95: frames[Math.floor(frames.length * 0.95)],
          drawP50: costs[Math.floor(costs.length / 2)],
          drawP95: costs[Math.floor(costs.length * 0.95)],
        };
      }),
    );
  }
  await browser.close();
  demo?.stop();

  const rows = [
    ['overview: first contentful paint', median(r.overview.map((x) => x.fcp))],
    ['overview: counts shown (usable)', median(r.overview.map((x) => x.usable))],
    ['devices: first contentful paint', median(r.devices.map((x) => x.fcp))],
    ['devices: all rows loaded, first rows shown', median(r.devices.map((x) => x.usable))],
    ['devices: search over all rows', median(r.filter)],
    ['devices: sort all rows by usage', median(r.sort)],
    ['map: every device drawn (from navigation)', median(r.map.map((x) => x.drawnAt))],
    ['map: drawn and the page answering', median(r.map.map((x) => x.usable))],
  ];
  console.log(`\nsimguard console, ${st.devices} devices, Chromium headless, median of ${RUNS} runs`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(46)} ${fmt(v)}`);
  console.log(
    `  ${'devices: scrolling'.padEnd(46)} ${median(r.scroll.map((x) => x.fps)).toFixed(0)} fps (p95 frame ${median(r.scroll.map((x) => x.p95)).toFixed(1)} ms; rows rewritten in p50 ${median(r.scroll.map((x) => x.scriptP50)).toFixed(1)} ms, p95 ${median(r.scroll.map((x) => x.scriptP95)).toFixed(1)} ms)`,
  );
  const load = (await import('node:os')).loadavg();
  console.log(`  machine load average during the run: ${load.map((x) => x.toFixed(1)).join(' ')} (2 vCPUs, shared)`);
  console.log(
    `  ${'map: panning'.padEnd(46)} ${median(r.pan.map((x) => x.fps)).toFixed(0)} fps (p95 frame ${median(r.pan.map((x) => x.p95)).toFixed(1)} ms; draw p50 ${median(r.pan.map((x) => x.drawP50)).toFixed(1)} ms, p95 ${median(r.pan.map((x) => x.drawP95)).toFixed(1)} ms)`,
  );
  console.log(`  map points: ${r.map[0]?.points}`);
  console.log(JSON.stringify({ devices: st.devices, runs: RUNS, ...Object.fromEntries(rows), raw: r }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
