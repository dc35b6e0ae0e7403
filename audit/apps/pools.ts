// The pool each example app takes, as a run watches and ends it: closeguard's generic-pool
// (createPool) for the hand-written apps, a pg.Pool — plain or a GuardedPool — for the ORM app.
import type { Pool } from 'generic-pool';
import pg from 'pg';
import { createPool } from '@closeguard/pg';

/** What a run reads of an app's pool while it runs, and how it ends it afterwards. */
export interface AuditPool {
  /** Connections checked out now. */
  readonly borrowed: number;
  /** Checkouts waiting for a connection. */
  readonly pending: number;
  /** Connections open and idle in the pool. */
  readonly idle: number;
  /** Ends the idle connections and lets no new one open; the borrowed ones stay, for the run to count their backends. */
  endIdle(): Promise<void>;
  /** Ends the pool: resolves once every connection is ended, so only when none is borrowed. */
  end(): Promise<void>;
}

/** Where and how big a run's pool is. */
export interface PoolSettings {
  url: string;
  /** Tags every backend of the run, to count them in pg_stat_activity. */
  applicationName: string;
  max: number;
  /** How long a checkout waits for a connection before it fails. */
  acquireTimeoutMs: number;
}

/** closeguard's generic-pool of pg clients; its acquire timeout rejects with a 503 error. */
export function createGenericPool(settings: PoolSettings): { pool: Pool<pg.Client>; watched: AuditPool } {
  const pool = createPool({ connectionString: settings.url, application_name: settings.applicationName }, { max: settings.max, acquireTimeoutMillis: settings.acquireTimeoutMs });
  const watched: AuditPool = {
    get borrowed() {
      return pool.borrowed;
    },
    get pending() {
      return pool.pending;
    },
    get idle() {
      return pool.available;
    },
    endIdle: () => pool.clear(),
    async end() {
      await pool.drain();
      await pool.clear();
    },
  };
  return { pool, watched };
}

/** pg.Pool's config for a run: its connect timeout is the run's acquire timeout. */
export function pgPoolConfig(settings: PoolSettings): pg.PoolConfig {
  return { connectionString: settings.url, application_name: settings.applicationName, max: settings.max, connectionTimeoutMillis: settings.acquireTimeoutMs };
}

const ignore = (): void => undefined;

/**
 * Watches a pg.Pool (a GuardedPool is one). pg.Pool cannot end its idle clients alone: `endIdle()`
 * starts `end()`, which ends them at once and the borrowed ones when they come back.
 */
export function watchPgPool(pool: pg.Pool): AuditPool {
  // An idle client whose backend dies reports on the pool; a checked-out one on itself. A leaked
  // client gets a listener here, or ending its backend after the run would crash the process.
  pool.on('error', ignore);
  pool.on('connect', (client) => client.on('error', ignore));
  let ending: Promise<void> | undefined;
  const end = (): Promise<void> => (ending ??= pool.end());
  return {
    get borrowed() {
      return pool.totalCount - pool.idleCount;
    },
    get pending() {
      return pool.waitingCount;
    },
    get idle() {
      return pool.idleCount;
    },
    endIdle() {
      void end().catch(ignore); // settles once the leaked clients are gone too: nobody waits for it
      return Promise.resolve();
    },
    end,
  };
}
