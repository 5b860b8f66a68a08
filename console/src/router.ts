// Client-side routes: the server answers every non-API path with the same
// page, and this module picks what to show from the path.

export interface RouteCtx {
  params: Record<string, string>;
  query: URLSearchParams;
  path: string;
}

/** Renders into `root`; returns what to undo when the page is left. */
export type PageFn = (root: HTMLElement, ctx: RouteCtx) => void | (() => void);

interface Route {
  pattern: RegExp;
  keys: string[];
  page: () => Promise<PageFn>;
  name: string;
}

const routes: Route[] = [];
let onChange: ((name: string, ctx: RouteCtx, page: PageFn) => void) | null = null;
let current = '';

export function route(path: string, name: string, page: () => Promise<PageFn>): void {
  const keys: string[] = [];
  const pattern = new RegExp(
    '^' +
      path.replace(/:([a-z]+)/g, (_, k: string) => {
        keys.push(k);
        return '([^/]+)';
      }) +
      '/?$',
  );
  routes.push({ pattern, keys, page, name });
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  void resolve();
}

/** Updates the query string without a new page (filters in the URL). */
export function setQuery(q: URLSearchParams): void {
  const s = q.toString();
  history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  current = location.pathname + location.search;
}

export async function resolve(): Promise<void> {
  const here = location.pathname + location.search;
  if (here === current) return;
  current = here;
  const path = location.pathname;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1] ?? '')));
    const page = await r.page();
    // A later navigation may have won while the page's code loaded.
    if (location.pathname + location.search !== here) return;
    onChange?.(r.name, { params, query: new URLSearchParams(location.search), path }, page);
    return;
  }
  onChange?.('notfound', { params: {}, query: new URLSearchParams(), path }, (root) => {
    root.textContent = `No page at ${path}.`;
  });
}

export function startRouter(fn: (name: string, ctx: RouteCtx, page: PageFn) => void): void {
  onChange = fn;
  window.addEventListener('popstate', () => void resolve());
  document.addEventListener('click', (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = (ev.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    ev.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
  });
  void resolve();
}

/** Forces the current route to render again (after signing in). */
export function reload(): void {
  current = '';
  void resolve();
}
