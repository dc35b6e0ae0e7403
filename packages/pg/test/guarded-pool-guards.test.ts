import { createServer } from 'node:http';
import express from 'express';
import { describe, expect, it } from 'vitest';
import type { LeakReport } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { backendsFor, createGate } from '@closeguard/conformance';
import { activeQueriesOf, eventually, get, GRACE_MS, hosts, quiet, useGuardedHarness } from './guarded-harness.ts';

const harness = useGuardedHarness();

describe.each(hosts)('GuardedPool with the guard on $name', (host) => {
  it('ties the checkouts of two GuardedPools of one guard to the request, each reclaimed under its alias', async () => {
    const main = harness.guardedPool(1);
    const reports = harness.guardedPool(1);
    const leaks: LeakReport[] = [];
    const { url, guard } = await host.serve(harness, { pools: { default: main.pool, reports: reports.pool }, onLeak: (leak) => void leaks.push(leak) }, {
      '/both': async () => {
        const one = await main.pool.connect();
        const other = await reports.pool.connect();
        await one.query('BEGIN');
        await other.query('BEGIN');
        return {}; // neither released, both inside a transaction
      },
    });
    expect((await get(`${url}/both`)).status).toBe(200);
    await eventually(() => expect(harness.finished).toHaveLength(1));
    expect(harness.outAtFinish).toEqual([0]);
    expect(leaks.map((leak) => leak.alias).sort()).toEqual(['default', 'reports']);
    expect(guard.stats()).toMatchObject({ leased: 2, released: 0, destroyed: { abandoned: 2 }, leaksReclaimed: 2 });
    expect(Object.keys(guard.stats().pools).sort()).toEqual(['default', 'reports']);
  });

  it("drains checkouts in flight on guard.close(): cancels the query that holds the request, gives the client back, ends the pool", async () => {
    const { pool, name } = harness.guardedPool(2);
    const entered = createGate();
    const outcome = createGate<unknown>();
    const { url, guard } = await host.serve(harness, { pool }, {
      '/busy': async () => {
        const client = await pool.connect();
        try {
          entered.open();
          await client.query('SELECT pg_sleep(30)');
        } catch (error) {
          outcome.open(error);
          throw error;
        } finally {
          client.release();
        }
      },
    });
    void get(`${url}/busy`).catch(() => undefined); // shutdown cuts the response
    await entered.promise;
    await eventually(async () => expect((await activeQueriesOf(name)).some((query) => query.includes('pg_sleep'))).toBe(true));
    await guard.close({ timeout: 50 });
    expect(await outcome.promise).toMatchObject({ code: '57014' }); // query_canceled
    expect(pool.ending).toBe(true);
    await eventually(async () => expect(await backendsFor(name)).toBe(0));
    expect(harness.finished).toHaveLength(1);
    expect(guard.stats()).toMatchObject({ leased: 1, released: 1, leaksReclaimed: 0 });
  });
});

describe('GuardedPool behind nested guards (an Express sub-app with its own guard)', () => {
  it("gives each guard's GuardedPool back at the end of the request, and reports each leak to the guard that owns the pool", async () => {
    const outer = harness.guardedPool(1);
    const inner = harness.guardedPool(1);
    const outerLeaks: LeakReport[] = [];
    const innerLeaks: LeakReport[] = [];
    const sub = express();
    const innerHandler = connectionClosing({ pool: inner.pool, abortGrace: GRACE_MS, onLeak: (leak) => void innerLeaks.push(leak) }, { logger: quiet });
    sub.use(innerHandler);
    sub.get('/both', async (_req, res) => {
      await (await outer.pool.connect()).query('BEGIN');
      await (await inner.pool.connect()).query('BEGIN');
      res.json({}); // neither released
    });
    const app = express();
    const outerHandler = connectionClosing({ pool: outer.pool, abortGrace: GRACE_MS, onLeak: (leak) => void outerLeaks.push(leak) }, { logger: quiet });
    app.use(outerHandler);
    app.use('/sub', sub);
    const url = await harness.listen(createServer(app));
    expect((await get(`${url}/sub/both`)).status).toBe(200);
    await eventually(() => expect(harness.finished).toHaveLength(2)); // one per guard the request passed
    expect([outerLeaks.length, innerLeaks.length]).toEqual([1, 1]);
    expect(outerHandler.guard.stats()).toMatchObject({ leased: 1, released: 0, destroyed: { abandoned: 1 }, leaksReclaimed: 1 });
    expect(innerHandler.guard.stats()).toMatchObject({ leased: 1, released: 0, destroyed: { abandoned: 1 }, leaksReclaimed: 1 });
  });

  it("ties a checkout of the outer guard's GuardedPool to the request inside a sub-app whose guard has a plain pool", async () => {
    const outer = harness.guardedPool(1);
    const outerLeaks: LeakReport[] = [];
    const outerHandler = connectionClosing({ pool: outer.pool, abortGrace: GRACE_MS, onLeak: (leak) => void outerLeaks.push(leak) }, { logger: quiet });
    const sub = express();
    const innerHandler = connectionClosing({ pool: harness.createPool(1).pool, abortGrace: GRACE_MS }, { logger: quiet });
    expect(innerHandler.guard.asyncContext).toBe(false); // the sub-app's requests run in the outer guard's scope
    sub.use(innerHandler);
    sub.get('/:name', async (req, res) => {
      await (await req.db()).query('SELECT 1');
      await (await outer.pool.connect()).query('BEGIN');
      res.json({});
    });
    const app = express();
    app.use(outerHandler);
    app.use('/sub', sub);
    const url = await harness.listen(createServer(app));
    expect((await get(`${url}/sub/both`)).status).toBe(200);
    await eventually(() => expect(harness.finished).toHaveLength(2));
    expect(outerLeaks).toHaveLength(1);
    expect(outerLeaks[0]!.route).toBe('/sub/:name'); // the sub-app's mount path and its route
    expect(outerHandler.guard.stats()).toMatchObject({ leased: 1, released: 0, destroyed: { abandoned: 1 }, leaksReclaimed: 1 });
    expect(innerHandler.guard.stats()).toMatchObject({ leased: 1, released: 1 });
  });
});
