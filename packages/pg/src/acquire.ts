import { CloseguardError } from '@closeguard/core';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import { isUsable } from './policy.ts';

/** The part of generic-pool 3's parsed options `acquire()` reads (`pool._config`). */
interface AcquireConfig {
  acquireTimeoutMillis: number | null | undefined;
  testOnBorrow: boolean;
}

/**
 * What `acquire()` adds to generic-pool's:
 * - a client whose connection ended while it sat idle (a restart or failover,
 *   pg_terminate_backend, idle_session_timeout) or that was left in a failed transaction is
 *   destroyed, never handed out, and another one taken, for every caller of `acquire()` (a guard,
 *   `guard.track(pool)`, code of the app's own). generic-pool's `validate` would do it too, but
 *   only with `testOnBorrow`, at the cost of a promise on every acquire; this is one synchronous check;
 * - generic-pool keeps retrying a failed `create` and never tells the waiting acquirers: each
 *   failure goes to the longest waiter, and its timeout becomes a coded error;
 * - an acquire served at once arms no timer (see `serveAtOnce`).
 */
export function wrapAcquire(pool: Pool<pg.Client>): void {
  const waiters: Array<(error: Error) => void> = [];
  const acquire = pool.acquire.bind(pool);
  const atOnce = serveAtOnce(pool, acquire);

  /** An acquire that may wait for a client to come back or to be created. */
  const wait = (priority?: number): Promise<pg.Client> =>
    new Promise<pg.Client>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        waiters.splice(waiters.indexOf(fail) >>> 0, 1);
        reject(error);
      };
      const take = (): void => {
        acquire(priority).then(
          (client) => {
            if (!isUsable(client)) {
              pool.destroy(client).catch(() => undefined); // it ends the client, bounded (endClient)
              return settled ? undefined : take();
            }
            if (settled) return void pool.release(client);
            settled = true;
            waiters.splice(waiters.indexOf(fail) >>> 0, 1);
            resolve(client);
          },
          (error: Error) => fail(error.name === 'TimeoutError' ? acquireTimeout(error) : error),
        );
      };
      waiters.push(fail);
      take();
    });

  pool.acquire = (priority?: number) => {
    const served = atOnce?.(priority);
    if (served === undefined) return wait(priority);
    // Handed an idle client in this very call: no create can fail for it, no timeout can expire.
    return served.then((client) => {
      if (isUsable(client)) return client;
      pool.destroy(client).catch(() => undefined);
      return pool.acquire(priority);
    });
  };
  pool.on('factoryCreateError', (error: Error) => waiters[0]?.(error));
}

function acquireTimeout(cause: Error): CloseguardError {
  return new CloseguardError('ERR_CLOSEGUARD_ACQUIRE_TIMEOUT', 'no PostgreSQL connection within acquireTimeoutMillis', { cause, retryAfter: 1 });
}

/**
 * generic-pool arms a timer (`acquireTimeoutMillis`) for every acquire, and clears it when the
 * request is served, even when an idle client is handed over inside `acquire()` itself. When no
 * other acquire waits, that also creates and removes Node's timer list for that duration each time:
 * ≈ 6,000 instructions per acquire, more than half of what a guard costs a request on PostgreSQL
 * (bench/middleware/hot-path.ts). Behind a guard, whose admission lets in no more requests than
 * the pool has connections, nearly every acquire is served at once.
 *
 * When an idle client is there, nobody waits and clients are not tested on borrow, generic-pool
 * 3 hands it over synchronously inside `acquire()` (`_dispense`): that call is made with the
 * timeout off. Returns undefined when the pool is not generic-pool 3 as read here, and the
 * function returns undefined when the acquire may wait (it must keep its timeout).
 */
function serveAtOnce(pool: Pool<pg.Client>, acquire: (priority?: number) => Promise<pg.Client>): ((priority?: number) => Promise<pg.Client> | undefined) | undefined {
  const config = (pool as Pool<pg.Client> & { _config?: Partial<AcquireConfig> })._config;
  if (typeof config !== 'object' || config === null || typeof config.acquireTimeoutMillis !== 'number' || config.testOnBorrow !== false) return undefined;
  const options = config as AcquireConfig;
  const timeoutMs = options.acquireTimeoutMillis;
  return (priority) => {
    if (pool.available === 0 || pool.pending > 0 || options.testOnBorrow) return undefined;
    options.acquireTimeoutMillis = undefined;
    try {
      return acquire(priority);
    } finally {
      options.acquireTimeoutMillis = timeoutMs;
    }
  };
}
