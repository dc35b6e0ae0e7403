// The example app's business logic, shared by every framework and both modes: the SQL, the row
// formatting and the cursor stream. The apps differ only in how they get and give back a connection.
import { Readable } from 'node:stream';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { closeCursor } from '@closeguard/pg';

/** One account, made up from its id: no table to create, nothing left in a DATABASE_URL database. */
const ACCOUNT_SQL = `SELECT id, 'account-' || id AS name, (id * 37) % 1000 AS balance FROM generate_series(1, 1000) id WHERE id = $1`;
/** A search by regular expression: an invalid pattern (`(`) makes PostgreSQL reject the query. */
const SEARCH_SQL = `SELECT id, name FROM (SELECT id, 'account-' || md5(id::text) AS name FROM generate_series(1, 200) id) a WHERE name ~ $1 ORDER BY id LIMIT 5`;
/** A share computed inside the transaction: amount 0 is a division by zero, which aborts it. */
export const TRANSFER_SQL = 'SELECT 1000 / $1::int AS share';
export const SLOW_SQL = 'SELECT pg_sleep($1::float8) AS slept';
export const EXPORT_SQL = 'SELECT id, md5(id::text) AS digest FROM generate_series(1, $1::int) id';
const CURSOR_BATCH_ROWS = 100;

export const NDJSON = 'application/x-ndjson';

export interface Account {
  id: number;
  name: string;
  balance: number;
}

export async function findAccount(client: pg.Client, id: number): Promise<Account | undefined> {
  return (await client.query<Account>(ACCOUNT_SQL, [id])).rows[0];
}

export async function search(client: pg.Client, pattern: string): Promise<unknown[]> {
  return (await client.query<Record<string, unknown>>(SEARCH_SQL, [pattern])).rows;
}

/**
 * Formats an account for the response. Throws (a plain bug in the handler, after the connection
 * was taken) for a format it does not know.
 */
export function formatAccount(account: Account | undefined, format: unknown): unknown {
  if (format !== undefined && format !== 'json') throw new TypeError(`unknown format ${typeof format === 'string' ? format : typeof format}`);
  return account ?? { error: 'no such account' };
}

/** Rows streamed from a pg-cursor as NDJSON; the cursor is closed when the stream ends or is destroyed. */
export function exportRows(client: pg.Client, count: number): Readable {
  const cursor = client.query(new Cursor(EXPORT_SQL, [count]));
  async function* rows(): AsyncGenerator<string> {
    try {
      for (let batch = await cursor.read(CURSOR_BATCH_ROWS); batch.length > 0; batch = await cursor.read(CURSOR_BATCH_ROWS)) {
        yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
      }
    } finally {
      await closeCursor(cursor, client);
    }
  }
  return Readable.from(rows(), { objectMode: false });
}

/** A number from a query string or route parameter, or the fallback. */
export function numberParam(value: unknown, fallback: number): number {
  const parsed = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : fallback;
}

/** A string from a query string, or the fallback. */
export function stringParam(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}
