import { beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { CloseguardTypeError, ConnectionClosingMiddleware } from '@closeguard/core';
import { backendPidOf, backendsFor, terminateBackend } from '@closeguard/conformance';
import { GuardedPool } from '@closeguard/pg';
import { admin, eventually, useGuardedHarness } from './guarded-harness.ts';

const harness = useGuardedHarness();

let markCounter = 0;
const newMark = (): string => `plain-${process.pid}-${++markCounter}`;

async function marksKept(mark: string): Promise<number> {
  return admin(async (client) => (await client.query<{ count: number }>('SELECT count(*)::int AS count FROM closeguard_guarded_marks WHERE mark = $1', [mark])).rows[0]!.count);
}

beforeAll(async () => {
  await admin((client) => client.query('CREATE TABLE IF NOT EXISTS closeguard_guarded_marks (mark text)'));
});

function transactionStatusOf(client: pg.PoolClient): string | null | undefined {
  return (client as pg.PoolClient & { getTransactionStatus?(): string | null }).getTransactionStatus?.();
}

describe('GuardedPool', () => {
  it('is a pg.Pool, which the guard takes as it is (a plain pg.Pool still needs fromPgPool())', () => {
    const { pool } = harness.guardedPool(3);
    expect(pool).toBeInstanceOf(pg.Pool);
    expect(new ConnectionClosingMiddleware({ pool }).stats().pools).toEqual({ default: { max: 3, size: 0, available: 0, borrowed: 0, pending: 0 } });
    expect(Object.keys(new ConnectionClosingMiddleware({ pools: { main: pool } }).stats().pools)).toEqual(['main']);
    const plain = new pg.Pool({ max: 1 });
    expect(() => new ConnectionClosingMiddleware({ pool: plain as never })).toThrow(/fromPgPool\(\)/);
    void plain.end();
  });

  describe('outside a request', () => {
    it('rolls back a transaction left open before the client goes back to idle (a plain pg.Pool hands it on inside it)', async () => {
      const { pool } = harness.guardedPool(1);
      const mark = newMark();
      const client = await pool.connect();
      await client.query('BEGIN');
      await client.query('INSERT INTO closeguard_guarded_marks VALUES ($1)', [mark]);
      client.release();
      const next = await pool.connect();
      try {
        expect(next).toBe(client);
        expect(transactionStatusOf(next)).toBe('I');
        expect(await marksKept(mark)).toBe(0);
      } finally {
        next.release();
      }
    });

    it('destroys a client left in a failed transaction', async () => {
      const { pool } = harness.guardedPool(1);
      const removed = new Promise((resolve) => pool.once('remove', resolve));
      const client = await pool.connect();
      await client.query('BEGIN');
      await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
      client.release();
      expect(await removed).toBe(client);
      expect(pool.totalCount).toBe(0);
    });

    it('destroys a client whose backend died while it was checked out', async () => {
      const { pool, name } = harness.guardedPool(1);
      const client = await pool.connect();
      const ended = new Promise((resolve) => client.once('end', resolve));
      expect(await terminateBackend(await backendPidOf(client))).toBe(true);
      await ended;
      client.release();
      await eventually(() => expect(pool.totalCount).toBe(0));
      expect(await backendsFor(name)).toBe(0);
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });

    it('waits abortGrace for a client released while its query runs, then cancels the query and destroys the client', async () => {
      const { pool, name } = harness.guardedPool(1, { abortGrace: 100 });
      const client = await pool.connect();
      const sleeping = client.query('SELECT pg_sleep(30)');
      client.release();
      await expect(sleeping).rejects.toThrow();
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
      expect(pool.totalCount).toBe(0);
    });

    it('ignores a second release() of one checkout (pg.Pool throws)', async () => {
      const { pool } = harness.guardedPool(1);
      const client = await pool.connect();
      client.release();
      expect(() => client.release()).not.toThrow();
      expect([pool.totalCount, pool.idleCount]).toEqual([1, 1]);
    });
  });

  it("still fires pg.Pool's events: connect, acquire, release, remove, and error for an idle client whose backend died", async () => {
    const { pool } = harness.guardedPool(1);
    const events: string[] = [];
    for (const name of ['connect', 'acquire', 'release', 'remove'] as const) pool.on(name, () => void events.push(name));
    const errored = new Promise<Error>((resolve) => pool.once('error', resolve));
    const client = await pool.connect();
    const pid = await backendPidOf(client);
    client.release();
    expect(events).toEqual(['connect', 'acquire', 'release']);
    await terminateBackend(pid);
    expect(await errored).toBeInstanceOf(Error);
    await eventually(() => expect(events).toEqual(['connect', 'acquire', 'release', 'remove']));
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it("ends as pg.Pool's end() does, and a second end() (the guard's close(), then the app's) gets the same promise", async () => {
    const { pool, name } = harness.guardedPool(2);
    await pool.query('SELECT 1');
    const first = pool.end();
    expect(pool.end()).toBe(first);
    await first;
    await new Promise<void>((resolve) => pool.end(resolve));
    expect(pool.ended).toBe(true);
    await expect(pool.connect()).rejects.toThrow(/after calling end/);
    await eventually(async () => expect(await backendsFor(name)).toBe(0));
  });

  describe('given a wrong argument or option', () => {
    it.each([
      ['a connection string', () => new GuardedPool('postgres://localhost/db' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /config object/],
      ['an array', () => new GuardedPool([] as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /received an array/],
      ['a pg.Pool', () => new GuardedPool(new pg.Pool() as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /received BoundPool/],
      ['max of 0', () => new GuardedPool({ max: 0 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /config\.max/],
      ['options that are no object', () => new GuardedPool({}, 5000 as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /options object/],
      ['an unknown option', () => new GuardedPool({}, { max: 3 } as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /no option max/],
      ['abortGrace below 0', () => new GuardedPool({}, { abortGrace: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /abortGrace/],
      ['abortGrace as a string', () => new GuardedPool({}, { abortGrace: '5s' as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /abortGrace/],
      ['a logger without error()', () => new GuardedPool({}, { logger: {} as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /logger/],
    ])('%s: throws a TypeError with its code and a message naming it', (_name, make, code, message) => {
      expect(make).toThrow(CloseguardTypeError);
      expect(make).toThrow(TypeError);
      expect(make).toThrow(message);
      expect(make).toThrow(expect.objectContaining({ code }) as Error);
    });
  });
});
