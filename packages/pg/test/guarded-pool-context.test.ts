// Async context is process-wide state: this file makes a GuardedPool that no guard is given, apart
// from the other GuardedPool tests.
import { createServer } from 'node:http';
import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import { ConnectionClosingMiddleware } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { eventually, get, GRACE_MS, quiet, useGuardedHarness } from './guarded-harness.ts';

const harness = useGuardedHarness();

describe('async context and GuardedPool', () => {
  it('is off for a guard while no GuardedPool exists, and on for a guard given one', () => {
    const plain = new ConnectionClosingMiddleware({ pool: harness.createPool(1).pool });
    expect(plain.asyncContext).toBe(false);
    const { pool } = harness.guardedPool(1);
    expect(new ConnectionClosingMiddleware({ pool }).asyncContext).toBe(true);
    expect(plain.asyncContext).toBe(false); // every GuardedPool has its guard
  });

  it('warns once when a GuardedPool no guard was given is used inside a request, and leaves its checkouts to the app', async () => {
    const logger = { error: vi.fn(), warn: vi.fn() };
    const { pool: stray } = harness.guardedPool(1, { logger });
    const handler = connectionClosing({ pool: harness.createPool(1).pool, abortGrace: GRACE_MS }, { logger: quiet });
    // A GuardedPool no guard was given turns async context on, so its use inside a request is seen.
    expect(handler.guard.asyncContext).toBe(true);
    let forgotten: pg.PoolClient | undefined;
    const app = express();
    app.use(handler);
    app.get('/query', async (_req, res) => void res.json((await stray.query('SELECT 1 AS one')).rows[0]));
    app.get('/forget', async (_req, res) => {
      forgotten = await stray.connect();
      res.json({});
    });
    const url = await harness.listen(createServer(app));
    expect(await get(`${url}/query`)).toEqual({ status: 200, body: '{"one":1}' });
    expect(await get(`${url}/query`)).toEqual({ status: 200, body: '{"one":1}' });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]![0]).toMatch(/GuardedPool was used inside a request \(GET \/query\) but no guard was given it.*connectionClosing\(\{ pool \}\)/);
    expect((await get(`${url}/forget`)).status).toBe(200);
    await eventually(() => expect(harness.finished).toHaveLength(3));
    expect(stray.totalCount - stray.idleCount).toBe(1); // not the request's: the app still holds it
    forgotten!.release();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.error).not.toHaveBeenCalled();
    // Given to a guard, it no longer keeps async context on for the others.
    new ConnectionClosingMiddleware({ pool: stray });
    expect(handler.guard.asyncContext).toBe(false);
  });
});
