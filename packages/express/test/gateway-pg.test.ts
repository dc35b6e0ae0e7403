import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express from 'express';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, ConnectionClosingMiddleware, type GatewayApp, type GatewayEnv } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { connectionClosing, gateway } from '@closeguard/express';
import { eventually, GRACE_MS, hangUpMidStream, quiet, useHarness } from './harness.ts';

const harness = useHarness();

describe('gateway(app) in Express', () => {
  describe('mounted under a prefix behind connectionClosing()', () => {
    it('sees env.path relative to the mount, shares the request scope, and releases once', async () => {
      const pool = harness.pool(1);
      const guard = new ConnectionClosingMiddleware({ pool, abortGrace: GRACE_MS, asyncContext: true });
      const seen: Array<Pick<GatewayEnv, 'url' | 'path' | 'query'> & { host: string; same: boolean }> = [];
      const app: GatewayApp = async (env, start) => {
        const viaScope = await leasesFor(env.scope)!.get<pg.Client>('default');
        const viaConnection = await connection<pg.Client>();
        const { rows } = await viaConnection.query<{ one: number }>('SELECT 1 AS one');
        seen.push({ url: env.url, path: env.path, query: env.query, host: env.host.name, same: viaScope === viaConnection });
        start(200, { 'content-type': 'application/json' });
        return [JSON.stringify(rows[0])];
      };
      const server = express();
      server.use(connectionClosing(guard, { logger: quiet }));
      server.use('/legacy', gateway(app, { logger: quiet, abortGrace: GRACE_MS }));
      const url = await harness.listen(server);
      const response = await fetch(`${url}/legacy/items/7?full=1`);
      expect(await response.json()).toEqual({ one: 1 });
      expect(seen).toEqual([{ url: '/items/7?full=1', path: '/items/7', query: 'full=1', host: 'express', same: true }]);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().leased).toBe(1);
    });

    it("closes the body once and releases the client when the client hangs up mid-stream", async () => {
      const pool = harness.pool(1);
      const guard = new ConnectionClosingMiddleware({ pool, abortGrace: GRACE_MS });
      let closes = 0;
      const app: GatewayApp = async (env, start) => {
        const client = await leasesFor(env.scope)!.get<pg.Client>('default');
        start(200, { 'content-type': 'text/plain' });
        const body = (async function* () {
          for (let n = 0; ; n++) yield (await client.query<{ n: number }>('SELECT $1::int AS n', [n])).rows[0]!.n.toString().padEnd(1024, ' ');
        })();
        return Object.assign(body, { close: () => void closes++ });
      };
      const server = express();
      server.use(connectionClosing(guard, { logger: quiet }));
      server.use('/stream', gateway(app, { logger: quiet, abortGrace: GRACE_MS }));
      const url = await harness.listen(server);
      await hangUpMidStream(`${url}/stream`);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(closes).toBe(1);
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });

    it("sends an app failure before the headers to Express's error handler once", async () => {
      const pool = harness.pool(1);
      const guard = new ConnectionClosingMiddleware({ pool, abortGrace: GRACE_MS });
      const failure = new Error('gateway bug');
      const errors: unknown[] = [];
      const server = express();
      server.use(connectionClosing(guard, { logger: quiet }));
      server.use('/gw', gateway(async (env) => {
        await (await leasesFor(env.scope)!.get<pg.Client>('default')).query('SELECT 1');
        throw failure;
      }, { logger: quiet }));
      server.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        errors.push(error);
        res.status(500).send('Internal Server Error');
      });
      const url = await harness.listen(server);
      expect((await fetch(`${url}/gw`)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(errors).toEqual([failure]);
    });
  });

  describe('behind compression()', () => {
    it('has its body compressed by the middleware, and closes it once', async () => {
      let closes = 0;
      const text = 'closeguard '.repeat(2000);
      const server = express();
      server.use(compression({ threshold: 0 }));
      server.use('/gz', gateway((_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        return Object.assign([text.slice(0, 5000), text.slice(5000)], { close: () => void closes++ });
      }, { logger: quiet }));
      const url = await harness.listen(server);
      const response = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        import('node:http').then(({ get }) => get(`${url}/gz`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        }).on('error', reject), reject);
      });
      expect(response.encoding).toBe('gzip');
      expect(gunzipSync(response.body).toString()).toBe(text);
      await eventually(() => expect(closes).toBe(1));
    });
  });
});
