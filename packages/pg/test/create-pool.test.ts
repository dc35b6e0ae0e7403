import { createServer } from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, poolPolicy, type PoolPolicy } from '@closeguard/core';
import * as pgPackage from '@closeguard/pg';
import { createPool, fromPgPool } from '@closeguard/pg';
import { backendsFor, databaseUrl } from '@closeguard/conformance';
import { eventually, useHarness, json } from './harness.ts';

const harness = useHarness();

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('@closeguard/pg exports', () => {
  it('exposes exactly the public names', () => {
    expect(Object.keys(pgPackage).sort()).toEqual(['GuardedPool', 'cancelQuery', 'closeCursor', 'createPool', 'fromPgPool', 'pgPolicy']);
  });
});

describe('createPool(pgConfig, poolOptions)', () => {
  describe('when the database is down', () => {
    it('passes the connection error to the waiting acquirer, and backs off instead of spinning', async () => {
      const pool = createPool({ host: '127.0.0.1', port: await closedPort() }, { max: 1, acquireTimeoutMillis: 1_000 });
      let attempts = 0;
      pool.on('factoryCreateError', () => attempts++);
      await expect(pool.acquire()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      // generic-pool keeps its own request until acquireTimeoutMillis; drain waits for it.
      await pool.drain();
      await pool.clear();
      // Unchecked, generic-pool retries in a hot loop (tens of thousands of attempts a second).
      expect(attempts).toBeLessThan(50);
    });

    it('rejects acquireTimeoutMillis 0 with a TypeError', () => {
      expect(() => createPool({}, { acquireTimeoutMillis: 0 })).toThrow(/acquireTimeoutMillis/);
    });
  });

  describe('the release policy it carries', () => {
    it('tracks the transaction state, rolls back an open transaction and spots a failed one', async () => {
      const { pool } = harness.pool(1);
      const policy = (pool as unknown as { [poolPolicy]: PoolPolicy<pg.Client> })[poolPolicy];
      const client = await pool.acquire();
      await client.query('BEGIN');
      expect(policy.isUsable?.(client)).toBe(true);
      expect(await policy.reset?.(client)).toBe(true);
      await client.query('BEGIN');
      await client.query('SELECT 1/0').catch(() => undefined);
      // pg rejects on the ErrorResponse; the transaction status comes with the ReadyForQuery after it.
      await eventually(() => expect(policy.isBusy?.(client)).toBe(false));
      expect(policy.isUsable?.(client)).toBe(false);
      await pool.destroy(client);
    });

    it('reports a client busy while its query runs', async () => {
      const { pool } = harness.pool(1);
      const policy = (pool as unknown as { [poolPolicy]: PoolPolicy<pg.Client> })[poolPolicy];
      const client = await pool.acquire();
      const running = client.query('SELECT pg_sleep(0.1)');
      expect(policy.isBusy?.(client)).toBe(true);
      await running;
      expect(policy.isBusy?.(client)).toBe(false);
      await pool.release(client);
    });

    it('ends the client on destroy', async () => {
      const { pool, name } = harness.pool(1);
      await pool.release(await pool.acquire());
      expect(await backendsFor(name)).toBe(1);
      await pool.destroy(await pool.acquire());
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });
  });
});

describe('fromPgPool(pool)', () => {
  it('lets a pg.Pool serve the middleware: leased per request, released at its end', async () => {
    const name = `closeguard-test-pgpool-${process.pid}`;
    const pgPool = new pg.Pool({ connectionString: databaseUrl(), application_name: name, max: 2 });
    const pool = fromPgPool(pgPool);
    const { url, guard } = await harness.serve(async (_env, start) => {
      const { rows } = await (await connection<pg.PoolClient>()).query<{ one: number }>('SELECT 1 AS one');
      return json(start, rows[0]?.one);
    }, { pool });
    expect(guard.stats().pools.default?.max).toBe(2);
    expect(await (await fetch(url)).json()).toBe(1);
    await eventually(() => expect(guard.stats().released).toBe(1));
    expect(pool.borrowed).toBe(0);
    await pgPool.end();
    expect(await backendsFor(name)).toBe(0);
  });

  it('throws a TypeError for anything but a pg.Pool', () => {
    expect(() => fromPgPool({} as pg.Pool)).toThrow(TypeError);
  });
});
