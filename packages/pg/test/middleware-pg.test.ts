import Cursor from 'pg-cursor';
import { closeCursor } from '@closeguard/pg';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, type LeakReport } from '@closeguard/core';
import { backendPids, terminateBackend } from '../../conformance/src/postgres/index.ts';
import { eventually, useHarness, hangUpMidStream, hangUpWhen, json } from './harness.ts';

const harness = useHarness();

describe('ConnectionClosingMiddleware on PostgreSQL', () => {
  describe('when the app throws after connection()', () => {
    it('answers 500 and releases the client', async () => {
      const { pool } = harness.pool(2);
      const { url, guard } = await harness.serve(async () => {
        await (await connection<pg.Client>()).query('SELECT 1');
        throw new Error('handler bug');
      }, { pool });
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
    });
  });

  describe("when the app's promise rejects after connection()", () => {
    it('answers 500 and releases the client', async () => {
      const { pool } = harness.pool(2);
      const { url, guard } = await harness.serve(async () => {
        const client = await connection<pg.Client>();
        await client.query('SELECT 1');
        return Promise.reject(new Error('async bug'));
      }, { pool });
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
    });
  });

  describe('when the client hangs up during pg_sleep', () => {
    it('destroys the busy client and its query ends server-side', async () => {
      const { pool, name } = harness.pool(2);
      let querying = false;
      const { url, guard } = await harness.serve(async (_env, start) => {
        const client = await connection<pg.Client>();
        querying = true;
        await client.query('SELECT pg_sleep(30)').catch(() => undefined);
        return json(start, 'slept');
      }, { pool });
      await hangUpWhen(url, () => querying);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
    });
  });

  describe('when the client hangs up while waiting in the pool queue', () => {
    it('abandons the wait; the client that comes later goes back to the pool', async () => {
      const { pool } = harness.pool(1);
      const { url, guard } = await harness.serve(async (env, start) => {
        const client = await connection<pg.Client>();
        if (env.path === '/holder') await client.query('SELECT pg_sleep(0.5)');
        return json(start, 'ok');
      }, { pool, backpressure: 2 });
      const holder = fetch(`${url}/holder`);
      await eventually(() => expect(pool.borrowed).toBe(1));
      await hangUpWhen(`${url}/waiter`, () => pool.pending === 1);
      await eventually(() => expect(guard.stats().abandonedWaits).toBe(1));
      expect((await holder).status).toBe(200);
      // The late client was taken from the pool and given back: the books balance (leased − released − destroyed = held now).
      await eventually(() => expect(guard.stats()).toMatchObject({ leased: 2, released: 2 }));
      const { leased, released, destroyed } = guard.stats();
      expect(leased - released - destroyed.unusable - destroyed.obsolete - destroyed.abandoned).toBe(0);
    });
  });

  describe('when the backend of a leased client is terminated', () => {
    it('destroys the client and serves the next request', async () => {
      const { pool, name } = harness.pool(1);
      const { url, guard } = await harness.serve(async (env, start) => {
        const client = await connection<pg.Client>();
        if (env.path === '/kill') {
          const [pid] = await backendPids(name);
          await terminateBackend(pid!);
          await client.query('SELECT 1').catch(() => undefined);
        }
        const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
        return json(start, rows[0]?.one);
      }, { pool });
      expect((await fetch(`${url}/kill`)).status).toBe(500);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await (await fetch(url)).json()).toBe(1);
    });
  });

  describe('when a statement fails inside a transaction', () => {
    it('destroys the client in the aborted transaction; the next request sees a clean one', async () => {
      const { pool } = harness.pool(1);
      const { url, guard } = await harness.serve(async (env, start) => {
        const client = await connection<pg.Client>();
        if (env.path === '/fail') {
          await client.query('BEGIN');
          await client.query('SELECT 1/0').catch(() => undefined);
          return json(start, 'left the failed transaction');
        }
        const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
        return json(start, rows[0]?.one);
      }, { pool });
      await (await fetch(`${url}/fail`)).text();
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await (await fetch(url)).json()).toBe(1);
    });
  });

  describe('when the app leaves a transaction open', () => {
    it('rolls it back and releases the client', async () => {
      const { pool } = harness.pool(1);
      const { url, guard } = await harness.serve(async (env, start) => {
        const client = await connection<pg.Client>();
        if (env.path === '/open') {
          await client.query('BEGIN');
          await client.query('CREATE TEMP TABLE left_open (id int)');
          return json(start, 'open');
        }
        const { rows } = await client.query<{ exists: boolean }>("SELECT to_regclass('pg_temp.left_open') IS NOT NULL AS exists");
        return json(start, rows[0]?.exists);
      }, { pool });
      await (await fetch(`${url}/open`)).text();
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(await (await fetch(url)).json()).toBe(false);
      expect(guard.stats().destroyed.unusable).toBe(0);
    });
  });

  describe('with maxAge', () => {
    it('destroys a client older than maxAge at request end', async () => {
      const { pool } = harness.pool(1);
      const { url, guard } = await harness.serve(async (_env, start) => {
        await (await connection<pg.Client>()).query('SELECT 1');
        return json(start, 'ok');
      }, { pool, maxAge: 0 });
      await (await fetch(url)).text();
      await (await fetch(url)).text();
      await eventually(() => expect(guard.stats().destroyed.obsolete).toBe(2));
    });
  });

  describe('with healthCheck', () => {
    it('replaces a reused client whose backend was killed', async () => {
      const { pool, name } = harness.pool(1);
      const { url, guard } = await harness.serve(async (_env, start) => {
        const { rows } = await (await connection<pg.Client>()).query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        return json(start, rows[0]?.pid);
      }, { pool, healthCheck: true });
      const first = (await (await fetch(url)).json()) as number;
      await eventually(() => expect(guard.stats().released).toBe(1));
      await terminateBackend(first);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
      const second = (await (await fetch(url)).json()) as number;
      // Replaced by createPool's acquire(), which knows the connection ended (or, had pg not heard yet, by the check).
      expect(second).not.toBe(first);
      expect(guard.stats().destroyed.unusable).toBeLessThanOrEqual(1);
    });
  });

  describe('when rows stream from a cursor and the client hangs up mid-stream', () => {
    it('closes the cursor and releases the client once', async () => {
      const { pool } = harness.pool(1);
      let cursorClosed = 0;
      const { url, guard } = await harness.serve(async (_env, start) => {
        const client = await connection<pg.Client>();
        const cursor = client.query(new Cursor('SELECT g, repeat($1, 100) AS pad FROM generate_series(1, 1000000) g', ['x']));
        start(200, { 'content-type': 'application/x-ndjson' });
        return (async function* () {
          try {
            for (let rows = await cursor.read(100); rows.length > 0; rows = await cursor.read(100)) {
              yield rows.map((row) => `${JSON.stringify(row)}\n`).join('');
            }
          } finally {
            await closeCursor(cursor, client);
            cursorClosed++;
          }
        })();
      }, { pool });
      await hangUpMidStream(url);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(cursorClosed).toBe(1);
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe("under four times the pool's max in concurrent requests", () => {
    it('serves what fits, queues the excess without acquire timeouts, and sheds the rest with 503', async () => {
      const { pool } = harness.pool(2, { acquireTimeoutMillis: 2_000 });
      const { url, guard } = await harness.serve(async (_env, start) => {
        await (await connection<pg.Client>()).query('SELECT pg_sleep(0.2)');
        return json(start, 'ok');
      }, { pool, queueLimit: 4, queueTimeout: 10_000 });
      const responses = await Promise.all(Array.from({ length: 8 }, () => fetch(url)));
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 503, 503]);
      expect(responses.find((response) => response.status === 503)?.headers.get('retry-after')).toBe('1');
      expect(guard.stats()).toMatchObject({ rejected: 2, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
    });
  });

  describe('close() with requests in flight', () => {
    it('lets them finish, then drains the pool', async () => {
      const { pool } = harness.pool(2);
      const { url, guard } = await harness.serve(async (_env, start) => {
        await (await connection<pg.Client>()).query('SELECT pg_sleep(0.2)');
        return json(start, 'finished');
      }, { pool });
      const inFlight = fetch(url);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      await guard.close();
      expect(await (await inFlight).json()).toBe('finished');
      expect(pool.size).toBe(0);
    });
  });

  describe('with two pools under two aliases', () => {
    it('leases from each and gives both back', async () => {
      const main = harness.pool(1);
      const analytics = harness.pool(1);
      const { url, guard } = await harness.serve(async (_env, start) => {
        const [a, b] = await Promise.all([connection<pg.Client>('main'), connection<pg.Client>('analytics')]);
        const names = await Promise.all([a, b].map(async (client) => (await client.query<{ n: string }>('SELECT current_setting($1) AS n', ['application_name'])).rows[0]?.n));
        return json(start, names);
      }, { pools: { main: main.pool, analytics: analytics.pool } });
      expect(await (await fetch(url)).json()).toEqual([main.name, analytics.name]);
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });

  describe('track(pool)', () => {
    it('reclaims a client acquired by hand and reports the acquiring stack and route', async () => {
      const { pool } = harness.pool(1);
      const leaks: LeakReport[] = [];
      const { url, guard } = await harness.serve(async function reportRoute(_env, start) {
        const client = await tracked.acquire(); // the bug: no release()
        await client.query('SELECT 1');
        return json(start, 'leaked');
      }, { pool, onLeak: (leak) => void leaks.push(leak) });
      const tracked = guard.track(pool);
      await (await fetch(url)).text();
      await eventually(() => expect(leaks).toHaveLength(1));
      expect(leaks[0]?.stack).toMatch(/reportRoute/);
      expect(leaks[0]?.heldMs).toBeGreaterThanOrEqual(0);
      expect(guard.stats().leaksReclaimed).toBe(1);
    });
  });
});
