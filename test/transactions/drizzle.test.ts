// Drizzle's own transactions inside closeguard's request transactions, on every host: a GuardedPool
// given to the guard with `transaction: true`, and Drizzle on the same pool as its docs set it up.
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware, signals, type RequestFinishedMessage } from '@closeguard/core';
import { databaseUrl, eventually, quiet, RouteError, type GuardedHost, type GuardedRoute, type ListeningServer } from '@closeguard/conformance';
import { GuardedPool } from '@closeguard/pg';
import { expressHost } from '../conformance/hosts/express.ts';
import { fastifyGuardedHost } from '../conformance/hosts/fastify.ts';
import { honoGuardedHost } from '../conformance/hosts/hono.ts';
import { koaGuardedHost } from '../conformance/hosts/koa.ts';
import { nodeGuardedHost } from '../conformance/hosts/node.ts';

const TABLE = 'closeguard_drizzle_marks';
let counter = 0;
const newMark = (): string => `drizzle-${process.pid}-${Date.now()}-${++counter}`;

async function admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: 'closeguard-test-admin' });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

const kept = (mark: string): Promise<number> =>
  admin(async (client) => (await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${TABLE} WHERE mark = $1`, [mark])).rows[0]!.count);
const statesOf = (name: string): Promise<string[]> =>
  admin(async (client) => (await client.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE application_name = $1', [name])).rows.map((row) => row.state));

/** The routes: Drizzle's `db.transaction()` and its one-statement queries, each inserting the request's `?mark=`. */
function drizzleRoutes(pool: GuardedPool): GuardedRoute<unknown>[] {
  const db = drizzle({ client: pool });
  const markOf = (query: URLSearchParams): string => query.get('mark')!;
  const insert = (mark: string) => sql`INSERT INTO ${sql.raw(TABLE)} (mark) VALUES (${mark})`;
  return [
    {
      method: 'GET', path: '/drizzle/commit', kind: 'json',
      run: async (_db, { query }) => {
        await db.transaction(async (tx) => {
          await tx.execute(insert(markOf(query)));
        });
        await db.execute(insert(markOf(query)));
        return 'inserted';
      },
    },
    {
      method: 'GET', path: '/drizzle/nested-rollback', kind: 'json',
      // Drizzle's transaction fails and rolls back; the request goes on and succeeds.
      run: async (_db, { query }) => {
        await db.execute(insert(markOf(query)));
        await db.transaction(async (tx) => {
          await tx.execute(insert(`${markOf(query)}-undone`));
          await tx.transaction(async (inner) => inner.execute(insert(`${markOf(query)}-undone`)));
          throw new Error('Drizzle rolls this back');
        }).catch(() => undefined);
        return 'inserted';
      },
    },
    {
      method: 'GET', path: '/drizzle/fail', kind: 'json',
      // Drizzle's transaction commits; then the route fails: the request rolls it all back.
      run: async (_db, { query }) => {
        await db.transaction(async (tx) => {
          await tx.execute(insert(markOf(query)));
        });
        throw new RouteError('/drizzle/fail');
      },
    },
  ];
}

const hosts: readonly GuardedHost[] = [nodeGuardedHost, expressHost, fastifyGuardedHost, koaGuardedHost, honoGuardedHost];

describe.each(hosts)('Drizzle in request transactions on $name', (host) => {
  const finished: RequestFinishedMessage[] = [];
  const onFinish = (message: RequestFinishedMessage): void => void finished.push(message);
  let pool: GuardedPool;
  let name: string;
  let server: ListeningServer | undefined;
  let guard: ConnectionClosingMiddleware;
  let url: string;

  beforeAll(async () => {
    await admin(async (client) => {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [TABLE]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (mark text NOT NULL)`);
      await client.query('COMMIT');
    });
    signals.requestFinished.subscribe(onFinish);
  });
  afterAll(() => signals.requestFinished.unsubscribe(onFinish));

  async function serve(): Promise<void> {
    name = `closeguard-drizzle-tx-${process.pid}-${++counter}`;
    // One client: a Drizzle checkout that did not join the request's would wait for it forever.
    pool = new GuardedPool({ connectionString: databaseUrl(), application_name: name, max: 1 }, { logger: quiet });
    pool.on('error', () => undefined);
    guard = new ConnectionClosingMiddleware({ pool, transaction: true });
    server = await host.listenGuarded({ guard, routes: drizzleRoutes(pool), onError: () => undefined, logger: quiet });
    url = server.url;
    finished.length = 0;
  }

  afterEach(async () => {
    // Every request finished once, nothing borrowed, no backend left inside a transaction.
    await eventually(() => expect(finished.length).toBeGreaterThan(0));
    expect(new Set(finished.map(({ scope }) => scope)).size).toBe(finished.length);
    await eventually(async () => {
      expect(pool.totalCount - pool.idleCount).toBe(0);
      expect(await statesOf(name)).not.toContain('idle in transaction');
    });
    await server?.close();
    await pool.end();
  });

  it("commits db.transaction() and Drizzle's one-statement queries with the request's 2xx", async () => {
    await serve();
    const mark = newMark();
    expect((await fetch(`${url}/drizzle/commit?mark=${mark}`)).status).toBe(200);
    expect(await kept(mark)).toBe(2);
    expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 0 });
  });

  it("rolls back only Drizzle's own failed transaction (a savepoint, nested ones in it) when the request succeeds", async () => {
    await serve();
    const mark = newMark();
    expect((await fetch(`${url}/drizzle/nested-rollback?mark=${mark}`)).status).toBe(200);
    expect(await kept(mark)).toBe(1);
    expect(await kept(`${mark}-undone`)).toBe(0);
    expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 0 });
  });

  it('rolls back what db.transaction() committed when the request fails', async () => {
    await serve();
    const mark = newMark();
    expect((await fetch(`${url}/drizzle/fail?mark=${mark}`)).status).toBe(500);
    await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 }));
    expect(await kept(mark)).toBe(0);
  });
});
