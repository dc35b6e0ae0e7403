import { createServer, Server } from 'node:http';
import type { Express } from 'express';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import { PoolHarness, usePoolHarness } from '@closeguard/conformance';

export { eventually, hangUpMidStream, hangUpWhen, quiet } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

/** Everything a test made, disposed after it. */
export class Harness extends PoolHarness {
  constructor() {
    super('express');
  }

  /** A pool of real PostgreSQL clients tagged with a unique application_name. */
  pool(max: number): Pool<pg.Client> {
    return this.createPool(max).pool;
  }

  /** Serves an Express app (or a server) on port 0. */
  override listen(app: Express | Server): Promise<string> {
    return super.listen(app instanceof Server ? app : createServer(app));
  }
}

/** A harness for this test file: after each test, asserts everything was given back, then disposes. */
export function useHarness(): Harness {
  return usePoolHarness(new Harness());
}
