// How numbers, sizes and times read to people.

const nf = new Intl.NumberFormat('en');

// Event times come from the network (or the simulator, which may run faster
// than the wall clock): "3 min ago" is measured against the engine's clock,
// as last reported by the server, advanced by the wall clock since.
// A simulated fleet's clock runs faster than the wall clock: its rate is
// estimated from the last two readings (1 for a real network).
let engineAt = 0;
let wallAt = 0;
let engineRate = 1;

export function setEngineTime(ms: number | null | undefined): void {
  if (typeof ms !== 'number' || ms <= 0) return;
  const wall = Date.now();
  if (engineAt && wall - wallAt > 500 && ms >= engineAt) {
    engineRate = Math.min(10_000, (ms - engineAt) / (wall - wallAt));
  }
  engineAt = ms;
  wallAt = wall;
}

export function engineNow(): number {
  return engineAt ? engineAt + (Date.now() - wallAt) * engineRate : Date.now();
}

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : nf.format(n);
}

export function pct(part: number, whole: number): string {
  if (!whole) return '0%';
  const p = (100 * part) / whole;
  return p > 0 && p < 0.1 ? '<0.1%' : `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

export function rate(perSec: number): string {
  if (perSec >= 1000) return `${(perSec / 1000).toFixed(1)}k/s`;
  return `${perSec >= 10 ? perSec.toFixed(0) : perSec.toFixed(1)}/s`;
}

/** "3 min ago", relative to `now` (ms). */
export function ago(t: number | string | null | undefined, now = engineNow()): string {
  if (t === null || t === undefined || t === '') return '–';
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (Number.isNaN(ms)) return '–';
  const d = Math.round((now - ms) / 1000);
  const abs = Math.abs(d);
  const suffix = d >= 0 ? 'ago' : 'from now';
  if (abs < 45) return d >= 0 ? 'just now' : 'in seconds';
  if (abs < 3600) return `${Math.round(abs / 60)} min ${suffix}`;
  if (abs < 86400 * 2) return `${Math.round(abs / 3600)} h ${suffix}`;
  return `${Math.round(abs / 86400)} d ${suffix}`;
}

/** "2026-11-22 10:04:05 UTC": event times are UTC on the API. */
export function time(t: number | string | null | undefined): string {
  if (t === null || t === undefined || t === '') return '–';
  const d = new Date(typeof t === 'number' ? t : Date.parse(t));
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function duration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined) return '–';
  if (secs < 120) return `${secs} s`;
  if (secs < 7200) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${Math.round(secs / 3600)} h`;
  return `${Math.round(secs / 86400)} d`;
}

export function titleCase(s: string): string {
  return s.replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
}
