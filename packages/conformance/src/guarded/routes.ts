import { connection } from '@closeguard/core';
import { backendPids, terminateBackend } from '../postgres/index.ts';
import { waitFor } from '../support/wait.ts';
import type { GuardedDriver } from './driver.ts';
import type { Db, GuardedRoute } from './host.ts';
import type { RouteState } from './state.ts';

/** An error the routes throw on purpose; the framework's error handler must see each one once. */
export class RouteError extends Error {
  constructor(route: string) {
    super(`${route} failed on purpose`);
    this.name = 'RouteError';
  }
}

/**
 * The standard routes every framework host serves in its own idiom for each `kind`. They do
 * their database work through `driver`, and record what the cases check in `state`.
 */
export function guardedRoutes(driver: GuardedDriver, state: RouteState): GuardedRoute<unknown>[] {
  const one = async (db: Db<unknown>, alias?: string): Promise<number> => (await driver.query<{ one: number }>(await db(alias), 'SELECT 1 AS one'))[0]!.one;
  const pid = async (client: unknown): Promise<number> => (await driver.query<{ pid: number }>(client, 'SELECT pg_backend_pid() AS pid'))[0]!.pid;
  const failing = (path: string) => async (db: Db<unknown>): Promise<never> => {
    await one(db);
    throw new RouteError(path);
  };
  return [
    { method: 'GET', path: '/alive', kind: 'json', run: () => Promise.resolve('alive') },
    { method: 'GET', path: '/one', kind: 'json', run: (db) => one(db) },
    { method: 'GET', path: '/one-callback', kind: 'callback', run: (db) => one(db) },
    { method: 'GET', path: '/throw', kind: 'json', run: failing('/throw') },
    { method: 'GET', path: '/throw-callback', kind: 'callback', run: failing('/throw-callback') },
    {
      method: 'GET', path: '/reject', kind: 'json',
      run: async (db) => {
        await one(db);
        return Promise.reject(new RouteError('/reject'));
      },
    },
    {
      method: 'GET', path: '/sleep', kind: 'json',
      run: async (db, { query }) => {
        const client = await db();
        state.querying = true;
        await driver.busy(client, Number(query.get('s') ?? '0.2'));
        return 'slept';
      },
    },
    {
      method: 'GET', path: '/late', kind: 'json',
      // Still running after the client left: sleeps, then queries again on the same connection.
      run: async (db, { query }) => {
        const client = await db();
        state.latePid = await pid(client);
        state.lateStarted = true;
        await driver.busy(client, Number(query.get('s') ?? '0.4'));
        state.lateQueriedOn = await pid(client);
        return 'late';
      },
    },
    {
      method: 'GET', path: '/terminate', kind: 'json',
      run: async (db) => {
        const client = await db();
        await driver.kill(client);
        await driver.query(client, 'SELECT 1'); // a driver whose kill() resolved fails here
        return 'unreachable';
      },
    },
    {
      method: 'GET', path: '/terminated-outside', kind: 'json',
      // An administrator (or a failover) ends the backend while the request holds it, between two queries.
      run: async (db) => {
        const client = await db();
        const [backend] = await driver.query<{ pid: number; name: string }>(client, 'SELECT pg_backend_pid() AS pid, current_setting($1) AS name', ['application_name']);
        await terminateBackend(backend!.pid);
        await waitFor('the terminated backend to end', async () => !(await backendPids(backend!.name)).includes(backend!.pid));
        await driver.query(client, 'SELECT 1');
        return 'unreachable';
      },
    },
    {
      method: 'GET', path: '/tx-abort', kind: 'json',
      run: async (db) => {
        const client = await db();
        await driver.query(client, 'BEGIN');
        await driver.query(client, 'SELECT 1/0').catch(() => undefined);
        return 'left the failed transaction';
      },
    },
    {
      method: 'GET', path: '/tx-open', kind: 'json',
      run: async (db) => {
        const client = await db();
        await driver.query(client, 'BEGIN');
        await driver.query(client, 'CREATE TEMP TABLE left_open (id int)');
        return 'left the transaction open';
      },
    },
    {
      method: 'GET', path: '/left-open', kind: 'json',
      run: async (db) => (await driver.query<{ exists: boolean }>(await db(), "SELECT to_regclass('pg_temp.left_open') IS NOT NULL AS exists"))[0]!.exists,
    },
    { method: 'GET', path: '/pid', kind: 'json', run: async (db) => pid(await db()) },
    {
      method: 'GET', path: '/cursor', kind: 'stream', contentType: 'application/x-ndjson',
      run: async (db, { query }) => driver.stream(await db(), Number(query.get('n') ?? '1000000'), () => state.cursorsClosed++),
    },
    {
      method: 'GET', path: '/two', kind: 'json',
      run: async (db) => {
        const clients = await Promise.all([db('main'), db('analytics')]);
        return Promise.all(clients.map(async (client) => (await driver.query<{ n: string }>(client, 'SELECT current_setting($1) AS n', ['application_name']))[0]!.n));
      },
    },
    {
      method: 'GET', path: '/leak', kind: 'json',
      run: async function leakingRoute() {
        const client = await state.tracked!.acquire(); // the bug under test: no release()
        await driver.query(client, 'SELECT 1');
        return 'leaked';
      },
    },
    {
      method: 'GET', path: '/hang', kind: 'json',
      // A handler that leases, queries, then never settles (a bug): only shutdown's give-up ends it.
      run: async (db) => {
        await one(db);
        state.querying = true;
        return new Promise(() => undefined);
      },
    },
    {
      method: 'POST', path: '/echo', kind: 'json',
      // Reads its body (the framework's parser), then leases: a slow upload holds no connection place meanwhile.
      run: async (db, { body }) => ({ one: await one(db), body }),
    },
    { method: 'GET', path: '/connection', kind: 'json', run: async () => (await driver.query<{ one: number }>(await connection<unknown>(), 'SELECT 1 AS one'))[0] },
    {
      method: 'POST', path: '/connection', kind: 'json',
      run: async (_db, { body }) => {
        const [row] = await driver.query<{ echo: string }>(await connection<unknown>(), 'SELECT $1::text AS echo', [JSON.stringify(body)]);
        return JSON.parse(row!.echo) as unknown;
      },
    },
  ];
}
