import { poolPolicy, type PoolLike, type PoolPolicy } from '@closeguard/core';
import pg from 'pg';
import { joinClient } from './joined-client.ts';
import { pgPolicy } from './policy.ts';

/** A GuardedPool's policy: pg's, and its checkouts join a request's transaction. */
const guardedPolicy: PoolPolicy<pg.Client> = { ...pgPolicy, join: joinClient };

/** pg-pool's own per-checkout `release`, kept before closeguard puts its give-back in its place. */
const pgRelease: unique symbol = Symbol('closeguard.pg.release');

type Kept = pg.PoolClient & { [pgRelease]?: (error?: Error | boolean) => void };

// eslint-disable-next-line @typescript-eslint/unbound-method -- pg.Pool's own, called on the pool with call()
const connect = pg.Pool.prototype.connect as (this: pg.Pool, callback: (error: Error | undefined, client: pg.PoolClient | undefined) => void) => void;

/**
 * A pg.Pool as closeguard leases from it (`req.db()`, and underneath every checkout of a
 * GuardedPool): `acquire()` is pg.Pool's own checkout, bypassing the GuardedPool's `connect()`;
 * `release(c)`/`destroy(c)` call the release pg-pool made for that checkout (`destroy` with
 * `true`), whatever the client's `release` is now; `drain()` is `end()`, once.
 */
export function leaseView(pool: pg.Pool): PoolLike<pg.PoolClient> & { [poolPolicy]: PoolPolicy<pg.Client> } {
  return {
    acquire: () =>
      new Promise<pg.PoolClient>((resolve, reject) => {
        connect.call(pool, (error, client) => {
          if (client === undefined) return reject(error ?? new Error('pg.Pool gave no client'));
          // eslint-disable-next-line @typescript-eslint/unbound-method -- pg-pool's per-checkout release is an arrow function
          (client as Kept)[pgRelease] = client.release;
          resolve(client);
        });
      }),
    release: (client) => releaseOf(client)(),
    destroy: (client) => releaseOf(client)(true),
    max: pool.options.max,
    get size() {
      return pool.totalCount;
    },
    get available() {
      return pool.idleCount;
    },
    get borrowed() {
      return pool.totalCount - pool.idleCount;
    },
    get pending() {
      return pool.waitingCount;
    },
    drain: () => (pool.ending ? Promise.resolve() : pool.end()),
    [poolPolicy]: guardedPolicy,
  };
}

function releaseOf(client: pg.PoolClient): (error?: Error | boolean) => void {
  const kept = client as Kept;
  return kept[pgRelease] ?? ((error) => client.release(error));
}
