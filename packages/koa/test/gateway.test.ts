import { gunzipSync } from 'node:zlib';
import Koa from 'koa';
import compress from 'koa-compress';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, type GatewayApp, type GatewayBody } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { gateway } from '@closeguard/koa';
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

describe('gateway(app) in Koa', () => {
  describe('with a prefix', () => {
    it('serves paths under it with the prefix stripped, and passes other paths to next()', async () => {
      const { app, closes } = echoApp();
      const koa = new Koa();
      koa.use(gateway(app, { prefix: '/api/', logger: quiet }));
      koa.use((ctx) => {
        ctx.body = `next: ${ctx.path}`;
      });
      const url = await harness.listenKoa(koa);
      expect(await (await fetch(`${url}/api/items?x=1`)).json()).toEqual({ path: '/items', query: 'x=1', host: 'koa' });
      expect(await (await fetch(`${url}/api?y=2`)).json()).toEqual({ path: '/', query: 'y=2', host: 'koa' });
      expect(await (await fetch(`${url}/apix`)).text()).toBe('next: /apix');
      expect(await (await fetch(`${url}/other`)).text()).toBe('next: /other');
      await eventually(() => expect(closes()).toBe(2));
    });
  });

  describe('behind koa-compress', () => {
    it('hands Koa the body as a stream, so koa-compress gzips it; close() runs once', async () => {
      let closes = 0;
      const text = 'compress me\n'.repeat(2_000);
      const koa = new Koa();
      koa.use(compress({ threshold: 0 }));
      koa.use(gateway((_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        function* body(): Generator<string> {
          for (let i = 0; i < 4; i++) yield text.slice(i * 6_000, (i + 1) * 6_000);
        }
        return Object.assign(body(), { close: () => void closes++ });
      }));
      const url = await harness.listenKoa(koa);
      const response = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        import('node:http').then(({ get }) => {
          get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
          }).on('error', reject);
        }, reject);
      });
      expect(response.encoding).toBe('gzip');
      expect(gunzipSync(response.body).toString()).toBe(text);
      await eventually(() => expect(closes).toBe(1));
    });
  });

  describe('behind connectionClosing()', () => {
    it("shares the request's scope: leasesFor(env.scope), ctx.db() and connection() give the same client, released once", async () => {
      const { pool } = harness.pool(1);
      let closes = 0;
      const app: GatewayApp = async (env, start) => {
        const leased = await leasesFor(env.scope)!.get<pg.Client>('default');
        const viaConnection = await connection<pg.Client>();
        const viaCtx = await (env.host.native as Koa.Context).db<pg.Client>();
        const { rows } = await leased.query<{ one: number }>('SELECT 1 AS one');
        start(200, { 'content-type': 'application/json' });
        return Object.assign([JSON.stringify({ one: rows[0]!.one, same: leased === viaConnection && leased === viaCtx })], { close: () => void closes++ });
      };
      const { url, guard } = await harness.serve({ pool, asyncContext: true }, (koa) => koa.use(gateway(app)));
      expect(await (await fetch(url)).json()).toEqual({ one: 1, same: true });
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().leased).toBe(1);
      expect(closes).toBe(1);
    });

    it('keeps the lease while a cursor streams, and on a hang-up closes the body once before the client goes back', async () => {
      const { pool } = harness.pool(1);
      let releasedAtClose: number | undefined;
      const probe = createCursorProbe({ onClosing: () => (releasedAtClose = guard.stats().released) });
      let closes = 0;
      let closedBeforeRelease: boolean | undefined;
      const app: GatewayApp = async (env, start) => {
        const client = await leasesFor(env.scope)!.get<pg.Client>('default');
        start(200, { 'content-type': 'application/x-ndjson' });
        const body: GatewayBody = Object.assign(cursorRows(client, 1_000_000, probe), {
          close: () => {
            closes++;
            closedBeforeRelease = guard.stats().released === 0;
          },
        });
        return body;
      };
      const { url, guard } = await harness.serve({ pool }, (koa) => koa.use(gateway(app)));
      await hangUpMidStream(url);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(probe.closed).toBe(1);
      expect(closes).toBe(1);
      expect(closedBeforeRelease).toBe(true);
      expect(releasedAtClose).toBe(0);
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });

    it("sends a failure before the headers to Koa's error path", async () => {
      const { pool } = harness.pool(1);
      const failure = new Error('the gateway app failed');
      const { url, guard, errors } = await harness.serve({ pool }, (koa) =>
        koa.use(gateway(async (env) => {
          await (await leasesFor(env.scope)!.get<pg.Client>('default')).query('SELECT 1');
          throw failure;
        })),
      );
      const response = await fetch(url);
      expect(response.status).toBe(500);
      expect(await response.text()).toBe('Internal Server Error');
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(errors).toEqual([failure]);
    });
  });

  describe('for a HEAD request', () => {
    it('sends no body and closes it once', async () => {
      let closes = 0;
      const koa = new Koa();
      koa.use(gateway((_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        return Object.assign(['not sent'], { close: () => void closes++ });
      }));
      const url = await harness.listenKoa(koa);
      const response = await fetch(url, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('');
      await eventually(() => expect(closes).toBe(1));
    });
  });
});

describe('gateway(app, options) with bad options', () => {
  it('throws a TypeError naming what is wrong', () => {
    const app: GatewayApp = () => [];
    expect(() => gateway('app' as never)).toThrow(/takes a gateway app function; received string/);
    for (const name of ['abortGrace', 'bodyLimit', 'highWaterMark']) expect(() => gateway(app, { [name]: -1 })).toThrow(new RegExp(`option ${name}`));
    expect(() => gateway(app, { logger: {} as never })).toThrow(/option logger/);
    expect(() => gateway(app, { prefix: 'api' })).toThrow(/option prefix/);
    expect(() => gateway(app, 5 as never)).toThrow(TypeError);
  });
});
