import http, { type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import compress from '@fastify/compress';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, type GatewayApp, type GatewayEnv } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { gateway } from '@closeguard/fastify';
import { eventually, hangUpMidStream, quiet, useHarness } from './harness.ts';

const harness = useHarness();

/** A gateway app that leases through env.scope and connection(), and tells what it saw. */
function reportingApp(seen: GatewayEnv[], closes: { count: number }): GatewayApp {
  return async (env, start) => {
    seen.push(env);
    const client = await leasesFor(env.scope)!.get<pg.Client>('default');
    const same = (await connection<pg.Client>()) === client;
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    let body = '';
    for await (const chunk of env.body) body += Buffer.from(chunk).toString();
    start(200, { 'content-type': 'application/json' });
    const chunks = [JSON.stringify({ path: env.path, query: env.query, host: env.host.name, one: rows[0]!.one, same, body })];
    return Object.assign(chunks, { close: () => void closes.count++ });
  };
}

/** A GET that keeps the body as sent (fetch would decompress it). */
function getRaw(url: string, headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

describe('gateway(app) on PostgreSQL', () => {
  describe('mounted under a prefix behind connectionClosing', () => {
    it("shares the request's scope, sees paths relative to the mount, and gives the lease back once", async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, asyncContext: true });
      const seen: GatewayEnv[] = [];
      const closes = { count: 0 };
      const { url } = await harness.serve(guard, async (fastify) => {
        fastify.get('/native', () => 'native');
        await fastify.register(gateway, { app: reportingApp(seen, closes), prefix: '/legacy', logger: quiet });
      });
      const got = await (await fetch(`${url}/legacy/rows?x=1`)).json();
      expect(got).toEqual({ path: '/rows', query: 'x=1', host: 'fastify', one: 1, same: true, body: '' });
      const posted = await fetch(`${url}/legacy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"raw":true}' });
      expect(await posted.json()).toMatchObject({ path: '/', body: '{"raw":true}' });
      expect(await (await fetch(`${url}/native`)).text()).toBe('native');
      await eventually(() => expect(guard.stats().released).toBe(2));
      expect(closes.count).toBe(2);
      expect(harness.finished.filter(({ url: path }) => path.startsWith('/legacy')).map(({ reason }) => reason)).toEqual(['complete', 'complete']);
    });
  });

  describe("under a prefix that ends with '/'", () => {
    it('sees paths relative to the mount, starting with /', async () => {
      const app: GatewayApp = (env, start) => {
        start(200, { 'content-type': 'application/json' });
        return [JSON.stringify({ path: env.path, query: env.query })];
      };
      const { url } = await harness.serve(undefined, async (fastify) => {
        await fastify.register(gateway, { app, prefix: '/legacy/', logger: quiet });
      });
      expect(await (await fetch(`${url}/legacy/rows?x=1`)).json()).toEqual({ path: '/rows', query: 'x=1' });
      expect(await (await fetch(`${url}/legacy/`)).json()).toEqual({ path: '/', query: '' });
    });
  });

  describe('with @fastify/compress', () => {
    it('compresses a gateway body, which goes through Fastify as a stream', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const line = 'a row of text that compresses well\n';
      const { url } = await harness.serve(guard, async (fastify) => {
        await fastify.register(compress, { threshold: 0 });
        await fastify.register(gateway, {
          app: async (env, start) => {
            const client = await leasesFor(env.scope)!.get<pg.Client>('default');
            await client.query('SELECT 1');
            start(200, { 'content-type': 'text/plain' });
            return (function* rows() {
              for (let n = 0; n < 500; n++) yield line;
            })();
          },
        });
      });
      const response = await getRaw(`${url}/text`, { 'accept-encoding': 'gzip' });
      expect(response.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(response.body).toString()).toBe(line.repeat(500));
      await eventually(() => expect(guard.stats().released).toBe(1));
    });
  });

  describe('when the client hangs up mid-stream', () => {
    it("closes the app's body once and gives the lease back", async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const ends = { finallies: 0, closes: 0 };
      const { url } = await harness.serve(guard, async (fastify) => {
        await fastify.register(gateway, {
          app: async (env, start) => {
            const client = await leasesFor(env.scope)!.get<pg.Client>('default');
            start(200, { 'content-type': 'text/plain' });
            async function* rows(): AsyncGenerator<string> {
              try {
                for (;;) yield `${(await client.query<{ n: string }>('SELECT repeat($1, 8000) AS n', ['x'])).rows[0]!.n}\n`;
              } finally {
                ends.finallies++;
              }
            }
            return Object.assign(rows(), { close: () => void ends.closes++ });
          },
        });
      });
      await hangUpMidStream(`${url}/stream`);
      await eventually(() => expect(ends).toEqual({ finallies: 1, closes: 1 }));
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['aborted']);
    });
  });

  describe('without connectionClosing', () => {
    it('serves the app with a scope of its own', async () => {
      const { url } = await harness.serve(undefined, async (fastify) => {
        await fastify.register(gateway, {
          app: (env, start) => {
            start(200, { 'content-type': 'text/plain' });
            return [leasesFor(env.scope) === undefined ? 'no leases' : 'leases', ` ${env.path}`];
          },
          prefix: '/app',
        });
      });
      expect(await (await fetch(`${url}/app/x`)).text()).toBe('no leases /x');
      await eventually(() => expect(harness.finished.map(({ reason }) => reason)).toEqual(['complete']));
    });
  });
});
