// Charts drawn as SVG by hand: a handful of shapes each, no chart library.

import { h, s } from '../dom';
import { bytes } from '../format';

export interface Line {
  label: string;
  value: number;
  color: string;
  /** SVG dash pattern: lines differ in pattern, not only colour. */
  dash: string;
}

export interface BarSeries {
  label: string;
  color: string;
  values: number[];
}

/**
 * Stacked bars over time (one slot per x), with horizontal reference lines.
 * `xs` are the slot starts (ms), `labelEvery` how many slots between ticks.
 */
export function barChart(opts: {
  title: string;
  xs: number[];
  series: BarSeries[];
  lines: Line[];
  format?: (v: number) => string;
  tick?: (x: number) => string;
  labelEvery: number;
  height?: number;
}): HTMLElement {
  const fmt = opts.format ?? bytes;
  const W = 720;
  const H = opts.height ?? 220;
  const m = { l: 64, r: 12, t: 10, b: 28 };
  const n = opts.xs.length;
  const totals = opts.xs.map((_, i) => opts.series.reduce((a, se) => a + (se.values[i] ?? 0), 0));
  const top = Math.max(1, ...totals, ...opts.lines.map((l) => l.value)) * 1.1;
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const bw = iw / Math.max(1, n);
  const y = (v: number) => m.t + ih - (v / top) * ih;
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-label': opts.title,
    preserveAspectRatio: 'none',
  });
  // Grid and axis labels.
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    svg.append(
      s('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: m.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmt(v)),
    );
  }
  opts.xs.forEach((x, i) => {
    let base = 0;
    for (const se of opts.series) {
      const v = se.values[i] ?? 0;
      if (v > 0) {
        const r = s('rect', {
          x: m.l + i * bw + bw * 0.1,
          y: y(base + v),
          width: Math.max(1, bw * 0.8),
          height: Math.max(0.5, y(base) - y(base + v)),
          fill: se.color,
        });
        r.append(s('title', null, `${opts.tick ? opts.tick(x) : x}: ${se.label} ${fmt(v)}`));
        svg.append(r);
      }
      base += v;
    }
    if (i % opts.labelEvery === 0 && opts.tick) {
      svg.append(s('text', { x: m.l + i * bw, y: H - 8, class: 'axis' }, opts.tick(x)));
    }
  });
  for (const l of opts.lines) {
    svg.append(
      s('line', {
        x1: m.l,
        x2: W - m.r,
        y1: y(l.value),
        y2: y(l.value),
        stroke: l.color,
        'stroke-width': 2,
        'stroke-dasharray': l.dash,
      }),
    );
  }
  const legend = h(
    'ul',
    { class: 'legend' },
    opts.series.map((se) =>
      h('li', null, h('span', { class: 'swatch', style: { background: se.color }, 'aria-hidden': 'true' }), se.label),
    ),
    opts.lines.map((l) =>
      h(
        'li',
        null,
        s(
          'svg',
          { width: 28, height: 10, 'aria-hidden': 'true' },
          s('line', { x1: 0, x2: 28, y1: 5, y2: 5, stroke: l.color, 'stroke-width': 2, 'stroke-dasharray': l.dash }),
        ),
        `${l.label} (${fmt(l.value)})`,
      ),
    ),
  );
  return h('figure', { class: 'chart-figure' }, svg, h('figcaption', null, legend));
}

/** A small line of recent values (ingest rates). */
export function sparkline(values: number[], label: string, color = '#0072B2'): SVGSVGElement {
  const W = 160;
  const H = 36;
  const max = Math.max(1, ...values);
  const pts = values
    .map((v, i) => `${(i / Math.max(1, values.length - 1)) * W},${H - 2 - (v / max) * (H - 4)}`)
    .join(' ');
  return s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img', 'aria-label': label, preserveAspectRatio: 'none' },
    s('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 2 }),
  );
}
