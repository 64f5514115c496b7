import { defineConfig } from 'vite';

export default defineConfig({
  // Relative asset URLs: the gateway serves dist/ at / (or behind a proxy under a prefix).
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // three.js is one ~700 kB module; splitting it would not make the page load faster.
    chunkSizeWarningLimit: 1000,
  },
  server: { port: 5173, strictPort: true, host: '127.0.0.1' },
  preview: { port: 4173, host: '127.0.0.1' },
  test: {
    include: ['test/**/*.test.js'],
    environment: 'node',
  },
});
