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
  watchClientsOf(pgPool);
  return {
    // pg.Pool's own promise, as it is: its clients are watched as they are handed out (below).
    acquire: () => pgPool.connect(),
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

const watchedPools = new WeakSet<pg.Pool>();

/**
 * Watches every client `pgPool` hands out: pg-pool emits 'acquire' synchronously, before the
 * caller gets the client. Cheaper than an async `acquire()` that awaits `connect()` to watch it (a
 * promise and a turn of the microtask queue per lease); once per pool, however many wrappers.
 */
function watchClientsOf(pgPool: pg.Pool): void {
  if (watchedPools.has(pgPool)) return;
  watchedPools.add(pgPool);
  pgPool.on('acquire', watch);
}
