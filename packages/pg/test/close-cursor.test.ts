import pg from 'pg';
import Cursor from 'pg-cursor';
import { describe, expect, it } from 'vitest';
import { connection } from '@closeguard/core';
import { closeCursor } from '@closeguard/pg';
import { backendPids, databaseUrl, terminateBackend } from '@closeguard/conformance';
import { eventually, useHarness } from './harness.ts';

const harness = useHarness();

/** Rows that take PostgreSQL a while each: a read is still pending when the client goes away. */
const SLOW_ROWS = 'SELECT g, pg_sleep(0.3) AS slept FROM generate_series(1, 6) g';

describe('closeCursor(cursor, client)', () => {
  it('closes a cursor on a live client, as cursor.close() does', async () => {
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      const cursor = client.query(new Cursor('SELECT g FROM generate_series(1, 1000) g'));
      expect(await cursor.read(10)).toHaveLength(10);
      await closeCursor(cursor, client);
      expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('settles when the client ends during a read (pg-cursor\'s close() waits for a ReadyForQuery that never comes)', async () => {
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    const cursor = client.query(new Cursor(SLOW_ROWS));
    const read = cursor.read(6).catch((error: unknown) => error);
    await client.end();
    expect(await read).toBeInstanceOf(Error);
    await closeCursor(cursor, client);
  });

  describe('in a route whose backend is terminated while a read runs (a restart, a failover)', () => {
    it("lets the route's finally finish, and the dead client is destroyed", async () => {
      const { pool, name } = harness.pool(1);
      let reading = false;
      let finallyDone = 0;
      const { url, guard } = await harness.serve(async (_env, start) => {
        const client = await connection<pg.Client>();
        const cursor = client.query(new Cursor(SLOW_ROWS));
        start(200, { 'content-type': 'application/x-ndjson' });
        return (async function* () {
          try {
            yield '[\n'; // the headers go out; the backend dies during the next read
            reading = true;
            for (let rows = await cursor.read(6); rows.length > 0; rows = await cursor.read(6)) yield `${JSON.stringify(rows)}\n`;
          } finally {
            await closeCursor(cursor, client);
            finallyDone++;
          }
        })();
      }, { pool });
      const response = fetch(url).then((answer) => answer.text()).catch((error: unknown) => error);
      await eventually(() => expect(reading).toBe(true));
      const [pid] = await backendPids(name);
      await terminateBackend(pid!);
      expect(await response).toBeInstanceOf(Error); // cut after the headers: never taken as whole
      await eventually(() => expect(finallyDone).toBe(1));
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(guard.stats().released).toBe(0);
    });
  });
});
