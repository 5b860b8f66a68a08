// Every device as a point, clustered on a grid that is fixed to the world
// (so clusters do not shift while panning) and rebuilt each frame from typed
// arrays: one pass over 100,000 points costs about a millisecond, less than
// drawing them would.

import type { Layer, View } from './mapview';
import { SEVERITY_COLOR, STATUS_COLOR } from '../ui/palette';
import type { Severity } from '../types';

export interface Points {
  n: number;
  /** World units. */
  x: Float32Array;
  y: Float32Array;
  /** 0 online, 1 offline, 2 never seen. */
  status: Uint8Array;
  /** -1 none, else 0..3 (warning..critical). */
  severity: Int8Array;
  imsi: string[];
  /** Whether positions are approximate (a country, not a cell). */
  approximate: boolean;
}

export interface DeviceHit {
  kind: 'device';
  index: number;
  imsi: string;
}

export interface ClusterHit {
  kind: 'cluster';
  count: number;
  /** Point indices in the cluster (at most 200). */
  members: number[];
  x: number;
  y: number;
  /** The cluster's world-space extent is tiny: zooming will not split it. */
  stacked: boolean;
}

const CELL_PX = 56;
const SEVS: Severity[] = ['warning', 'minor', 'major', 'critical'];

interface Drawn {
  x: number;
  y: number;
  r: number;
  cell: number;
}

export class PointsLayer implements Layer {
  pts: Points;
  /** Which points to show (status and alert filters). */
  visible: (i: number) => boolean = () => true;
  /** Points in view after the last frame. */
  inView = 0;
  /** Up to 200 indices of points in view, for the list beside the map. */
  sample: number[] = [];
  private drawn: Drawn[] = [];
  private cellCount = new Int32Array(0);
  private cellFirst = new Int32Array(0);
  private cellMembers: number[][] = [];
  private cellMinMax = new Float32Array(0);

  constructor(pts: Points) {
    this.pts = pts;
  }

