import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions } from '@closeguard/core';
import { connectionClosing, type ConnectionClosing } from '@closeguard/hono';
import { PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';

export { eventually, hangUpMidStream, hangUpWhen, quiet } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

/** Everything a test made, disposed after it. */
export class Harness extends PoolHarness {
  constructor() {
    super('hono');
  }

  /** A pool of real PostgreSQL clients tagged with a unique application_name. */
  pool(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    return this.createPool(max, extra);
  }

  /** `connectionClosing(options)` with a short abortGrace, logging nowhere. */
  closing(options: ConnectionClosingOptions): ConnectionClosing {
    return connectionClosing(new ConnectionClosingMiddleware({ abortGrace: GRACE_MS, ...options }), { logger: quiet });
  }

  /** Serves `app` with @hono/node-server on port 0; the server is closed after the test. */
  serve(app: { fetch: Parameters<typeof createAdaptorServer>[0]['fetch'] }): Promise<string> {
    return this.listen(createAdaptorServer({ fetch: app.fetch }) as Server);
  }
}

/** A harness for this test file: after each test, asserts everything was given back, then disposes. */
export function useHarness(): Harness {
  return usePoolHarness(new Harness());
}
