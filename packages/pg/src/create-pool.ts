import { CloseguardTypeError, poolPolicy } from '@closeguard/core';
import genericPool, { type Factory, type Options, type Pool } from 'generic-pool';
import pg from 'pg';
import { wrapAcquire } from './acquire.ts';
import { watch } from './client-state.ts';
import { isUsable, pgPolicy } from './policy.ts';

const DEFAULTS = { max: 10, min: 0, acquireTimeoutMillis: 10_000 } as const satisfies Options;
const END_TIMEOUT_MS = 2_000;
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 2_000;

/**
 * A generic-pool `Pool` of connected `pg.Client`s, ready for ConnectionClosingMiddleware: it
 * carries the pg release policy (rollback, unusable detection, cancel), fails fast when the
 * database is down, and ends clients on destroy.
 * @param pgConfig a `pg.Client` config or a connection string
 * @param poolOptions generic-pool options; `acquireTimeoutMillis` defaults to 10000 (never unbounded)
 * @example
 * const pool = createPool(process.env.DATABASE_URL, { max: 10 });
 */
export function createPool(pgConfig: pg.ClientConfig | string = {}, poolOptions: Options = {}): Pool<pg.Client> {
  const options: Options = { ...DEFAULTS, ...poolOptions };
  if (!(typeof options.acquireTimeoutMillis === 'number' && options.acquireTimeoutMillis > 0)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', 'poolOptions.acquireTimeoutMillis must be a number > 0: without it generic-pool waits forever when the database is down');
  }
  const backoff = createBackoff();
  const factory: Factory<pg.Client> = {
    async create() {
      await backoff.wait();
      const client = new pg.Client(pgConfig);
      watch(client);
      try {
        await client.connect();
      } catch (error) {
        backoff.failed();
        throw error;
      }
      backoff.succeeded();
      return client;
    },
    destroy: endClient,
    validate: (client) => Promise.resolve(isUsable(client)),
  };
  const pool = genericPool.createPool(factory, options);
  Object.defineProperty(pool, poolPolicy, { value: pgPolicy });
  wrapAcquire(pool);
  return pool;
}

/** Ends a client, bounded: a dead socket must not hold up the pool. */
async function endClient(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, END_TIMEOUT_MS);
  });
  await Promise.race([client.end().catch(() => undefined), expired]);
  clearTimeout(timer);
}

/**
 * generic-pool retries a failed create at once, for as long as anyone waits: a hot loop against a
 * database that is down. Space the attempts out, doubling up to MAX_RETRY_MS, until one succeeds.
 */
function createBackoff(): { wait(): Promise<void>; failed(): void; succeeded(): void } {
  let delayMs = 0;
  return {
    wait: () => (delayMs === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delayMs))),
    failed: () => {
      delayMs = Math.min(MAX_RETRY_MS, delayMs === 0 ? FIRST_RETRY_MS : delayMs * 2);
    },
    succeeded: () => {
      delayMs = 0;
    },
  };
}
