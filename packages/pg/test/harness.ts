import http from 'node:http';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions, type GatewayApp } from '@closeguard/core';
import { requestListener } from '@closeguard/node';
import { PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';

export { eventually } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

/** Everything a test made, disposed after it. */
export class Harness extends PoolHarness {
  constructor() {
    super('test');
  }

  /** A pool of real PostgreSQL clients tagged with a unique application_name. */
  pool(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    return this.createPool(max, extra);
  }

  /** Serves `app` behind a guard on the node host, port 0. */
  async serve(app: GatewayApp, options: ConnectionClosingOptions): Promise<{ url: string; guard: ConnectionClosingMiddleware }> {
    const guard = new ConnectionClosingMiddleware({ asyncContext: true, abortGrace: GRACE_MS, ...options });
    const url = await this.listen(http.createServer(requestListener(guard.wrap(app), { logger: quiet, abortGrace: GRACE_MS })));
    return { url, guard };
  }
}

export function json(start: Parameters<GatewayApp>[1], value: unknown): string[] {
  start(200, { 'content-type': 'application/json' });
  return [JSON.stringify(value)];
}

/** A harness for this test file: after each test, asserts everything was given back, then disposes. */
export function useHarness(): Harness {
  return usePoolHarness(new Harness());
}
