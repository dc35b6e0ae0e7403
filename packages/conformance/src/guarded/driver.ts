import type { Readable } from 'node:stream';
import type { PoolLike } from '@closeguard/core';

/** What the guarded suite asks of a driver's pool: a `PoolLike` with generic-pool's figures. */
export type DriverPool<C = unknown> = PoolLike<C> & {
  readonly size: number;
  readonly available: number;
  readonly borrowed: number;
  readonly pending: number;
};

/** How the guarded suite wants a pool opened. Durations in milliseconds. */
export interface DriverPoolOptions {
  /** The run's PostgreSQL (`databaseUrl()`). */
  readonly connectionString: string;
  /** PostgreSQL's `application_name` for every connection: the suite counts the pool's backends by it. */
  readonly applicationName: string;
  /** At most this many connections. */
  readonly max: number;
  /** How long an acquire may wait for a connection before it fails (default: the driver's bounded default). */
  readonly acquireTimeout?: number;
}

/**
 * A driver fixture: how the guarded suite opens a pool of a database driver, queries a leased
 * connection, keeps one busy, kills its backend, and streams rows from it. The standard routes do
 * all their database work through it, so every case runs on any driver that has one.
 * `C` is the driver's connection, as the pool's `acquire()` and the framework's `db()` give it.
 * @example
 * runGuardedConformance([myHost], [pgDriver, myDriver]);
 */
export interface GuardedDriver<C = unknown> {
  /** Shown in the `describe`: 'pg.Pool (fromPgPool)'. */
  readonly name: string;
  /** Opens a pool of PostgreSQL connections, each tagged with `applicationName`. */
  open(options: DriverPoolOptions): DriverPool<C>;
  /** Ends a pool `open()` made; also called after the guard's `close()` drained it already. */
  close(pool: DriverPool<C>): Promise<void>;
  /** Runs `text` with `values` on a leased connection; resolves to its rows. */
  query<T = Record<string, unknown>>(client: C, text: string, values?: readonly unknown[]): Promise<T[]>;
  /** Keeps the connection busy server-side for `seconds` (`SELECT pg_sleep($1)`). */
  busy(client: C, seconds: number): Promise<void>;
  /**
   * Kills the connection's backend from its own session (`pg_terminate_backend(pg_backend_pid())`),
   * rejecting (or resolving) as the driver does when its connection dies under a query.
   */
  kill(client: C): Promise<void>;
  /**
   * The rows of `generate_series(1, count)` from a server-side cursor on the connection, as NDJSON
   * bytes, 100 rows a read; the cursor is closed when the stream ends or is destroyed, then `onClosed` runs.
   */
  stream(client: C, count: number, onClosed: () => void): Readable;
}
