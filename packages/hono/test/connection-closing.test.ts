import { Hono, type Context } from 'hono';
import type pg from 'pg';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { isCloseguardError, signals, type CloseguardError, type RegisteredConnection, type RequestFinishedMessage } from '@closeguard/core';
import { connectionClosing, type ConnectionClosingEnv, type Db } from '@closeguard/hono';
import { eventually, hangUpWhen, quiet, useHarness } from './harness.ts';

const harness = useHarness();

describe('connectionClosing(options) on PostgreSQL', () => {
  describe('c.var.db() and c.get(\'db\')', () => {
    it('are one function, typed through Hono\'s Variables, that leases one client for the request', async () => {
      const { pool } = harness.pool(2);
      const closing = harness.closing({ pool });
      const app = new Hono().use(closing).get('/', async (c) => {
        expectTypeOf(c.var.db).toEqualTypeOf<Db>();
        expectTypeOf(c.get('db')).toEqualTypeOf<Db>();
        expectTypeOf(c.var.db()).toEqualTypeOf<Promise<RegisteredConnection>>();
        const [a, b] = [await c.var.db<pg.Client>(), await c.get('db')<pg.Client>()];
        return c.json({ same: a === b, sameFunction: c.var.db === c.get('db'), one: (await a.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one });
      });
      const url = await harness.serve(app);
      expect(await (await fetch(url)).json()).toEqual({ same: true, sameFunction: true, one: 1 });
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(closing.guard.stats().leased).toBe(1);
    });

    it('are typed on an app declared with ConnectionClosingEnv, and not on one without it', () => {
      const typed = new Hono<ConnectionClosingEnv>();
      typed.get('/', (c) => {
        expectTypeOf(c.var.db).toEqualTypeOf<Db>();
        return c.text('typed');
      });
      const untyped = new Hono();
      untyped.get('/', (c: Context) => {
        // @ts-expect-error without connectionClosing() in its type, an app's c.var has no db
        expectTypeOf(c.var.db).toEqualTypeOf<Db>();
        return c.text('untyped');
      });
      expectTypeOf(connectionClosing).returns.toHaveProperty('guard');
    });
  });

  describe('under overload', () => {
    it("answers 503 with Retry-After through Hono's default error handler", async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool, backpressure: 1, queueLimit: 0 });
      let sleeping = false;
      const app = new Hono().use(closing).get('/sleep', async (c) => {
        const client = await c.var.db<pg.Client>();
        sleeping = true;
        await client.query('SELECT pg_sleep(0.3)');
        return c.text('slept');
      }).get('/one', async (c) => c.json((await (await c.var.db<pg.Client>()).query('SELECT 1 AS one')).rows));
      const url = await harness.serve(app);
      const slow = fetch(`${url}/sleep`);
      await eventually(() => expect(sleeping).toBe(true));
      const shed = await fetch(`${url}/one`);
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(await shed.text()).toBe('Service Unavailable\n');
      expect((await slow).status).toBe(200);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
    });

    it('hands app.onError the 503 CloseguardError itself', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool, backpressure: 1, queueLimit: 0 });
      const seen: unknown[] = [];
      let sleeping = false;
      const app = new Hono().use(closing).get('/sleep', async (c) => {
        const client = await c.var.db<pg.Client>();
        sleeping = true;
        await client.query('SELECT pg_sleep(0.3)');
        return c.text('slept');
      }).get('/one', async (c) => c.json((await (await c.var.db<pg.Client>()).query('SELECT 1 AS one')).rows));
      app.onError((error, c) => {
        seen.push(error);
        return c.text('busy, come back later', 503, { 'retry-after': '5' });
      });
      const url = await harness.serve(app);
      const slow = fetch(`${url}/sleep`);
      await eventually(() => expect(sleeping).toBe(true));
      const shed = await fetch(`${url}/one`);
      expect([shed.status, shed.headers.get('retry-after'), await shed.text()]).toEqual([503, '5', 'busy, come back later']);
      expect(seen).toHaveLength(1);
      expect(isCloseguardError(seen[0], 'ERR_CLOSEGUARD_OVERLOADED')).toBe(true);
      expect((seen[0] as CloseguardError).status).toBe(503);
      await slow;
    });
  });

  describe('once the guard is closing', () => {
    it('refuses a new request with 503 and Retry-After, as a response the middleware before it sees', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const statuses: number[] = [];
      const app = new Hono()
        .use(async (c, next) => {
          await next();
          statuses.push(c.res.status);
        })
        .use(closing)
        .get('/', (c) => c.text('never'));
      const url = await harness.serve(app);
      await closing.guard.close();
      const refused = await fetch(url);
      expect([refused.status, refused.headers.get('retry-after'), await refused.text()]).toEqual([503, '1', 'Service Unavailable\n']);
      expect(statuses).toEqual([503]);
    });
  });

  describe('when a route throws', () => {
    it('hands the error to app.onError once and releases the connection once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const thrown = new Error('route failed: secret');
      const seen: unknown[] = [];
      const finished: string[] = [];
      const onFinished = (message: RequestFinishedMessage): void => void finished.push(message.reason);
      signals.requestFinished.subscribe(onFinished);
      harness.onDispose(() => Promise.resolve(signals.requestFinished.unsubscribe(onFinished)));
      const app = new Hono().use(closing).get('/', async (c) => {
        await (await c.var.db<pg.Client>()).query('SELECT 1');
        throw thrown;
      });
      app.onError((error, c) => {
        seen.push(error);
        return c.text('failed', 500);
      });
      const url = await harness.serve(app);
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(seen).toEqual([thrown]);
      await eventually(() => expect(finished).toEqual(['error']));
    });
  });

  describe('when the client hangs up while its handler still runs', () => {
    it('keeps the connection until the handler finished, then releases it once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool, abortGrace: 3_000 });
      const seen = { started: false, finished: false };
      const app = new Hono().use(closing).get('/', async (c) => {
        const client = await c.var.db<pg.Client>();
        seen.started = true;
        await client.query('SELECT pg_sleep(0.3)');
        await client.query('SELECT 1');
        seen.finished = true;
        return c.text('late');
      });
      const url = await harness.serve(app);
      await hangUpWhen(url, () => seen.started);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(seen.finished).toBe(true);
      expect(closing.guard.stats().destroyed.abandoned).toBe(0);
    });
  });

  describe('when the app is not served by @hono/node-server', () => {
    it("hands app.onError an ERR_CLOSEGUARD_INVALID_ENV error that says so", async () => {
      const { pool } = harness.pool(1);
      const seen: unknown[] = [];
      const app = new Hono().use(connectionClosing({ pool }, { logger: quiet })).get('/', (c) => c.text('never'));
      app.onError((error, c) => {
        seen.push(error);
        return c.text('failed', 500);
      });
      expect((await app.request('/')).status).toBe(500);
      expect(isCloseguardError(seen[0], 'ERR_CLOSEGUARD_INVALID_ENV')).toBe(true);
      expect((seen[0] as Error).message).toMatch(/@hono\/node-server/);
    });
  });
});
