// What a library file of the ORM suite gives the harness: its routes, written with its own API on
// the pool it is given, and what each case leaves behind on a plain pg.Pool (its control).
import { Readable } from 'node:stream';
import type pg from 'pg';

/** Rows a streamed route offers: far more than the socket buffers hold, so it pauses on backpressure. */
export const STREAM_ROWS = 1_000_000;

/** What a route calls at the point where the test kills its backend (case e). */
export type Hold = (pid: number) => Promise<void>;

/** A library's routes, written with its own API on the pool it was given. */
export interface OrmRoutes {
  /** a. Inserts inside the library's transaction API, then throws. */
  throwInTransaction(): Promise<unknown>;
  /** b. Issues `BEGIN` by hand (raw SQL), inserts, and answers without COMMIT or ROLLBACK. */
  handBegin(): Promise<unknown>;
  /** c. A query that runs until it is cancelled (`pg_sleep`). */
  sleep(): Promise<unknown>;
  /** d. A streamed result as NDJSON bytes; absent when the library offers no way to stream. */
  stream: (() => Readable) | undefined;
  /** e. Inside the library's transaction API: reads its backend pid, `hold(pid)`, queries again. */
  killedMidTransaction(hold: Hold): Promise<unknown>;
  /** A library-specific extra: a transaction the library leaves to the app to end, never ended. */
  unendedTransaction?: () => Promise<unknown>;
  /** A query through the library: the server and its pool still answer. */
  alive(): Promise<unknown>;
  /** Lets go of the library's own resources (never the pool: the harness owns it). */
  dispose(): Promise<void>;
}

/** What the database and the pool show once a request is over. */
export interface Observed {
  /** Clients checked out of the pool (`totalCount - idleCount`). */
  borrowed: number;
  /** The pool's backends `idle in transaction` (pg_stat_activity). */
  idleInTransaction: number;
  /** The pool's backends still running a statement. */
  active: number;
}

/** Nothing borrowed, nothing left open, nothing running. */
export const CLEAN: Observed = { borrowed: 0, idleInTransaction: 0, active: 0 };

/**
 * What a plain pg.Pool is left with after the cases every library runs — the same for all four as
 * measured: their transaction APIs give everything back on a throw and on a killed backend; a
 * `BEGIN` by hand leaves its backend idle in transaction; a hang-up leaves the query running.
 */
export const PLAIN_POOL = {
  throwInTransaction: CLEAN,
  handBegin: { borrowed: 0, idleInTransaction: 1, active: 0 },
  sleep: { borrowed: 1, idleInTransaction: 0, active: 1 },
  killedMidTransaction: CLEAN,
} as const satisfies Partial<Record<CaseName, Observed>>;

/** The streamed cases on a plain pg.Pool (Kysely, Knex): pipe() on Express leaves the cursor running; Fastify destroys the stream. */
export const PLAIN_POOL_STREAMS = {
  stream: { express: { borrowed: 1, idleInTransaction: 0, active: 1 }, fastify: CLEAN },
  unendedTransaction: { borrowed: 1, idleInTransaction: 1, active: 0 },
} as const satisfies Partial<Record<CaseName, ControlOutcome>>;

/** Leaks GuardedPool reports in the cases every library runs: none (the library's own checkouts). */
export const NO_LEAKS = { throwInTransaction: 0, handBegin: 0, killedMidTransaction: 0 } as const;

export type CaseName = 'throwInTransaction' | 'handBegin' | 'sleep' | 'stream' | 'killedMidTransaction' | 'unendedTransaction';

/** What the control shows for a case: the same on both frameworks, or per framework. */
export type ControlOutcome = Observed | { express: Observed; fastify: Observed };

/** A library under test. */
export interface OrmLibrary {
  /** As the describe block names it: 'Drizzle (drizzle-orm/node-postgres)'. */
  title: string;
  /** Creates whatever the library needs once per file (tables, a generated client). */
  setup?: () => Promise<void>;
  /** The library's routes on `pool`, set up the way its docs show. */
  create(pool: pg.Pool): OrmRoutes | Promise<OrmRoutes>;
  /**
   * What each case leaves behind on a plain pg.Pool, as measured; `CLEAN` where the library gives
   * everything back itself. The cases a library runs are the ones listed here.
   */
  control: Partial<Record<CaseName, ControlOutcome>>;
  /** How many leaks GuardedPool reports for a case, where that is certain (default: not checked). */
  leaks?: Partial<Record<CaseName, number>>;
}

/** Rows as NDJSON bytes, the way a route streams them to its framework's response. */
export function ndjson(rows: AsyncIterable<unknown>): Readable {
  return Readable.from(
    (async function* () {
      for await (const row of rows) yield `${JSON.stringify(row)}\n`;
    })(),
    { objectMode: false },
  );
}
