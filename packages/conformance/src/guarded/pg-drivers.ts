// The pg driver fixtures: one connection API (pg's), two pools — @closeguard/pg's createPool (a
// generic-pool of pg.Clients) and a plain pg.Pool through fromPgPool.
import pg from 'pg';
import { createPool, fromPgPool } from '@closeguard/pg';
import { createCursorProbe, ndjsonCursor } from '../support/pg.ts';
import type { DriverPool, GuardedDriver } from './driver.ts';

/** Like createPool's default: an acquire never waits forever. */
const ACQUIRE_TIMEOUT_MS = 10_000;

type PgConnection = Omit<GuardedDriver<pg.ClientBase>, 'name' | 'open' | 'close'>;

/** What both pools share: their connections are pg clients. */
const pgConnection: PgConnection = {
  async query<T>(client: pg.ClientBase, text: string, values: readonly unknown[] = []) {
    return (await client.query(text, [...values])).rows as T[];
  },
  async busy(client, seconds) {
    await client.query('SELECT pg_sleep($1)', [seconds]);
  },
  async kill(client) {
    await client.query('SELECT pg_terminate_backend(pg_backend_pid())');
  },
  stream: (client, count, onClosed) => ndjsonCursor(client, count, createCursorProbe({ onClosed })),
};

/** `pg` through `@closeguard/pg`'s `createPool()`: a generic-pool `Pool<pg.Client>`. */
export const pgDriver: GuardedDriver<pg.Client> = {
  name: 'pg (createPool)',
  ...pgConnection,
  open: ({ connectionString, applicationName, max, acquireTimeout }) =>
    createPool({ connectionString, application_name: applicationName }, { max, acquireTimeoutMillis: acquireTimeout ?? ACQUIRE_TIMEOUT_MS }),
  async close(pool) {
    const generic = pool as DriverPool<pg.Client> & { drain(): Promise<void>; clear(): Promise<void> };
    await generic.drain();
    await generic.clear();
  },
};

const pgPools = new WeakMap<object, pg.Pool>();

/** A plain `pg.Pool`, made a closeguard pool by `@closeguard/pg`'s `fromPgPool()`. */
export const pgPoolDriver: GuardedDriver<pg.PoolClient> = {
  name: 'pg.Pool (fromPgPool)',
  ...pgConnection,
  open({ connectionString, applicationName, max, acquireTimeout }) {
    const pgPool = new pg.Pool({ connectionString, application_name: applicationName, max, connectionTimeoutMillis: acquireTimeout ?? ACQUIRE_TIMEOUT_MS });
    // An idle client whose backend died (a restart, pg_terminate_backend) makes pg.Pool emit 'error'
    // as it drops the client: without a listener that would crash the process. Apps need one too.
    pgPool.on('error', () => undefined);
    const pool = fromPgPool(pgPool) as DriverPool<pg.PoolClient>;
    pgPools.set(pool, pgPool);
    return pool;
  },
  async close(pool) {
    const pgPool = pgPools.get(pool);
    // The guard's close() ends it (fromPgPool's drain() is pg.Pool's end(), which throws when called twice).
    if (pgPool && !pgPool.ending) await pgPool.end();
  },
};
