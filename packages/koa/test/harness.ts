import http from 'node:http';
import type { Pool } from 'generic-pool';
import Koa from 'koa';
import type pg from 'pg';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions } from '@closeguard/core';
import { connectionClosing, type ConnectionClosing } from '@closeguard/koa';
import { PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';

export { eventually, hangUpMidStream, hangUpWhen, quiet } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

/** A Koa app under test, what its app 'error' listener saw, and its guard. */
export interface Served {
  url: string;
  koa: Koa;
  guard: ConnectionClosingMiddleware;
  /** Every app 'error' emission, in order (Koa emits some errors twice). */
  errors: unknown[];
}

/** Everything a test made, disposed after it. */
export class Harness extends PoolHarness {
  constructor() {
    super('koa');
  }

  /** A pool of real PostgreSQL clients tagged with a unique application_name. */
  pool(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    return this.createPool(max, extra);
  }

  /**
   * A Koa app with `connectionClosing(options)` mounted first (after `before`, if given) and an
   * app 'error' listener that records; `build` adds the routes.
   */
  async serve(options: ConnectionClosingOptions, build: (koa: Koa, closing: ConnectionClosing) => void, before?: Koa.Middleware): Promise<Served> {
    const koa = new Koa();
    const errors: unknown[] = [];
    koa.on('error', (error: unknown) => void errors.push(error));
    if (before) koa.use(before);
    const closing = connectionClosing(new ConnectionClosingMiddleware({ abortGrace: GRACE_MS, ...options }), { logger: quiet });
    koa.use(closing);
    build(koa, closing);
    const url = await this.listenKoa(koa);
    return { url, koa, guard: closing.guard, errors };
  }

  /** Listens with `koa` on port 0; the server is closed after the test. */
  listenKoa(koa: Koa): Promise<string> {
    const handle = koa.callback();
    return this.listen(http.createServer((req, res) => void handle(req, res)));
  }
}

/** A harness for this test file: after each test, asserts everything was given back, then disposes. */
export function useHarness(): Harness {
  return usePoolHarness(new Harness());
}

/** The distinct error objects among app 'error' emissions. */
export function unique(errors: readonly unknown[]): unknown[] {
  return [...new Set(errors)];
}
