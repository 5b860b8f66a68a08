// The offline basemap: world-atlas's country outlines (Natural Earth, from
// the npm registry, bundled with the console), projected once to Web
// Mercator world units and kept as Path2D objects, so that drawing the map
// at any pan and zoom is one transformed fill and one stroke.

import { geoMercator, geoPath, type GeoContext } from 'd3-geo';
import { feature, mesh } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';

/** The world's width and height in world units (Web Mercator square). */
export const WORLD = 1024;
const MAX_LAT = 85.0511;

/** lon/lat (degrees) to world units, the same as the basemap's projection. */
export function project(lon: number, lat: number): [number, number] {
  const x = ((lon + 180) / 360) * WORLD;
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  const y = (0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI)) * WORLD;
  return [x, y];
}

export interface Basemap {
  land: Path2D;
  borders: Path2D;
  /** Country outlines by name (to highlight one). */
  countries: Map<string, Path2D>;
  /** Each country's largest land mass, as a world-unit box [x0, y0, x1, y1]. */
  bounds: Map<string, [number, number, number, number]>;
  detail: '110m' | '50m';
}

const projection = geoMercator()
  .scale(WORLD / (2 * Math.PI))
  .translate([WORLD / 2, WORLD / 2]);

/** Path2D has no beginPath; d3's path writer never needs one. */
function context(p: Path2D): GeoContext {
  return {
    beginPath: () => undefined,
    moveTo: (x, y) => p.moveTo(x, y),
    lineTo: (x, y) => p.lineTo(x, y),
    closePath: () => p.closePath(),
    arc: (x, y, r, a0, a1, ccw) => p.arc(x, y, r, a0, a1, ccw),
  };
}

type Countries = Topology<{ countries: GeometryCollection<{ name: string }> }>;

/** Gives the main thread back between slices of work (the 1:50m outlines
 *  take a few hundred milliseconds to turn into paths). */
const yieldNow = () => new Promise<void>((r) => setTimeout(r, 0));

async function build(topo: Countries, detail: Basemap['detail']): Promise<Basemap> {
  const obj = topo.objects.countries;
  const land = new Path2D();
  const countries = new Map<string, Path2D>();
  const bounds = new Map<string, [number, number, number, number]>();
  const measure = geoPath(projection);
  const fc = feature(topo, obj);
  let slice = performance.now();
  for (const f of fc.features) {
    if (performance.now() - slice > 8) {
      await yieldNow();
      slice = performance.now();
    }
    const p = new Path2D();
    geoPath(projection, context(p))(f);
    land.addPath(p);
    const name = f.properties?.name;
    if (!name) continue;
    countries.set(name, p);
    // France's box would span French Guiana: take the largest polygon.
    const g = f.geometry;
    const parts: GeoJSON.Polygon[] =
      g?.type === 'MultiPolygon' ? g.coordinates.map((c) => ({ type: 'Polygon', coordinates: c })) : g?.type === 'Polygon' ? [g] : [];
    let best: GeoJSON.Polygon | null = null;
    let area = -1;
    for (const part of parts) {
      const a = measure.area(part);
      if (a > area) {
        area = a;
        best = part;
      }
    }
    if (best) {
      const [[x0, y0], [x1, y1]] = measure.bounds(best);
      bounds.set(name, [x0, y0, x1, y1]);
    }
  }
  await yieldNow();
  const borders = new Path2D();
  geoPath(projection, context(borders))(mesh(topo, obj, (a, b) => a !== b));
  return { land, borders, countries, bounds, detail };
}

let coarse: Promise<Basemap> | null = null;
let fine: Promise<Basemap> | null = null;

/** Countries at 1:110m: the whole world, small. */
export function loadBasemap(): Promise<Basemap> {
  coarse ??= import('world-atlas/countries-110m.json').then((m) =>
    build((m as unknown as { default: Countries }).default, '110m'),
  );
  return coarse;
}

/** Countries at 1:50m, for zoomed-in views (loaded on first need). */
export function loadDetailedBasemap(): Promise<Basemap> {
  fine ??= import('world-atlas/countries-50m.json').then((m) =>
    build((m as unknown as { default: Countries }).default, '50m'),
  );
  return fine;
}
