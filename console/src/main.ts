// The console's shell: sign-in gate, navigation, live-stream indicator, and
// the page outlet. Pages load on demand (the map's basemap only when the
// map is opened).

import './styles.css';
import { ApiError, get, logout, me, onUnauthorized, restore } from './api';
import { setEngineTime } from './format';
import { h, replace } from './dom';
import * as live from './live';
import { navigate, route, startRouter, type PageFn, type RouteCtx } from './router';
import { errorBox } from './ui/widgets';

route('/login', 'login', async () => (await import('./pages/login')).loginPage);
route('/', 'overview', async () => (await import('./pages/overview')).overviewPage);
route('/devices', 'devices', async () => (await import('./pages/devices')).devicesPage);
route('/devices/:imsi', 'device', async () => (await import('./pages/device')).devicePage);
route('/map', 'map', async () => (await import('./pages/map')).mapPage);
route('/alerts', 'alerts', async () => (await import('./pages/alerts')).alertsPage);
route('/rules', 'rules', async () => (await import('./pages/rules')).rulesPage);
route('/rules/new', 'rule-new', async () => (await import('./pages/rules')).ruleEditPage);
route('/rules/:id', 'rule', async () => (await import('./pages/rules')).ruleEditPage);
route('/settings', 'settings', async () => (await import('./pages/settings')).settingsPage);

const NAV: [string, string, string[]][] = [
  ['/', 'Overview', ['overview']],
  ['/devices', 'Devices', ['devices', 'device']],
  ['/map', 'Map', ['map']],
  ['/alerts', 'Alerts', ['alerts']],
  ['/rules', 'Rules', ['rules', 'rule', 'rule-new']],
  ['/settings', 'Settings', ['settings']],
];

const app = document.querySelector<HTMLElement>('#app') ?? document.body;
const outlet = h('main', { id: 'main', tabindex: '-1' });
const liveDot = h('span', { class: 'live-state', role: 'status', 'aria-live': 'polite' });
const who = h('span', { class: 'who' });
const nav = h('nav', { 'aria-label': 'Main' });
let dispose: (() => void) | void;
let signedIn = false;

function renderLive(s: live.LiveState): void {
  liveDot.dataset.state = s;
  liveDot.textContent = s === 'live' ? 'Live' : s === 'connecting' ? 'Connecting…' : 'Offline';
  liveDot.title =
    s === 'live' ? 'Receiving findings and alerts as they happen' : 'Live updates paused: reconnecting';
}

function shell(): HTMLElement {
  return h(
    'div',
    { class: 'shell' },
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h(
      'header',
      { class: 'top' },
      h('a', { class: 'brand', href: '/' }, h('img', { src: '/favicon.svg', alt: '', width: 22, height: 22 }), 'simguard'),
      nav,
      h(
        'div',
        { class: 'top-right' },
        liveDot,
        who,
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: async () => {
              live.stop();
              await logout();
              signedIn = false;
              navigate('/login');
            },
          },
          'Sign out',
        ),
      ),
    ),
    outlet,
  );
}

function renderNav(active: string): void {
  replace(
    nav,
    NAV.map(([href, label, names]) =>
      h('a', { href, 'aria-current': names.includes(active) ? 'page' : undefined }, label),
    ),
  );
}

function show(name: string, ctx: RouteCtx, page: PageFn): void {
  if (dispose) {
    try {
      dispose();
    } catch (e) {
      console.error(e);
    }
    dispose = undefined;
  }
  if (name === 'login') {
    replace(app, outlet);
    replace(outlet);
    dispose = page(outlet, ctx);
    document.title = 'Sign in · simguard';
    return;
  }
  if (!signedIn) {
    const next = location.pathname + location.search;
    navigate(`/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`, true);
    return;
  }
  if (!app.querySelector('.shell')) replace(app, shell());
  renderNav(name);
  const m = me();
  who.textContent = m ? `${m.user}${m.tenant ? ` · ${m.tenant}` : ''}${m.role !== 'unknown' ? ` (${m.role})` : ''}` : '';
  replace(outlet);
  outlet.dataset.page = name;
  document.title = `${NAV.find(([, , n]) => n.includes(name))?.[1] ?? 'simguard'} · simguard`;
  dispose = page(outlet, ctx);
}

/** The engine's clock, for relative times, every minute. */
function syncClock(): void {
  const tick = () => {
    if (signedIn) void get<{ engine_time_ms: number }>('/api/v1/status').then((s) => setEngineTime(s.engine_time_ms), () => undefined);
  };
  tick();
  window.setInterval(tick, 60_000);
}

// The login page announces a sign-in with this event (no import cycle).
window.addEventListener('simguard:signed-in', (ev) => {
  signedIn = true;
  live.start();
  void get<{ engine_time_ms: number }>('/api/v1/status').then((s) => setEngineTime(s.engine_time_ms), () => undefined);
  const next = (ev as CustomEvent<string>).detail;
  navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
});

async function boot(): Promise<void> {
  live.subscribe('state', renderLive);
  renderLive(live.liveState());
  onUnauthorized(() => {
    signedIn = false;
    live.stop();
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
  });
  try {
    signedIn = (await restore()) !== null;
  } catch (e) {
    replace(app, errorBox(e instanceof ApiError ? `The server answered: ${e.message}` : e));
    return;
  }
  if (signedIn) live.start();
  startRouter(show);
  syncClock();
}

void boot();
