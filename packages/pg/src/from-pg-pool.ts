import { CloseguardTypeError, poolPolicy, type PoolLike } from '@closeguard/core';
import type pg from 'pg';
import { watch } from './client-state.ts';
import { pgPolicy } from './policy.ts';

/**
 * Lets a `pg.Pool` serve as ConnectionClosingMiddleware's pool: `acquire()` is `connect()`,
 * `release(c)` is `c.release()`, `destroy(c)` is `c.release(true)`, with the pg release policy.
 * @example
 * const guard = new ConnectionClosingMiddleware({ pool: fromPgPool(new pg.Pool({ max: 10 })) });
 */
export function fromPgPool(pgPool: pg.Pool): PoolLike<pg.PoolClient> {
  if (typeof (pgPool as Partial<pg.Pool> | null)?.connect !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', 'fromPgPool(pool) takes a pg.Pool');
  }
  const max = (pgPool as pg.Pool & { options?: { max?: number } }).options?.max ?? 10;
  return {
    async acquire() {
      const client = await pgPool.connect();
      watch(client);
      return client;
    },
    release: (client) => client.release(),
    destroy: (client) => client.release(true),
    max,
    get size() {
      return pgPool.totalCount;
    },
    get available() {
      return pgPool.idleCount;
    },
    get borrowed() {
      return pgPool.totalCount - pgPool.idleCount;
    },
    get pending() {
      return pgPool.waitingCount;
    },
    drain: () => pgPool.end(),
    [poolPolicy]: pgPolicy,
  } as PoolLike<pg.PoolClient>;
}
