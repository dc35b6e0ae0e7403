// The Drizzle example started for real on the tests' PostgreSQL: every route as its README says,
// the transaction that fails half way and the client that hangs up during a slow query, and after
// each test nothing borrowed, no backend idle in a transaction or still running, and none left
// once the app is closed. Then server.ts run as a command, stopped with Ctrl-C.
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { signals, type LeakMessage } from '@closeguard/core';
import { backendsFor, databaseUrl, hangUpWhen } from '@closeguard/conformance';
import { listeningUrl, SETTLED, spawnExample } from '../shared/example-suite.ts';
import { APPLICATION_NAME, start, type Running } from './server.ts';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
/** The accounts every start puts back, as GET /accounts answers them. */
const SEEDED = [
  { id: 1, owner: 'Ada', balance: 100 },
  { id: 2, owner: 'Grace', balance: 50 },
];

/** The example's backends as pg_stat_activity shows them, read on one connection of the test's own. */
let admin: pg.Client;
async function backendStates(): Promise<Array<{ state: string | null; query: string }>> {
  const { rows } = await admin.query<{ state: string | null; query: string }>(
    'SELECT state, query FROM pg_stat_activity WHERE application_name = $1',
    [APPLICATION_NAME],
  );
  return rows;
}

/** Nothing borrowed from the pool or waiting for it, and no backend in a transaction or running a statement. */
async function expectNothingHeld(running: Running): Promise<void> {
  expect({ borrowed: running.pool.totalCount - running.pool.idleCount, waiting: running.pool.waitingCount }).toEqual({ borrowed: 0, waiting: 0 });
  expect((await backendStates()).filter((backend) => backend.state !== 'idle')).toEqual([]);
}

