// A pannable, zoomable canvas over the basemap. The view is an affine
// transform (screen = world * k + t), so panning redraws with the same
// Path2D objects and point arrays; nothing is re-projected.

import { loadBasemap, loadDetailedBasemap, WORLD, type Basemap } from './basemap';

export interface View {
  k: number;
  tx: number;
  ty: number;
  width: number;
  height: number;
}

export interface Layer {
  draw(ctx: CanvasRenderingContext2D, view: View): void;
  /** What is under (x, y) in CSS pixels, if anything. */
  hit?(x: number, y: number): unknown;
}

const MIN_K = 0.25;
const MAX_K = 4096;
/** Above this zoom (about a country filling the view) the 1:50m outlines
 *  are worth their weight; a continent reads well at 1:110m. */
const DETAIL_K = 12;

export class MapView {
  readonly canvas: HTMLCanvasElement;
  view: View = { k: 1, tx: 0, ty: 0, width: 0, height: 0 };
  layers: Layer[] = [];
  /** Country names to fill in a highlight colour. */
  highlight: string[] = [];
  onClick: ((hit: unknown, x: number, y: number) => void) | null = null;
  onViewChange: ((v: View) => void) | null = null;
  /** Called once the basemap is loaded (to fit a country, say). */
  onBasemap: ((b: Basemap) => void) | null = null;
  /** Set after every frame: its duration in ms (benchmarks read it). */
  lastFrameMs = 0;
  frames = 0;
  private base: Basemap | null = null;
  private detailed: Basemap | null = null;
  private dirty = false;
  private raf = 0;
  private ro: ResizeObserver;
  private pointers = new Map<number, { x: number; y: number }>();
  private moved = 0;
  private fitted = false;
  private disposed = false;

