// Every device on the world's countries, clustered, coloured and shaped by
// status and alert. Clicking a device opens it; clicking a cluster zooms in
// (or lists its devices when they share one place).

import { h, replace } from '../dom';
import { num } from '../format';
import { loadPoints } from '../map/data';
import { MapView } from '../map/mapview';
import { PointsLayer, type ClusterHit, type DeviceHit, type Points } from '../map/points';
import { navigate, type PageFn } from '../router';
import { SEVERITIES, SEVERITY_COLOR, SEVERITY_GLYPH, STATUS_COLOR } from '../ui/palette';
import { errorBox } from '../ui/widgets';

const REFRESH_MS = 30_000;

declare global {
  interface Window {
    /** For browser tests and benchmarks: what the map drew, and when. */
    __simguardMap?: {
      ready: boolean;
      points: number;
      firstRenderMs: number | null;
      /** performance.now() when every device was first drawn. */
      drawnAt: number | null;
      markers: () => ReturnType<PointsLayer['markers']>;
      /** A device's position in world units, if it is on the map. */
      locate: (imsi: string) => { x: number; y: number } | null;
      view: MapView;
    };
  }
}

function legend(approximate: boolean): HTMLElement {
  const shape = (svg: string, label: string) =>
    h('li', null, h('span', { class: 'legend-shape', 'aria-hidden': 'true' }, svg), label);
  return h(
    'div',
    { class: 'map-legend' },
    h('h2', null, 'Legend'),
    h(
      'ul',
      null,
      shape('●', 'online'),
      shape('○', 'offline'),
      shape('■', 'never seen'),
      shape('▲', 'active alert (colour: severity)'),
      shape('◍', 'cluster: ring split online / offline / never seen; outer ring and ▲ = alerts'),
    ),
    h(
      'ul',
      { class: 'sev-legend' },
      SEVERITIES.map((s) =>
        h('li', null, h('span', { class: 'swatch', style: { background: SEVERITY_COLOR[s] }, 'aria-hidden': 'true' }), `${SEVERITY_GLYPH[s]} ${s}`),
      ),
    ),
    approximate
      ? h('p', { class: 'muted small' }, 'Positions are approximate: each device is drawn in its serving country (no cell positions on this server).')
      : null,
  );
}

/** Shows where the devices are (the middle 98% of them, so one roamer in
 *  another continent does not shrink the fleet to a dot). */
function fitTo(view: MapView, pts: Points): void {
  const xs: number[] = [];
  const ys: number[] = [];
  const step = Math.max(1, Math.floor(pts.n / 5000));
  for (let i = 0; i < pts.n; i += step) {
    const x = pts.x[i] as number;
    if (!Number.isNaN(x)) {
      xs.push(x);
      ys.push(pts.y[i] as number);
    }
  }
  if (xs.length < 2) return;
  xs.sort((a, b) => a - b);
  ys.sort((a, b) => a - b);
  const q = (v: number[], p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))] as number;
  const pad = 8;
  view.fit(q(xs, 0.01) - pad, q(ys, 0.01) - pad, q(xs, 0.99) + pad, q(ys, 0.99) + pad, 24);
}