describe('examples/express-drizzle', () => {
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: databaseUrl(), application_name: 'closeguard-example-express-drizzle-test' });
    await admin.connect();
  });
  afterAll(() => admin.end());

  describe('start(databaseUrl)', () => {
    let running: Running;
    const leaks: LeakMessage[] = [];
    const onLeak = (message: LeakMessage): void => void leaks.push(message);
    const get = async (path: string): Promise<unknown> => {
      const response = await fetch(`${running.url}${path}`);
      expect(response.status).toBe(200);
      return response.json();
    };
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${running.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    beforeEach(async () => {
      leaks.length = 0;
      signals.leak.subscribe(onLeak);
      running = await start(databaseUrl());
    });

    // Every test ends with nothing held; closing the app leaves no backend of its own.
    afterEach(async () => {
      signals.leak.unsubscribe(onLeak);
      try {
        await vi.waitFor(() => expectNothingHeld(running), SETTLED);
      } finally {
        await running.close();
      }
      await vi.waitFor(async () => expect(await backendsFor(APPLICATION_NAME)).toBe(0), SETTLED);
    });

    describe('GET /accounts', () => {
      it('answers the accounts, read with db.select(), on a checkout of the request that is given back', async () => {
        expect(await get('/accounts')).toEqual(SEEDED);
        await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leased: 1, released: 1 }), SETTLED);
      });
    });

    describe('POST /accounts', () => {
      it('inserts the account with db.insert() and answers 201 with it', async () => {
        const response = await post('/accounts', { owner: 'Linus', balance: 10 });
        expect(response.status).toBe(201);
        expect(await response.json()).toEqual({ id: 3, owner: 'Linus', balance: 10 });
        expect(await get('/accounts')).toEqual([...SEEDED, { id: 3, owner: 'Linus', balance: 10 }]);
      });

      it('answers 400 to a malformed account without checking a client out', async () => {
        const response = await post('/accounts', { owner: '' });
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'owner must be a non-empty string' });
        expect(running.guard.stats().leased).toBe(0);
      });
    });

    describe('POST /transfers', () => {
      it('moves the amount in db.transaction(), records it, and answers 201', async () => {
        const response = await post('/transfers', { from: 1, to: 2, amount: 30 });
        expect(response.status).toBe(201);
        expect(await response.json()).toEqual({ id: 1, amount: 30, from: { id: 1, balance: 70 }, to: { id: 2, balance: 80 } });
        const ledger = (await get('/transfers')) as Array<Record<string, unknown>>;
        expect(ledger).toMatchObject([{ id: 1, fromId: 1, toId: 2, amount: 30 }]);
        expect(Object.keys(ledger[0]!)).toEqual(['id', 'fromId', 'toId', 'amount', 'at']);
      });

      it('answers 409 to an overdraft, and the transaction keeps nothing', async () => {
        const response = await post('/transfers', { from: 2, to: 1, amount: 1_000 });
        expect(response.status).toBe(409);
        expect(await response.json()).toEqual({ error: 'insufficient funds' });
        expect(await get('/accounts')).toEqual(SEEDED);
        expect(await get('/transfers')).toEqual([]);
      });

      it('answers 404 for an unknown account, and the debit already made is rolled back', async () => {
        const response = await post('/transfers', { from: 1, to: 99, amount: 5 });
        expect(response.status).toBe(404);
        expect(await response.json()).toEqual({ error: 'no such account' });
        expect(await get('/accounts')).toEqual(SEEDED);
      });

      it('answers 400 to a malformed transfer without checking a client out', async () => {
        const response = await post('/transfers', { from: 1, to: 2, amount: 'ten' });
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'amount must be a positive integer' });
        expect(running.guard.stats().leased).toBe(0);
      });
    });

    describe('POST /transfers/batch', () => {
      it('commits every transfer of the batch and releases its client', async () => {
        const response = await post('/transfers/batch', [
          { from: 1, to: 2, amount: 10 },
          { from: 2, to: 1, amount: 5 },
        ]);
        expect(response.status).toBe(201);
        expect(await response.json()).toEqual([
          { id: 1, amount: 10, from: { id: 1, balance: 90 }, to: { id: 2, balance: 60 } },
          { id: 2, amount: 5, from: { id: 2, balance: 55 }, to: { id: 1, balance: 95 } },
        ]);
        expect(running.guard.stats().leaksReclaimed).toBe(0);
      });

      describe('when a transfer fails half way, past COMMIT and release()', () => {
        it('an overdraft: answers 409, keeps nothing, destroys the client left in the failed transaction, and reports the leak with its route', async () => {
          const response = await post('/transfers/batch', [
            { from: 1, to: 2, amount: 30 },
            { from: 2, to: 1, amount: 1_000 },
          ]);
          expect(response.status).toBe(409);
          expect(await response.json()).toEqual({ error: 'insufficient funds' });
          await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leaksReclaimed: 1, destroyed: { unusable: 1 } }), SETTLED);
          expect(leaks.map((leak) => leak.route)).toEqual(['/transfers/batch']);
          await vi.waitFor(() => expectNothingHeld(running), SETTLED); // no backend idle in the failed transaction
          expect(await get('/accounts')).toEqual(SEEDED); // the first transfer was never committed
          expect(await get('/transfers')).toEqual([]);
        });

        it('an unknown account: answers 404, keeps nothing, ends the open transaction with its client, and leaves no row locked', async () => {
          const response = await post('/transfers/batch', [
            { from: 1, to: 2, amount: 30 },
            { from: 1, to: 99, amount: 5 },
          ]);
          expect(response.status).toBe(404);
          await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leaksReclaimed: 1, destroyed: { abandoned: 1 } }), SETTLED);
          expect(leaks.map((leak) => leak.route)).toEqual(['/transfers/batch']);
          await vi.waitFor(() => expectNothingHeld(running), SETTLED); // no backend idle in the open transaction
          expect(await get('/accounts')).toEqual(SEEDED);
          // Rows 1 and 2 were locked by the transaction: had it stayed open, this would wait for good.
          const next = await post('/transfers', { from: 1, to: 2, amount: 30 });
          expect(next.status).toBe(201);
          expect(await next.json()).toMatchObject({ from: { id: 1, balance: 70 }, to: { id: 2, balance: 80 } });
        });
      });

      it('answers 400 to an empty batch without checking a client out', async () => {
        const response = await post('/transfers/batch', []);
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'a batch is a JSON array of 1 to 100 transfers' });
        expect(running.guard.stats().leased).toBe(0);
      });
    });

    describe('GET /report', () => {
      it('answers the number of accounts and their total balance after the delay', async () => {
        expect(await get('/report?delay=0')).toEqual({ accounts: 2, total: 150 });
      });

      it('answers 400 to a delay that is not 0 to 60 seconds', async () => {
        const response = await fetch(`${running.url}/report?delay=soon`);
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'delay must be a number of seconds from 0 to 60' });
      });

      describe('when the client hangs up during the slow query', () => {
        it('cancels the query after abortGrace, destroys its client, and answers the next request', async () => {
          const sleeping = async (): Promise<boolean> => (await backendStates()).some((backend) => backend.state === 'active' && backend.query.includes('pg_sleep'));
          await hangUpWhen(`${running.url}/report?delay=60`, sleeping);
          await vi.waitFor(() => expect(running.guard.stats().destroyed.abandoned).toBe(1), SETTLED);
          await vi.waitFor(() => expectNothingHeld(running), SETTLED); // the pg_sleep no longer runs
          expect(running.guard.stats().leaksReclaimed).toBe(0); // Drizzle's own checkout, cut short: not a leak
          expect(await get('/report?delay=0')).toEqual({ accounts: 2, total: 150 });
        });
      });
    });
  });

  describe('server.ts run as a command', () => {
    it('listens, answers GET /accounts, and exits with code 0 on Ctrl-C (SIGINT), leaving no backend', async () => {
      const { child, exited } = spawnExample(SERVER);
      try {
        const url = await listeningUrl(child.stdout);
        const response = await fetch(`${url}/accounts`);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual(SEEDED);
        child.kill('SIGINT');
        expect(await exited).toBe(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await vi.waitFor(async () => expect(await backendsFor(APPLICATION_NAME)).toBe(0), SETTLED);
    });
  });
});
