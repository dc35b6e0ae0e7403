import http from 'node:http';
import { Readable } from 'node:stream';
import type { Pool } from 'generic-pool';
import Koa from 'koa';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { closeCursor } from '@closeguard/pg';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions } from '@closeguard/core';
import { connectionClosing, type ConnectionClosing } from '@closeguard/koa';
import { PoolHarness, usePoolHarness } from '../../conformance/src/postgres/harness.ts';

export { hangUpMidStream, hangUpWhen } from '../../conformance/src/support/hang-up.ts';
export { eventually } from '../../conformance/src/postgres/harness.ts';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;
export const quiet = { error: () => undefined };

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

/** What a cursor stream reports: rows read so far, and whether the cursor was closed. */
export interface CursorProbe {
  rows: number;
  closed: number;
  /** Called as the cursor starts closing: the connection must still be the request's then. */
  closing?: () => void;
}

/** The rows of generate_series(1, count) from a pg-cursor on `client`, as NDJSON lines. */
export async function* cursorRows(client: pg.Client, count: number, probe: CursorProbe): AsyncGenerator<string> {
  const cursor = client.query(new Cursor('SELECT g, repeat($1, 100) AS pad FROM generate_series(1, $2::int) g', ['x', count]));
  try {
    for (let batch = await cursor.read(100); batch.length > 0; batch = await cursor.read(100)) {
      probe.rows += batch.length;
      yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
    }
  } finally {
    probe.closing?.();
    await closeCursor(cursor, client);
    probe.closed++;
  }
}

/** The same rows as a byte Readable, the way a Koa route sets `ctx.body`. */
export function cursorStream(client: pg.Client, count: number, probe: CursorProbe): Readable {
  return Readable.from(cursorRows(client, count, probe), { objectMode: false });
}

/** The distinct error objects among app 'error' emissions. */
export function unique(errors: readonly unknown[]): unknown[] {
  return [...new Set(errors)];
}