export const mapPage: PageFn = (root) => {
  const t0 = performance.now();
  const host = h('div', { class: 'map-host' });
  const side = h('aside', { class: 'map-side' });
  const inView = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'map-list' });
  const popup = h('div', { class: 'map-popup', hidden: true, role: 'dialog', 'aria-label': 'Devices here' });
  const filters = {
    online: h('input', { type: 'checkbox', checked: true, name: 'online' }),
    offline: h('input', { type: 'checkbox', checked: true, name: 'offline' }),
    never: h('input', { type: 'checkbox', checked: true, name: 'never' }),
    alerts: h('input', { type: 'checkbox', name: 'alerts' }),
  };
  const view = new MapView(host, 'Map of devices. Drag or use the arrow keys to pan, the wheel or + and − to zoom.');
  host.append(
    popup,
    h(
      'div',
      { class: 'map-zoom' },
      h('button', { type: 'button', 'aria-label': 'Zoom in', onclick: () => view.zoom(2) }, '+'),
      h('button', { type: 'button', 'aria-label': 'Zoom out', onclick: () => view.zoom(0.5) }, '−'),
      h('button', { type: 'button', 'aria-label': 'Whole world', onclick: () => view.fitWorld() }, '⌂'),
    ),
  );
  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Map'),
      h(
        'form',
        { class: 'toolbar inline', onsubmit: (e: Event) => e.preventDefault() },
        h('label', null, filters.online, ' ● online'),
        h('label', null, filters.offline, ' ○ offline'),
        h('label', null, filters.never, ' ■ never seen'),
        h('label', null, filters.alerts, ' ▲ only with alerts'),
      ),
    ),
    h('div', { class: 'map-layout' }, host, side),
  );
  replace(side, inView, list);

  let layer: PointsLayer | null = null;
  let stopped = false;
  let listTimer: number | undefined;

  const visible = (p: Points) => (i: number) => {
    const st = p.status[i];
    if (st === 0 && !filters.online.checked) return false;
    if (st === 1 && !filters.offline.checked) return false;
    if (st === 2 && !filters.never.checked) return false;
    if (filters.alerts.checked && (p.severity[i] as number) < 0) return false;
    return true;
  };

  const renderList = () => {
    if (!layer) return;
    const l = layer;
    inView.textContent = `${num(l.inView)} devices in view`;
    if (l.inView === 0) {
      replace(list);
      return;
    }
    if (l.inView > 100) {
      replace(list, h('li', { class: 'muted' }, 'Zoom in to list the devices in view.'));
      return;
    }
    const sevName = (i: number) => SEVERITIES[(l.pts.severity[i] as number)] ?? null;
    replace(
      list,
      l.sample.map((i) => {
        const s = sevName(i);
        const st = l.pts.status[i];
        return h(
          'li',
          null,
          h('span', { class: 'glyph', 'aria-hidden': 'true', style: { color: s ? SEVERITY_COLOR[s] : st === 0 ? STATUS_COLOR.online : '#666' } }, s ? '▲' : st === 0 ? '●' : st === 1 ? '○' : '■'),
          h('a', { href: `/devices/${l.pts.imsi[i]}` }, l.pts.imsi[i] ?? ''),
          h('span', { class: 'muted small' }, s ? ` ${s} alert` : st === 0 ? ' online' : st === 1 ? ' offline' : ' never seen'),
        );
      }),
    );
  };

  const showPopup = (c: ClusterHit) => {
    const pts = layer?.pts;
    if (!pts) return;
    replace(
      popup,
      h('p', null, h('strong', null, `${num(c.count)} devices here`), c.count > c.members.length ? ` (first ${c.members.length})` : ''),
      h('ul', null, c.members.map((i) => h('li', null, h('a', { href: `/devices/${pts.imsi[i]}` }, pts.imsi[i] ?? '')))),
      h('button', { type: 'button', onclick: () => (popup.hidden = true) }, 'Close'),
    );
    popup.style.left = `${Math.min(c.x + 12, (host.clientWidth || 400) - 240)}px`;
    popup.style.top = `${Math.max(8, c.y - 20)}px`;
    popup.hidden = false;
    popup.querySelector('a')?.focus();
  };

  view.onClick = (hit) => {
    popup.hidden = true;
    const x = hit as DeviceHit | ClusterHit | null;
    if (!x) return;
    if (x.kind === 'device') {
      navigate(`/devices/${x.imsi}`);
    } else if (x.stacked || view.view.k > 2000) {
      showPopup(x);
    } else {
      view.zoom(3, x.x, x.y);
    }
  };
  view.onViewChange = () => {
    popup.hidden = true;
    window.clearTimeout(listTimer);
    listTimer = window.setTimeout(renderList, 150);
  };
  for (const f of Object.values(filters)) {
    f.addEventListener('change', () => {
      view.invalidate();
      window.clearTimeout(listTimer);
      listTimer = window.setTimeout(renderList, 50);
    });
  }

  const load = async () => {
    try {
      const pts = await loadPoints();
      if (stopped) return;
      if (!layer) {
        layer = new PointsLayer(pts);
        view.layers.push(layer);
        side.append(legend(pts.approximate));
        fitTo(view, pts);
      } else {
        layer.pts = pts;
      }
      layer.visible = visible(pts);
      view.invalidate();
      // The first frame with points, for the benchmark.
      requestAnimationFrame(() => {
        const l = layer;
        if (!l || stopped) return;
        window.__simguardMap = {
          ready: true,
          points: pts.n,
          firstRenderMs: window.__simguardMap?.firstRenderMs ?? performance.now() - t0,
          drawnAt: window.__simguardMap?.drawnAt ?? performance.now(),
          markers: () => l.markers(),
          locate: (imsi) => {
            const i = l.pts.imsi.indexOf(imsi);
            const x = l.pts.x[i];
            const y = l.pts.y[i];
            return i < 0 || x === undefined || y === undefined || Number.isNaN(x) ? null : { x, y };
          },
          view,
        };
        root.dataset.loaded = 'true';
        renderList();
      });
    } catch (e) {
      if (!stopped) replace(side, errorBox(e));
    }
  };
  void load();
  const timer = window.setInterval(() => {
    if (!document.hidden) void load();
  }, REFRESH_MS);
  return () => {
    stopped = true;
    window.clearInterval(timer);
    window.clearTimeout(listTimer);
    view.dispose();
    delete window.__simguardMap;
  };
};
