import Koa, { type Middleware } from 'koa';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware } from '@closeguard/core';
import { connectionClosing } from '@closeguard/koa';
import { eventually, GRACE_MS, quiet, useHarness } from './harness.ts';

// A sub-app mounted under a path (what koa-mount does: its middleware composed into the parent's
// chain, on the parent's ctx) with a guard of its own: the request passes both guards, each gives
// back what it leased, and ctx.db(alias) reaches the innermost guard that has the alias.
const harness = useHarness();

/** Mounts `sub` under `prefix` the way koa-mount does, minus its path rewriting (the routes here match the full path). */
function mount(prefix: string, sub: Koa): Middleware {
  const run = (index: number, ctx: Koa.Context, next: Koa.Next): Promise<void> => {
    const middleware = sub.middleware[index];
    return middleware === undefined ? next() : Promise.resolve(middleware(ctx, () => run(index + 1, ctx, next)));
  };
  return (ctx, next) => (ctx.path.startsWith(prefix) ? run(0, ctx, next) : next());
}

async function pid(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

describe('connectionClosing() in a sub-app behind another guard', () => {
  it('settles the request in both guards; ctx.db(alias) reaches the guard that has the alias', async () => {
    const outer = new ConnectionClosingMiddleware({ pool: harness.pool(1).pool, abortGrace: GRACE_MS });
    const inner = new ConnectionClosingMiddleware({ pools: { reports: harness.pool(1).pool }, abortGrace: GRACE_MS });
    const sub = new Koa();
    sub.use(connectionClosing(inner, { logger: quiet }));
    sub.use(async (ctx) => {
      const main = await pid(await ctx.db<pg.Client>());
      const reports = await pid(await ctx.db<pg.Client>('reports'));
      ctx.body = { distinct: main !== reports };
    });
    const app = new Koa();
    const closing = connectionClosing(outer, { logger: quiet });
    app.use(closing);
    app.use(mount('/sub', sub));
    const url = await harness.listenKoa(app);

    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${url}/sub/report`);
      expect(await response.json()).toEqual({ distinct: true });
    }
    await eventually(() => {
      expect(outer.stats()).toMatchObject({ inFlight: 0, leased: 3, released: 3 });
      expect(inner.stats()).toMatchObject({ inFlight: 0, leased: 3, released: 3 });
    });
  });

  it('lets the same guard met twice step aside: one lease, one give-back', async () => {
    const guard = new ConnectionClosingMiddleware({ pool: harness.pool(1).pool, abortGrace: GRACE_MS });
    const closing = connectionClosing(guard, { logger: quiet });
    const sub = new Koa();
    sub.use(closing);
    sub.use(async (ctx) => {
      ctx.body = { pid: await pid(await ctx.db<pg.Client>()) };
    });
    const app = new Koa();
    app.use(closing);
    app.use(mount('/sub', sub));
    const url = await harness.listenKoa(app);

    expect((await fetch(`${url}/sub/one`)).status).toBe(200);
    await eventually(() => expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 1, released: 1 }));
  });
});
