import { beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { signals, type LeakMessage, type LeakReport } from '@closeguard/core';
import { backendPidOf, backendsFor, createGate, hangUpMidStream, ndjsonCursor } from '@closeguard/conformance';
import { activeQueriesOf, admin, eventually, get, hangUpWhen, hosts, statesOf, useGuardedHarness } from './guarded-harness.ts';

const harness = useGuardedHarness();

let markCounter = 0;
/** A value no other test inserts, to tell whether a transaction's INSERT was kept. */
const newMark = (): string => `mark-${process.pid}-${++markCounter}`;

async function marksKept(mark: string): Promise<number> {
  return admin(async (client) => (await client.query<{ count: number }>('SELECT count(*)::int AS count FROM closeguard_guarded_marks WHERE mark = $1', [mark])).rows[0]!.count);
}

beforeAll(async () => {
  await admin((client) => client.query('CREATE TABLE IF NOT EXISTS closeguard_guarded_marks (mark text)'));
});

/** Records leak reports, from `onLeak` and the `leak` signal, until `stop()`. */
function recordLeaks(): { reports: LeakReport[]; messages: LeakMessage[]; onLeak: (leak: LeakReport) => void; stop(): void } {
  const reports: LeakReport[] = [];
  const messages: LeakMessage[] = [];
  const onMessage = (message: LeakMessage): void => void messages.push(message);
  signals.leak.subscribe(onMessage);
  return { reports, messages, onLeak: (leak) => void reports.push(leak), stop: () => void signals.leak.unsubscribe(onMessage) };
}

describe.each(hosts)('GuardedPool behind connectionClosing() on $name', (host) => {
  describe('when the app releases what it checked out', () => {
    it('goes back to the pool through connect(), connect(callback) and query(), and nothing else happens', async () => {
      const { pool } = harness.guardedPool(2);
      const leaks = recordLeaks();
      const { url, guard } = await host.serve(harness, { pool, onLeak: leaks.onLeak }, {
        '/connect': async () => {
          const client = await pool.connect();
          try {
            return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0];
          } finally {
            client.release();
          }
        },
        '/callback': () =>
          new Promise((resolve, reject) => {
            pool.connect((error, client, done) => {
              if (error !== undefined) return reject(error);
              client!.query<{ two: number }>('SELECT 2 AS two').then((result) => {
                done();
                resolve(result.rows[0]);
              }, reject);
            });
          }),
        '/query': async () => (await pool.query<{ three: number }>('SELECT 3 AS three')).rows[0],
      });
      try {
        expect(await get(`${url}/connect`)).toEqual({ status: 200, body: '{"one":1}' });
        expect(await get(`${url}/callback`)).toEqual({ status: 200, body: '{"two":2}' });
        expect(await get(`${url}/query`)).toEqual({ status: 200, body: '{"three":3}' });
        await eventually(() => expect(harness.finished).toHaveLength(3));
        expect(harness.outAtFinish).toEqual([0, 0, 0]);
        expect(guard.stats()).toMatchObject({ leased: 3, released: 3, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 }, leaksReclaimed: 0 });
        expect(leaks.reports).toEqual([]);
        expect(leaks.messages).toEqual([]);
        expect(pool.totalCount).toBe(pool.idleCount);
      } finally {
        leaks.stop();
      }
    });

    it('rolls back a transaction it left open before the client goes back, and requestFinished waits for that', async () => {
      const { pool, name } = harness.guardedPool(1);
      const mark = newMark();
      const { url } = await host.serve(harness, { pool }, {
        '/open': async () => {
          const client = await pool.connect();
          await client.query('BEGIN');
          await client.query('INSERT INTO closeguard_guarded_marks VALUES ($1)', [mark]);
          client.release(); // inside the transaction: a plain pg.Pool hands it to the next caller as it is
          return { released: true };
        },
      });
      expect((await get(`${url}/open`)).status).toBe(200);
      await eventually(() => expect(harness.finished).toHaveLength(1));
      expect(harness.outAtFinish).toEqual([0]);
      expect(await marksKept(mark)).toBe(0);
      expect(await statesOf(name)).toEqual(['idle']);
      expect(pool.idleCount).toBe(1);
    });
  });

  describe('when the app forgets what it checked out', () => {
    it('reclaims it at the end of the request (its transaction rolled back) and reports the leak with its stack and route', async () => {
      const { pool, name } = harness.guardedPool(1);
      const leaks = recordLeaks();
      const mark = newMark();
      const { url, guard } = await host.serve(harness, { pool, onLeak: leaks.onLeak }, {
        '/forget': async () => {
          const client = await pool.connect(); // an ORM's BEGIN outside try/finally, and a throw after it
          await client.query('BEGIN');
          await client.query('INSERT INTO closeguard_guarded_marks VALUES ($1)', [mark]);
          throw new Error('the handler failed inside its transaction');
        },
      });
      try {
        expect((await get(`${url}/forget`)).status).toBe(500);
        await eventually(() => expect(harness.finished).toHaveLength(1));
        expect(harness.outAtFinish).toEqual([0]);
        expect(leaks.reports).toHaveLength(1);
        expect(leaks.reports[0]).toMatchObject({ alias: 'default', route: host.routeOf('/forget') });
        expect(leaks.reports[0]!.stack).toContain('guarded-pool.test.ts');
        expect(leaks.messages).toHaveLength(1);
        expect(leaks.messages[0]!.stack).toBe(leaks.reports[0]!.stack);
        // Destroyed, not released: the app still holds the client (see the test below).
        expect(guard.stats()).toMatchObject({ leased: 1, released: 0, destroyed: { abandoned: 1 }, leaksReclaimed: 1 });
        expect(await marksKept(mark)).toBe(0);
        await eventually(async () => expect(await statesOf(name)).toEqual([]));
        expect(pool.totalCount).toBe(0);
      } finally {
        leaks.stop();
      }
    });

    it('never hands a forgotten client to the next request: code that outlived its request may still use it, and its late release() does nothing', async () => {
      const { pool } = harness.guardedPool(1);
      let forgotten: pg.PoolClient | undefined;
      const nextHolder = createGate<pg.PoolClient>();
      const goOn = createGate<void>();
      const { url } = await host.serve(harness, { pool }, {
        '/forget': async () => {
          forgotten = await pool.connect();
          return (await forgotten.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0];
        },
        '/hold': async () => {
          const client = await pool.connect();
          nextHolder.open(client);
          await goOn.promise;
          const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          client.release();
          return rows[0];
        },
      });
      const forgottenPid = (JSON.parse((await get(`${url}/forget`)).body) as { pid: number }).pid;
      await eventually(() => expect(harness.finished).toHaveLength(1));
      const holding = get(`${url}/hold`);
      const held = await nextHolder.promise;
      expect(held).not.toBe(forgotten);
      // pg's own release would throw "Release called on client which has already been released to the
      // pool" — or, had the client been handed out again, release the next holder's checkout under it.
      expect(() => forgotten!.release()).not.toThrow();
      expect(() => forgotten!.release(new Error('late'))).not.toThrow();
      expect(pool.totalCount - pool.idleCount).toBe(1); // the next holder's checkout is still out
      goOn.open(undefined);
      const response = await holding;
      expect(response.status).toBe(200);
      expect((JSON.parse(response.body) as { pid: number }).pid).not.toBe(forgottenPid);
      await eventually(() => expect(harness.finished).toHaveLength(2));
      expect([pool.totalCount, pool.idleCount]).toEqual([1, 1]);
    });
  });

  describe('when the client hangs up', () => {
    it('waits abortGrace for a pool.query() still running, then cancels it server-side and destroys its client — no leak, and pg\'s late release does nothing', async () => {
      const { pool, name } = harness.guardedPool(1);
      const leaks = recordLeaks();
      const { url, guard } = await host.serve(harness, { pool, onLeak: leaks.onLeak }, {
        '/sleep': async () => (await pool.query<{ pg_sleep: string }>('SELECT pg_sleep(30)')).rows,
      });
      try {
        await hangUpWhen(`${url}/sleep`, async () => (await activeQueriesOf(name)).some((query) => query.includes('pg_sleep')));
        await eventually(() => expect(harness.finished).toHaveLength(1));
        expect(harness.finished[0]!.reason).toBe('timeout');
        await eventually(async () => expect(await backendsFor(name)).toBe(0));
        expect(pool.totalCount).toBe(0);
        expect(guard.stats()).toMatchObject({ destroyed: { abandoned: 1 }, leaksReclaimed: 0 });
        expect(leaks.reports).toEqual([]);
      } finally {
        leaks.stop();
      }
    });

    it('never gives back a client while the cursor streaming from it still runs', async () => {
      const { pool, name } = harness.guardedPool(1);
      const leaks = recordLeaks();
      const { url, guard } = await host.serve(harness, { pool, onLeak: leaks.onLeak }, {
        '/stream': async () => {
          const client = await pool.connect();
          const rows = ndjsonCursor(client, 1_000_000);
          rows.once('close', () => client.release());
          return rows;
        },
      });
      try {
        await hangUpMidStream(`${url}/stream`);
        await eventually(() => expect(harness.finished).toHaveLength(1));
        expect(harness.outAtFinish).toEqual([0]);
        if (host.name === 'express') {
          // pipe() leaves the cursor open when the client leaves: the client is busy until abortGrace, then cancelled and destroyed.
          expect(guard.stats()).toMatchObject({ destroyed: { abandoned: 1 }, released: 0, leaksReclaimed: 1 });
          expect(leaks.reports).toHaveLength(1);
        } else {
          // Fastify destroys the stream: the cursor closes and the app's release gives the client back.
          expect(guard.stats()).toMatchObject({ destroyed: { abandoned: 0 }, released: 1, leaksReclaimed: 0 });
          expect(leaks.reports).toEqual([]);
        }
        await eventually(async () => expect(await activeQueriesOf(name)).toEqual([]));
      } finally {
        leaks.stop();
      }
    });

    it('rejects a connect() waiting in pg.Pool\'s queue at once with ERR_CLOSEGUARD_CLIENT_CLOSED; the client that comes later goes straight back', async () => {
      const { pool } = harness.guardedPool(1);
      const held = await pool.connect(); // outside any request: the pool's only client
      const outcome = createGate<unknown>();
      const { url, guard } = await host.serve(harness, { pool }, {
        '/wait': async () => {
          try {
            outcome.open(await pool.connect());
          } catch (error) {
            outcome.open(error);
          }
          return {};
        },
      });
      await hangUpWhen(`${url}/wait`, () => pool.waitingCount === 1);
      expect(await outcome.promise).toMatchObject({ code: 'ERR_CLOSEGUARD_CLIENT_CLOSED' });
      expect(pool.waitingCount).toBe(1); // still in pg.Pool's queue
      held.release();
      await eventually(() => expect([pool.waitingCount, pool.totalCount, pool.idleCount]).toEqual([0, 1, 1]));
      expect(guard.stats().abandonedWaits).toBe(1);
    });
  });

  describe('in a request that also leases through req.db()', () => {
    it('gives req.db() and pool.connect() different clients, and gives both back', async () => {
      const { pool } = harness.guardedPool(2);
      const { url, guard } = await host.serve(harness, { pool }, {
        '/both': async (request) => {
          const leased = await request.db();
          const checkedOut = await pool.connect();
          try {
            return { same: (leased as unknown) === checkedOut, pids: new Set([await backendPidOf(leased), await backendPidOf(checkedOut)]).size };
          } finally {
            checkedOut.release();
          }
        },
      });
      expect(await get(`${url}/both`)).toEqual({ status: 200, body: '{"same":false,"pids":2}' });
      await eventually(() => expect(harness.finished).toHaveLength(1));
      expect(harness.outAtFinish).toEqual([0]);
      expect(guard.stats()).toMatchObject({ leased: 2, released: 2 });
    });

    it('takes the request\'s admission place: past backpressure and its queue, a checkout is refused with a 503', async () => {
      const { pool } = harness.guardedPool(2);
      const entered = createGate();
      const leave = createGate();
      const { url } = await host.serve(harness, { pool, backpressure: 1, queueLimit: 0 }, {
        '/hold': async () => {
          const client = await pool.connect();
          entered.open();
          await leave.promise;
          client.release();
          return {};
        },
        '/one': async () => (await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0],
      });
      const holding = get(`${url}/hold`);
      await entered.promise;
      expect((await get(`${url}/one`)).status).toBe(503);
      leave.open();
      expect((await holding).status).toBe(200);
      expect(await get(`${url}/one`)).toEqual({ status: 200, body: '{"one":1}' });
    });
  });
});
