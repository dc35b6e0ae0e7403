import type { GuardedDriver } from './driver.ts';
import type { Db, GuardedRoute, RouteInput } from './host.ts';
import { MARKS_TABLE } from './marks.ts';
import { RouteError } from './routes.ts';
import type { RouteState } from './state.ts';

const INSERT = `INSERT INTO ${MARKS_TABLE} (mark) VALUES ($1)`;

/**
 * The routes of the transaction cases: each inserts its request's `?mark=` on the request's
 * connection, then answers, fails, hangs or streams as its path says; the cases read back whether
 * the mark was kept.
 */
export function transactionRoutes(driver: GuardedDriver, state: RouteState): GuardedRoute<unknown>[] {
  const insert = async (db: Db<unknown>, input: RouteInput): Promise<unknown> => {
    const client = await db();
    await driver.query(client, INSERT, [markOf(input)]);
    return client;
  };
  const inserting = (path: string, extra: Partial<GuardedRoute<unknown>> = {}): GuardedRoute<unknown> => ({
    method: 'GET', path, kind: 'json', ...extra,
    run: async (db, input) => {
      await insert(db, input);
      return 'inserted';
    },
  });
  const failing = (path: string, extra: Partial<GuardedRoute<unknown>> = {}): GuardedRoute<unknown> => ({
    method: 'GET', path, kind: 'json', ...extra,
    run: async (db, input) => {
      await insert(db, input);
      throw new RouteError(path);
    },
  });
  return [
    inserting('/tx/insert'),
    inserting('/tx/insert-callback', { kind: 'callback' }),
    inserting('/tx/insert-400', { status: 400 }),
    inserting('/tx/insert-500', { status: 500 }),
    failing('/tx/insert-throw'),
    failing('/tx/autocommit', { transaction: false }),
    failing('/tx/atomic', { transaction: true }),
    {
      method: 'GET', path: '/tx/insert-late', kind: 'json',
      // Still running after its client left: inserts, then sleeps on the connection, then answers 200.
      run: async (db, input) => {
        const client = await insert(db, input);
        state.lateStarted = true;
        await driver.busy(client, Number(input.query.get('s') ?? '0.3'));
        state.lateQueriedOn = 1;
        return 'late';
      },
    },
    {
      method: 'GET', path: '/tx/insert-hang', kind: 'json',
      // Inserts, then never settles (a bug): only shutdown's give-up ends it.
      run: async (db, input) => {
        await insert(db, input);
        state.querying = true;
        return new Promise(() => undefined);
      },
    },
    {
      method: 'GET', path: '/tx/deferred', kind: 'json',
      // Two rows with one key: the unique constraint is checked at COMMIT, which fails.
      run: async (db, input) => {
        await driver.query(await db(), `INSERT INTO ${MARKS_TABLE} (mark, key) VALUES ($1, $1), ($1, $1)`, [markOf(input)]);
        return 'inserted twice';
      },
    },
    checkoutRoute('/tx/checkout', driver, state),
    checkoutRoute('/tx/checkout-500', driver, state, 500),
  ];
}

/**
 * What a library does with a pool that hands out clients by itself, inside a request: a client
 * checked out with its own transaction (committed), another transaction of its own rolled back,
 * and the pool's one-statement `query()`. Answers the backend pids of `db()`, the checkout and
 * `query()`: in a transaction request, one backend.
 */
function checkoutRoute(path: string, driver: GuardedDriver, state: RouteState, status?: number): GuardedRoute<unknown> {
  return {
    method: 'GET', path, kind: 'json', ...(status !== undefined && { status }),
    run: async (db, input) => {
      const pool = state.checkoutPool!;
      const mark = markOf(input);
      const [own] = await driver.query<{ pid: number }>(await db(), 'SELECT pg_backend_pid() AS pid');
      const client = await pool.connect();
      let checkout: number;
      try {
        await client.query('BEGIN');
        await client.query(INSERT, [mark]);
        checkout = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        await client.query('COMMIT');
        await client.query('BEGIN');
        await client.query(INSERT, [`${mark}-undone`]);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      await pool.query(INSERT, [mark]);
      const queried = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      return [own!.pid, checkout, queried];
    },
  };
}

function markOf(input: RouteInput): string {
  const mark = input.query.get('mark');
  if (mark === null) throw new Error('the transaction routes take ?mark=');
  return mark;
}
