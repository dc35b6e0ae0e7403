import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isCloseguardError, type GatewayApp } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { gateway } from '@closeguard/hono';
import { createCursorProbe, cursorRows } from '@closeguard/conformance';
import { eventually, hangUpMidStream, quiet, useHarness } from './harness.ts';

const harness = useHarness();

/** A gateway app that counts its close() calls and answers with what it saw of the request. */
function echoApp(): { app: GatewayApp; closes: () => number } {
  let closes = 0;
  const app: GatewayApp = (env, start) => {
    start(200, { 'content-type': 'application/json' });
    return Object.assign([JSON.stringify({ path: env.path, query: env.query, host: env.host.name })], {
      close: () => void closes++,
    });
  };
  return { app, closes: () => closes };
}

describe('gateway(app) in Hono', () => {
  describe("mounted on a route with app.all('/legacy/*') and a prefix", () => {
    it('serves paths under it with the prefix stripped; other routes answer as before', async () => {
      const { app, closes } = echoApp();
      const hono = new Hono();
      hono.all('/legacy', gateway(app, { prefix: '/legacy', logger: quiet }));
      hono.all('/legacy/*', gateway(app, { prefix: '/legacy', logger: quiet }));
      hono.get('/other', (c) => c.text('other'));
      const url = await harness.serve(hono);
      expect(await (await fetch(`${url}/legacy/users?id=7`)).json()).toEqual({ path: '/users', query: 'id=7', host: 'hono' });
      expect(await (await fetch(`${url}/legacy`)).json()).toEqual({ path: '/', query: '', host: 'hono' });
      expect(await (await fetch(`${url}/other`)).text()).toBe('other');
      expect(closes()).toBe(2);
    });

    it('passes a path that only starts like the prefix on to next()', async () => {
      const { app, closes } = echoApp();
      const hono = new Hono();
      hono.use(gateway(app, { prefix: '/legacy', logger: quiet }));
      hono.get('/legacyx', (c) => c.text('not legacy'));
      const url = await harness.serve(hono);
      expect(await (await fetch(`${url}/legacyx`)).text()).toBe('not legacy');
      expect(closes()).toBe(0);
    });
  });

  describe('behind hono/compress', () => {
    it("goes out through Hono's response path, compressed", async () => {
      const text = 'hello gateway '.repeat(2_000);
      const app: GatewayApp = (_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        return [text];
      };
      const hono = new Hono();
      hono.use(compress());
      hono.use(gateway(app, { logger: quiet }));
      const url = await harness.serve(hono);
      const { encoding, body } = await getRaw(url, { 'accept-encoding': 'gzip' });
      expect(encoding).toBe('gzip');
      expect(gunzipSync(body).toString()).toBe(text);
    });
  });

  describe('when the client hangs up in the middle of the body', () => {
    it('closes the gateway body exactly once', async () => {
      let closes = 0;
      const app: GatewayApp = (_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        function* lines(): Generator<string> {
          for (;;) yield 'line\n'.repeat(1_000);
        }
        return Object.assign(lines(), { close: () => void closes++ });
      };
      const hono = new Hono();
      hono.use(gateway(app, { logger: quiet }));
      const url = await harness.serve(hono);
      await hangUpMidStream(url);
      await eventually(() => expect(closes).toBe(1));
    });
  });

  describe('when the app fails before its headers', () => {
    it('hands the error to app.onError', async () => {
      const failing = new Error('app failed: secret');
      const seen: unknown[] = [];
      const hono = new Hono();
      hono.onError((error, c) => {
        seen.push(error);
        return c.text('failed', 500);
      });
      hono.use(gateway(() => Promise.reject(failing), { logger: quiet }));
      const url = await harness.serve(hono);
      expect((await fetch(url)).status).toBe(500);
      expect(seen).toEqual([failing]);
    });

    it('answers an oversized request body with 413 through Hono\'s default error handler', async () => {
      const app: GatewayApp = async (env, start) => {
        for await (const chunk of env.body) void chunk;
        start(200, {});
        return [];
      };
      const seen: unknown[] = [];
      const hono = new Hono();
      hono.use(async (c, next) => {
        await next();
        seen.push(c.error);
      });
      hono.use(gateway(app, { bodyLimit: 10, logger: quiet }));
      const url = await harness.serve(hono);
      const response = await fetch(url, { method: 'POST', body: 'x'.repeat(100) });
      expect(response.status).toBe(413);
      expect(isCloseguardError(seen[0], 'ERR_CLOSEGUARD_BODY_TOO_LARGE')).toBe(true);
    });
  });

  describe('behind connectionClosing()', () => {
    it("shares the request's scope: the app leases the client c.var.db() leased, and it goes back once", async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const probe = createCursorProbe();
      const app: GatewayApp = async (env, start) => {
        const client = await leasesFor(env.scope)!.get<pg.Client>('default');
        start(200, { 'content-type': 'application/x-ndjson' });
        return cursorRows(client, 500, probe);
      };
      let viaDb: pg.Client | undefined;
      const hono = new Hono().use(closing);
      hono.use(async (c, next) => {
        viaDb = await c.var.db<pg.Client>();
        await next();
      });
      hono.use(gateway(app, { logger: quiet }));
      const url = await harness.serve(hono);
      const text = await (await fetch(url)).text();
      expect(text.trim().split('\n')).toHaveLength(500);
      expect(viaDb).toBeDefined();
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(closing.guard.stats().leased).toBe(1);
      expect(probe.closed).toBe(1);
    });
  });
});

/** A GET whose body is read as it came on the wire (fetch would decompress it). */
function getRaw(url: string, headers: Record<string, string>): Promise<{ encoding: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}
