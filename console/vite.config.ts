import { defineConfig } from 'vite';

// The console is served by simguard itself at `/`, so asset URLs are absolute.
// `npm run dev` proxies the API to a running `simguard demo` (SIMGUARD_API).
export default defineConfig({
  base: '/',
  build: {
    target: 'es2020',
    sourcemap: false,
    // The map's basemap (world-atlas) is a lazily loaded chunk of its own.
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: {
      '/api': { target: process.env.SIMGUARD_API ?? 'http://127.0.0.1:8080', changeOrigin: false },
    },
  },
});
