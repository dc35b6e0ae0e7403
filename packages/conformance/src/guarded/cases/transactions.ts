import { beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionClosingMiddleware, TransactionOptions } from '@closeguard/core';
import { GuardedPool } from '@closeguard/pg';
import { eventually } from '../../postgres/harness.ts';
import { quiet } from '../../support/logger.ts';
import { hangUpTitle } from '../clients.ts';
import { ensureMarksTable, marksKept, newMark, statesOf } from '../marks.ts';
import { RouteError } from '../routes.ts';
import { SHORT_GRACE_MS, type GuardedContext, type Stage } from '../stage.ts';

let checkoutPools = 0;

/**
 * Request transactions (the `transaction` option): a request's work is kept only when its response
 * succeeded, committed before the response goes out; rolled back on a throw, a 4xx/5xx, a hang-up,
 * shutdown, and answered 500 when COMMIT fails; a route opts out (or in) in its framework's idiom;
 * a GuardedPool's checkouts join the request's transaction.
 */
export function transactionCases(context: GuardedContext): void {
  const { client, state } = context;
  beforeAll(ensureMarksTable);

  /** Serves the routes on a pool of one client, with `transaction` (and `abortGrace`) as given. */
  async function serve(stage: Stage, transaction: boolean | TransactionOptions = true, abortGrace?: number) {
    const { pool, name } = stage.pool(1);
    const served = await stage.serve({ pool, transaction, ...(abortGrace !== undefined && { abortGrace }) });
    return { ...served, name };
  }
  const get = (url: string, path: string, mark: string) => client.get(`${url}${path}${path.includes('?') ? '&' : '?'}mark=${mark}`);
  const noneIdleInTransaction = (name: string) => eventually(async () => expect(await statesOf(name)).not.toContain('idle in transaction'));

  describe('with transaction: true', () => {
    it('commits the work of a 2xx response before the response goes out, from async and callback handlers alike', async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage);
      const [first, second] = [newMark(), newMark()];
      expect(await get(url, '/tx/insert', first)).toMatchObject({ status: 200, text: '"inserted"' });
      // Kept by the time the response arrived: COMMIT came before it.
      expect(await marksKept(first)).toBe(1);
      expect((await get(url, '/tx/insert-callback', second)).status).toBe(200);
      expect(await marksKept(second)).toBe(1);
      expect(guard.stats().transactions).toEqual({ committed: 2, rolledBack: 0 });
      await noneIdleInTransaction(name);
    });

    it('rolls back the work of a handler that throws', async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage);
      const mark = newMark();
      expect((await get(url, '/tx/insert-throw', mark)).status).toBe(500);
      await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 }));
      expect(await marksKept(mark)).toBe(0);
      expect(stage.errors).toEqual([expect.any(RouteError)]);
      await noneIdleInTransaction(name);
    });

    it('rolls back the work of a 4xx and of a 5xx response', async () => {
      const stage = context.begin();
      const { url, guard } = await serve(stage);
      const [client4xx, server5xx] = [newMark(), newMark()];
      expect((await get(url, '/tx/insert-400', client4xx)).status).toBe(400);
      expect((await get(url, '/tx/insert-500', server5xx)).status).toBe(500);
      await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 2 }));
      expect(await marksKept(client4xx)).toBe(0);
      expect(await marksKept(server5xx)).toBe(0);
    });

    it('commits the statuses commitOn accepts', async () => {
      const stage = context.begin();
      const { url, guard } = await serve(stage, { commitOn: (status) => status < 500 });
      const [client4xx, server5xx] = [newMark(), newMark()];
      expect((await get(url, '/tx/insert-400', client4xx)).status).toBe(400);
      expect(await marksKept(client4xx)).toBe(1);
      expect((await get(url, '/tx/insert-500', server5xx)).status).toBe(500);
      await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 1 }));
      expect(await marksKept(server5xx)).toBe(0);
    });

    it('answers 500 when COMMIT fails (a deferred constraint), through the framework, and keeps nothing', async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage);
      const mark = newMark();
      expect((await get(url, '/tx/deferred', mark)).status).toBe(500);
      expect(await marksKept(mark)).toBe(0);
      expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 });
      expect(await client.get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
      await noneIdleInTransaction(name);
    });

    it('runs a route with its own transaction(false) outside it: its work is kept although it failed', async () => {
      const stage = context.begin();
      const { url, guard } = await serve(stage);
      const mark = newMark();
      expect((await get(url, '/tx/autocommit', mark)).status).toBe(500);
      expect(await marksKept(mark)).toBe(1);
      expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 0 });
    });

    it("streams a cursor's rows inside it, without waiting for a COMMIT the cursor would hold up, and ends it once the body is done", async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage);
      const response = await client.get(`${url}/cursor?n=1000`);
      expect(response.status).toBe(200);
      expect(response.text.split('\n').filter(Boolean)).toHaveLength(1000);
      await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 0 }));
      expect(state.cursorsClosed).toBe(1);
      await noneIdleInTransaction(name);
    });

    it('ends the transaction of a request whose client hangs up mid-stream', async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage);
      await client.hangUpMidStream(`${url}/cursor`, client.hangUps[0]!);
      await eventually(() => expect(state.cursorsClosed).toBe(1));
      // Committed before the head where the cursor had not started yet (Koa, Hono, Fastify), else rolled back with the hang-up.
      await eventually(() => {
        const { committed, rolledBack } = guard.stats().transactions;
        expect(committed + rolledBack).toBe(1);
      });
      await noneIdleInTransaction(name);
    });

    describe('when the client hangs up while its handler still runs', () => {
      for (const how of client.hangUps) {
        const by = hangUpTitle(client, how);
        it(`rolls back its work once the handler finished${by}`, async () => {
          const stage = context.begin();
          const { url, guard, name } = await serve(stage);
          const mark = newMark();
          await client.hangUpWhen(`${url}/tx/insert-late?s=0.3&mark=${mark}`, () => state.lateStarted, how);
          await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 }));
          expect(state.lateQueriedOn).toBe(1); // the handler finished: the connection was not given up on
          expect(await marksKept(mark)).toBe(0);
          await eventually(() => expect(guard.stats().released).toBe(1));
          await noneIdleInTransaction(name);
        });

        it(`commits its work with commitAfterHangUp${by}`, async () => {
          const stage = context.begin();
          const { url, guard } = await serve(stage, { commitAfterHangUp: true });
          const mark = newMark();
          await client.hangUpWhen(`${url}/tx/insert-late?s=0.3&mark=${mark}`, () => state.lateStarted, how);
          await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 0 }));
          expect(await marksKept(mark)).toBe(1);
        });
      }
    });

    if (context.giveUps) it('rolls back the work of a request that shutdown gives up on', async () => {
      const stage = context.begin();
      const { url, guard, name } = await serve(stage, true, SHORT_GRACE_MS);
      const mark = newMark();
      const inFlight = get(url, '/tx/insert-hang', mark).catch((error: unknown) => error);
      await eventually(() => expect(state.querying).toBe(true));
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await inFlight).toBeInstanceOf(Error);
      expect(guard.stats()).toMatchObject({ transactions: { committed: 0, rolledBack: 1 }, destroyed: { abandoned: 1 } });
      expect(await marksKept(mark)).toBe(0);
      await noneIdleInTransaction(name);
    });
  });

  describe('with transaction off', () => {
    it('runs a route with its own transaction(true) inside one: its work is rolled back with its failure', async () => {
      const stage = context.begin();
      const { url, guard } = await serve(stage, false);
      const [atomic, plain] = [newMark(), newMark()];
      expect((await get(url, '/tx/atomic', atomic)).status).toBe(500);
      await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 }));
      expect(await marksKept(atomic)).toBe(0);
      // Elsewhere each statement is its own transaction, kept at once.
      expect((await get(url, '/tx/insert-throw', plain)).status).toBe(500);
      expect(await marksKept(plain)).toBe(1);
    });
  });

  describe("a GuardedPool's checkouts in a transaction request", () => {
    /** Serves the routes on a GuardedPool of one client (so a checkout that did not join would wait forever), with transactions on. */
    async function serveCheckouts(stage: Stage, use: (url: string, guard: ConnectionClosingMiddleware) => Promise<void>): Promise<void> {
      const name = `closeguard-conformance-${process.pid}-checkouts-${++checkoutPools}`;
      const pool = new GuardedPool({ connectionString: context.connectionString(), application_name: name, max: 1 }, { logger: quiet });
      pool.on('error', () => undefined);
      try {
        state.checkoutPool = pool;
        const { url, guard } = await stage.serve({ pool, transaction: true });
        await use(url, guard);
        await eventually(() => expect(pool.totalCount - pool.idleCount).toBe(0));
        await noneIdleInTransaction(name);
      } finally {
        await pool.end();
      }
    }

    it("join it: one backend for db(), connect() and query(); the library's COMMIT keeps its work for the request's, its ROLLBACK undoes only its own", async () => {
      const stage = context.begin();
      await serveCheckouts(stage, async (url, guard) => {
        const mark = newMark();
        const response = await get(url, '/tx/checkout', mark);
        expect(response.status).toBe(200);
        const [own, checkout, queried] = JSON.parse(response.text) as number[];
        expect(checkout).toBe(own);
        expect(queried).toBe(own);
        expect(await marksKept(mark)).toBe(2);
        expect(await marksKept(`${mark}-undone`)).toBe(0);
        expect(guard.stats().transactions).toEqual({ committed: 1, rolledBack: 0 });
      });
    });

    it("are rolled back with the request's 5xx, the work the library committed as well", async () => {
      const stage = context.begin();
      await serveCheckouts(stage, async (url, guard) => {
        const mark = newMark();
        expect((await get(url, '/tx/checkout-500', mark)).status).toBe(500);
        await eventually(() => expect(guard.stats().transactions).toEqual({ committed: 0, rolledBack: 1 }));
        expect(await marksKept(mark)).toBe(0);
      });
    });
  });
}