  draw(ctx: CanvasRenderingContext2D, v: View): void {
    const p = this.pts;
    const cw = CELL_PX / v.k;
    const gx0 = Math.floor((0 - v.tx) / v.k / cw) - 1;
    const gy0 = Math.floor((0 - v.ty) / v.k / cw) - 1;
    const cols = Math.ceil(v.width / CELL_PX) + 3;
    const rows = Math.ceil(v.height / CELL_PX) + 3;
    const cells = cols * rows;
    if (this.cellCount.length < cells) {
      this.cellCount = new Int32Array(cells);
      this.cellFirst = new Int32Array(cells);
      this.cellMinMax = new Float32Array(cells * 4);
    }
    const count = this.cellCount;
    const first = this.cellFirst;
    const mm = this.cellMinMax;
    count.fill(0, 0, cells);
    const sx = new Float64Array(cells);
    const sy = new Float64Array(cells);
    const online = new Int32Array(cells);
    const offline = new Int32Array(cells);
    const worst = new Int8Array(cells).fill(-1);
    const alerted = new Int32Array(cells);
    this.cellMembers = [];
    const members = this.cellMembers;
    const x0 = -v.tx / v.k;
    const y0 = -v.ty / v.k;
    const x1 = (v.width - v.tx) / v.k;
    const y1 = (v.height - v.ty) / v.k;
    let inView = 0;
    const sample: number[] = [];
    for (let i = 0; i < p.n; i++) {
      const wx = p.x[i] as number;
      const wy = p.y[i] as number;
      if (wx < x0 || wx > x1 || wy < y0 || wy > y1 || Number.isNaN(wx)) continue;
      if (!this.visible(i)) continue;
      inView++;
      if (sample.length < 200) sample.push(i);
      const c = (Math.floor(wy / cw) - gy0) * cols + (Math.floor(wx / cw) - gx0);
      if (c < 0 || c >= cells) continue;
      const n = count[c] as number;
      if (n === 0) {
        first[c] = i;
        mm[c * 4] = wx;
        mm[c * 4 + 1] = wy;
        mm[c * 4 + 2] = wx;
        mm[c * 4 + 3] = wy;
        members[c] = [];
      } else {
        if (wx < (mm[c * 4] as number)) mm[c * 4] = wx;
        if (wy < (mm[c * 4 + 1] as number)) mm[c * 4 + 1] = wy;
        if (wx > (mm[c * 4 + 2] as number)) mm[c * 4 + 2] = wx;
        if (wy > (mm[c * 4 + 3] as number)) mm[c * 4 + 3] = wy;
      }
      const list = members[c];
      if (list && list.length < 200) list.push(i);
      count[c] = n + 1;
      sx[c] = (sx[c] as number) + wx;
      sy[c] = (sy[c] as number) + wy;
      const st = p.status[i];
      if (st === 0) online[c] = (online[c] as number) + 1;
      else if (st === 1) offline[c] = (offline[c] as number) + 1;
      const sv = p.severity[i] as number;
      if (sv >= 0) {
        alerted[c] = (alerted[c] as number) + 1;
        if (sv > (worst[c] as number)) worst[c] = sv;
      }
    }
    this.inView = inView;
    this.sample = sample;
    this.drawn = [];
    // Single devices first, clusters on top (they are what people aim at).
    const clusters: number[] = [];
    for (let c = 0; c < cells; c++) {
      const n = count[c] as number;
      if (n === 0) continue;
      if (n > 1) {
        clusters.push(c);
        continue;
      }
      const i = first[c] as number;
      const x = (p.x[i] as number) * v.k + v.tx;
      const y = (p.y[i] as number) * v.k + v.ty;
      drawDevice(ctx, x, y, p.status[i] as number, p.severity[i] as number);
      this.drawn.push({ x, y, r: 8, cell: c });
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = '600 11px system-ui, sans-serif';
    for (const c of clusters) {
      const n = count[c] as number;
      const x = ((sx[c] as number) / n) * v.k + v.tx;
      const y = ((sy[c] as number) / n) * v.k + v.ty;
      const r = 11 + 4 * Math.log10(n);
      drawCluster(ctx, x, y, r, n, online[c] as number, offline[c] as number, worst[c] as number, alerted[c] as number);
      this.drawn.push({ x, y, r, cell: c });
    }
  }

  hit(x: number, y: number): DeviceHit | ClusterHit | null {
    let best: Drawn | null = null;
    let bd = Infinity;
    for (const d of this.drawn) {
      const dist = Math.hypot(d.x - x, d.y - y);
      if (dist <= d.r + 4 && dist < bd) {
        best = d;
        bd = dist;
      }
    }
    if (!best) return null;
    const c = best.cell;
    const n = this.cellCount[c] as number;
    if (n === 1) {
      const i = this.cellFirst[c] as number;
      return { kind: 'device', index: i, imsi: this.pts.imsi[i] ?? '' };
    }
    const mm = this.cellMinMax;
    const extent = Math.max((mm[c * 4 + 2] as number) - (mm[c * 4] as number), (mm[c * 4 + 3] as number) - (mm[c * 4 + 1] as number));
    return {
      kind: 'cluster',
      count: n,
      members: this.cellMembers[c] ?? [],
      x: best.x,
      y: best.y,
      stacked: extent < 1e-4,
    };
  }

  /** What was drawn in the last frame, in CSS pixels (tests, benchmarks). */
  markers(): { kind: 'device' | 'cluster'; x: number; y: number; count: number; imsi?: string }[] {
    return this.drawn.map((d) => {
      const n = this.cellCount[d.cell] as number;
      const i = this.cellFirst[d.cell] as number;
      return n === 1
        ? { kind: 'device' as const, x: d.x, y: d.y, count: 1, imsi: this.pts.imsi[i] }
        : { kind: 'cluster' as const, x: d.x, y: d.y, count: n };
    });
  }
}

/** Device shapes: online a filled disc, offline a ring, never seen a small
 *  square; a device with an active alert a triangle in its severity colour. */
function drawDevice(ctx: CanvasRenderingContext2D, x: number, y: number, status: number, sev: number): void {
  ctx.lineWidth = 1.5;
  if (sev >= 0) {
    const s = SEVS[sev] ?? 'warning';
    ctx.beginPath();
    ctx.moveTo(x, y - 8);
    ctx.lineTo(x + 7, y + 5);
    ctx.lineTo(x - 7, y + 5);
    ctx.closePath();
    ctx.fillStyle = SEVERITY_COLOR[s];
    ctx.fill();
    ctx.strokeStyle = '#222';
    ctx.stroke();
    return;
  }
  if (status === 0) {
    ctx.beginPath();
    ctx.arc(x, y, 5, 0, 2 * Math.PI);
    ctx.fillStyle = STATUS_COLOR.online;
    ctx.fill();
    ctx.strokeStyle = '#fff';
    ctx.stroke();
  } else if (status === 1) {
    ctx.beginPath();
    ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
    ctx.fillStyle = '#fff';
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#5f5f5f';
    ctx.stroke();
  } else {
    ctx.fillStyle = '#9a9a9a';
    ctx.fillRect(x - 3.5, y - 3.5, 7, 7);
  }
}

/** A cluster: a ring split by status (online, offline, never seen), the
 *  count inside, and an outer ring in the worst alert's colour with a
 *  triangle mark when any device in it has an active alert. */
function drawCluster(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  r: number,
  n: number,
  online: number,
  offline: number,
  worst: number,
  alerted: number,
): void {
  if (worst >= 0) {
    ctx.beginPath();
    ctx.arc(x, y, r + 4, 0, 2 * Math.PI);
    ctx.fillStyle = SEVERITY_COLOR[SEVS[worst] ?? 'warning'];
    ctx.fill();
    ctx.strokeStyle = '#222';
    ctx.lineWidth = 1;
    ctx.stroke();
  }
  const parts: [number, string][] = [
    [online, STATUS_COLOR.online],
    [offline, '#6f6f6f'],
    [n - online - offline, '#c4c4c4'],
  ];
  let a = -Math.PI / 2;
  for (const [v, color] of parts) {
    if (v <= 0) continue;
    const b = a + (2 * Math.PI * v) / n;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.arc(x, y, r, a, b);
    ctx.closePath();
    ctx.fillStyle = color;
    ctx.fill();
    a = b;
  }
  ctx.beginPath();
  ctx.arc(x, y, r * 0.62, 0, 2 * Math.PI);
  ctx.fillStyle = '#fff';
  ctx.fill();
  ctx.fillStyle = '#111';
  ctx.fillText(n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n), x, y);
  if (alerted > 0) {
    // The triangle says "alert" to those who cannot tell the ring's colour.
    const tx = x + r * 0.75;
    const ty = y - r * 0.75;
    ctx.beginPath();
    ctx.moveTo(tx, ty - 6);
    ctx.lineTo(tx + 5.5, ty + 4);
    ctx.lineTo(tx - 5.5, ty + 4);
    ctx.closePath();
    ctx.fillStyle = SEVERITY_COLOR[SEVS[worst] ?? 'warning'];
    ctx.fill();
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 1;
    ctx.stroke();
  }
}
