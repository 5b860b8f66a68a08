// The whole fleet in one columnar fetch (GET /api/v1/devices/columns),
// shared by the device table and the map, refetched when older than a few
// seconds. At 100,000 devices it is about 10 MB of JSON: one request instead
// of a hundred pages of full device views.

import { get } from './api';
import { setEngineTime } from './format';
import type { DeviceColumns } from './types';

export interface Fleet {
  cols: DeviceColumns;
  /** Lower-case "imsi label msisdn" per row, for substring search. */
  haystack: string[];
  fetchedAt: number;
}

let cached: Fleet | null = null;
let inflight: Promise<Fleet> | null = null;

export function fleetAge(): number {
  return cached ? Date.now() - cached.fetchedAt : Infinity;
}

export async function loadFleet(maxAgeMs = 10_000): Promise<Fleet> {
  if (cached && Date.now() - cached.fetchedAt < maxAgeMs) return cached;
  if (inflight) return inflight;
  inflight = (async () => {
    try {
      const cols = await get<DeviceColumns>('/api/v1/devices/columns');
      setEngineTime(cols.engine_time_ms);
      const haystack = new Array<string>(cols.count);
      for (let i = 0; i < cols.count; i++) {
        haystack[i] = `${cols.imsi[i]} ${cols.label[i] ?? ''} ${cols.msisdn[i] ?? ''}`.toLowerCase();
      }
      cached = { cols, haystack, fetchedAt: Date.now() };
      return cached;
    } finally {
      inflight = null;
    }
  })();
  return inflight;
}

/** Forgets the cache (after an action changed a device). */
export function invalidateFleet(): void {
  cached = null;
}