  constructor(host: HTMLElement, label: string) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'map-canvas';
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'application');
    this.canvas.setAttribute('aria-label', label);
    host.appendChild(this.canvas);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(host);
    this.bind();
    void loadBasemap().then((b) => {
      this.base = b;
      this.onBasemap?.(b);
      this.invalidate();
    });
  }

  dispose(): void {
    this.disposed = true;
    this.ro.disconnect();
    cancelAnimationFrame(this.raf);
  }

  invalidate(): void {
    if (this.disposed) return;
    this.dirty = true;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.frame());
  }

  /** Shows the world box [x0,y0]-[x1,y1] (world units), with a margin. */
  fit(x0: number, y0: number, x1: number, y1: number, maxK = 64): void {
    const { width, height } = this.view;
    if (!width || !height) {
      this.pendingFit = [x0, y0, x1, y1, maxK];
      return;
    }
    const w = Math.max(x1 - x0, 1e-3);
    const hgt = Math.max(y1 - y0, 1e-3);
    const k = Math.max(MIN_K, Math.min(maxK, 0.85 * Math.min(width / w, height / hgt)));
    this.view.k = k;
    this.view.tx = width / 2 - ((x0 + x1) / 2) * k;
    this.view.ty = height / 2 - ((y0 + y1) / 2) * k;
    this.fitted = true;
    this.changed();
  }

  private pendingFit: [number, number, number, number, number] | null = null;

  fitWorld(): void {
    // The inhabited latitudes (about 60S to 75N), not the poles' stretched ice.
    this.fit(0, WORLD * 0.12, WORLD, WORLD * 0.72, 64);
  }

  /** Zooms by `f` around the screen point (x, y). */
  zoom(f: number, x = this.view.width / 2, y = this.view.height / 2): void {
    const v = this.view;
    const k = Math.max(MIN_K, Math.min(MAX_K, v.k * f));
    const wx = (x - v.tx) / v.k;
    const wy = (y - v.ty) / v.k;
    v.k = k;
    v.tx = x - wx * k;
    v.ty = y - wy * k;
    this.changed();
  }

  pan(dx: number, dy: number): void {
    this.view.tx += dx;
    this.view.ty += dy;
    this.changed();
  }

  private changed(): void {
    this.onViewChange?.(this.view);
    this.invalidate();
    if (this.view.k > DETAIL_K && !this.detailed) {
      void loadDetailedBasemap().then((b) => {
        this.detailed = b;
        this.invalidate();
      });
    }
  }

  private resize(): void {
    const r = this.canvas.parentElement?.getBoundingClientRect();
    if (!r) return;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.floor(r.width));
    const hgt = Math.max(1, Math.floor(r.height));
    const old = this.view;
    this.canvas.width = Math.floor(w * dpr);
    this.canvas.height = Math.floor(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    // Keep the centre where it was.
    this.view = {
      ...old,
      tx: old.tx + (w - old.width) / 2,
      ty: old.ty + (hgt - old.height) / 2,
      width: w,
      height: hgt,
    };
    if (this.pendingFit) {
      const [a, b, c, d, m] = this.pendingFit;
      this.pendingFit = null;
      this.fit(a, b, c, d, m);
    } else if (!this.fitted) {
      this.fitWorld();
    }
    this.invalidate();
  }

  private frame(): void {
    this.raf = 0;
    if (!this.dirty || this.disposed) return;
    this.dirty = false;
    const t0 = performance.now();
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const v = this.view;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#dfe9f1';
    ctx.fillRect(0, 0, v.width, v.height);
    const b = v.k > DETAIL_K && this.detailed ? this.detailed : this.base;
    if (b) {
      ctx.save();
      ctx.setTransform(dpr * v.k, 0, 0, dpr * v.k, dpr * v.tx, dpr * v.ty);
      ctx.fillStyle = '#fbfaf6';
      ctx.fill(b.land);
      for (const name of this.highlight) {
        const p = b.countries.get(name);
        if (p) {
          ctx.fillStyle = '#a9d0ec';
          ctx.fill(p);
        }
      }
      ctx.lineWidth = 0.8 / v.k;
      ctx.strokeStyle = '#a9b3bd';
      ctx.stroke(b.borders);
      ctx.restore();
    }
    for (const l of this.layers) l.draw(ctx, v);
    this.lastFrameMs = performance.now() - t0;
    this.frames++;
    this.canvas.dataset.frames = String(this.frames);
  }

  private bind(): void {
    const c = this.canvas;
    const local = (e: PointerEvent | WheelEvent | MouseEvent) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const p = local(e);
        this.zoom(Math.pow(1.2, -e.deltaY / (e.deltaMode === 1 ? 3 : 100)), p.x, p.y);
      },
      { passive: false },
    );
    c.addEventListener('pointerdown', (e) => {
      c.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, local(e));
      this.moved = 0;
    });
    c.addEventListener('pointermove', (e) => {
      const prev = this.pointers.get(e.pointerId);
      if (!prev) return;
      const p = local(e);
      if (this.pointers.size === 1) {
        this.moved += Math.abs(p.x - prev.x) + Math.abs(p.y - prev.y);
        this.pan(p.x - prev.x, p.y - prev.y);
      } else if (this.pointers.size === 2) {
        // Pinch: zoom by the change of distance between the two fingers.
        const other = [...this.pointers.entries()].find(([id]) => id !== e.pointerId)?.[1];
        if (other) {
          const d0 = Math.hypot(prev.x - other.x, prev.y - other.y);
          const d1 = Math.hypot(p.x - other.x, p.y - other.y);
          if (d0 > 0) this.zoom(d1 / d0, (p.x + other.x) / 2, (p.y + other.y) / 2);
          this.moved += 10;
        }
      }
      this.pointers.set(e.pointerId, p);
    });
    const up = (e: PointerEvent) => {
      const had = this.pointers.delete(e.pointerId);
      if (had && this.pointers.size === 0 && this.moved < 5 && e.type === 'pointerup') {
        const p = local(e);
        let hit: unknown = null;
        for (let i = this.layers.length - 1; i >= 0 && !hit; i--) hit = this.layers[i]?.hit?.(p.x, p.y) ?? null;
        this.onClick?.(hit, p.x, p.y);
      }
    };
    c.addEventListener('pointerup', up);
    c.addEventListener('pointercancel', up);
    c.addEventListener('dblclick', (e) => {
      const p = local(e);
      this.zoom(2, p.x, p.y);
    });
    c.addEventListener('keydown', (e) => {
      const step = 60;
      const keys: Record<string, () => void> = {
        ArrowLeft: () => this.pan(step, 0),
        ArrowRight: () => this.pan(-step, 0),
        ArrowUp: () => this.pan(0, step),
        ArrowDown: () => this.pan(0, -step),
        '+': () => this.zoom(1.5),
        '=': () => this.zoom(1.5),
        '-': () => this.zoom(1 / 1.5),
      };
      const f = keys[e.key];
      if (f) {
        e.preventDefault();
        f();
      }
    });
  }
}
