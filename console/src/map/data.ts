// Where the map's points come from: the geolocation route
// (GET /api/v1/map/devices: columns of IMSI, lat, lon, status, severity),
// or, on a server without it, the device columns with each device at its
// serving country, spread a little so that a country's devices can be told
// apart when zoomed in (the legend then says positions are approximate).

import { ApiError, get } from '../api';
import { loadFleet } from '../fleet';
import { project } from './basemap';
import type { Points } from './points';

interface MapColumns {
  imsi: string[];
  lat: (number | null)[];
  lon: (number | null)[];
  status: (string | number | null)[];
  severity: (string | number | null)[];
}

const STATUS: Record<string, number> = { online: 0, offline: 1, never_seen: 2 };
const SEV: Record<string, number> = { warning: 0, minor: 1, major: 2, critical: 3 };

function code(v: string | number | null | undefined, table: Record<string, number>, none: number): number {
  if (v === null || v === undefined) return none;
  if (typeof v === 'number') return v;
  return table[v] ?? none;
}

/** A stable pseudo-random number in [0, 1) from a string. */
function hash01(s: string, salt: number): number {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return ((h >>> 0) % 100000) / 100000;
}

export async function loadPoints(): Promise<Points> {
  try {
    const m = await get<MapColumns>('/api/v1/map/devices');
    const n = m.imsi.length;
    const pts: Points = {
      n,
      x: new Float32Array(n),
      y: new Float32Array(n),
      status: new Uint8Array(n),
      severity: new Int8Array(n),
      imsi: m.imsi,
      approximate: false,
    };
    for (let i = 0; i < n; i++) {
      const lat = m.lat[i];
      const lon = m.lon[i];
      if (lat === null || lat === undefined || lon === null || lon === undefined) {
        pts.x[i] = NaN;
        pts.y[i] = NaN;
      } else {
        const [x, y] = project(lon, lat);
        pts.x[i] = x;
        pts.y[i] = y;
      }
      pts.status[i] = code(m.status[i], STATUS, 2);
      pts.severity[i] = code(m.severity[i], SEV, -1);
    }
    return pts;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  const f = await loadFleet();
  const c = f.cols;
  const n = c.count;
  const pts: Points = {
    n,
    x: new Float32Array(n),
    y: new Float32Array(n),
    status: new Uint8Array(n),
    severity: new Int8Array(n),
    imsi: c.imsi,
    approximate: true,
  };
  const at = c.dict.country.map((k) => (k.lat !== null && k.lon !== null ? project(k.lon, k.lat) : null));
  for (let i = 0; i < n; i++) {
    const p = at[c.country[i] ?? -1];
    if (!p) {
      pts.x[i] = NaN;
      pts.y[i] = NaN;
    } else {
      // Spread within about 50 km: enough to tell devices apart, not to mislead.
      const imsi = c.imsi[i] ?? '';
      const a = hash01(imsi, 1) * 2 * Math.PI;
      const r = Math.sqrt(hash01(imsi, 2)) * 1.5;
      pts.x[i] = p[0] + Math.cos(a) * r;
      pts.y[i] = p[1] + Math.sin(a) * r;
    }
    pts.status[i] = Math.max(0, c.status[i] ?? 2);
    pts.severity[i] = c.alert[i] ?? -1;
  }
  return pts;
}
