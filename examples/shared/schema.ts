// The examples' tables, their seed rows, the SQL their routes run, and the transfer's checks.
// Each example keeps everything in a schema of its own (the pool's search_path), so it never
// touches your tables; `DROP SCHEMA <schema> CASCADE` removes it.
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { closeCursor } from '@closeguard/pg';

/** Rows in `events`, streamed by GET /export: enough (~700 kB) that a hang-up lands mid-stream. */
export const EVENT_COUNT = 10_000;
/** The seed balances, put back at every start so the demo transfers begin from the same figures. */
export const SEED_BALANCES = { 1: 100, 2: 50 } as const;
const CURSOR_BATCH_ROWS = 500;

const TABLES_SQL = `
  CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE IF NOT EXISTS accounts (
    id int PRIMARY KEY,
    user_id int NOT NULL REFERENCES users,
    balance int NOT NULL CHECK (balance >= 0)
  );
  CREATE TABLE IF NOT EXISTS events (id int PRIMARY KEY, kind text NOT NULL, at timestamptz NOT NULL);
  INSERT INTO users VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Linus') ON CONFLICT (id) DO NOTHING;
  INSERT INTO accounts VALUES (1, 1, ${SEED_BALANCES[1]}), (2, 2, ${SEED_BALANCES[2]})
    ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance;
  INSERT INTO events
    SELECT g, (ARRAY['signup', 'login', 'transfer'])[1 + g % 3], timestamptz '2026-01-01 00:00Z' + g * interval '1 minute'
    FROM generate_series(1, ${EVENT_COUNT}) g
    ON CONFLICT (id) DO NOTHING;
`;

export interface User {
  id: number;
  name: string;
}

/** An account's balance after a transfer's UPDATE … RETURNING. */
export interface Balance {
  id: number;
  balance: number;
}

export const USERS_SQL = 'SELECT id, name FROM users ORDER BY id';
export const DEBIT_SQL = 'UPDATE accounts SET balance = balance - $1 WHERE id = $2 RETURNING id, balance';
export const CREDIT_SQL = 'UPDATE accounts SET balance = balance + $1 WHERE id = $2 RETURNING id, balance';
export const EVENTS_SQL = 'SELECT id, kind, at FROM events ORDER BY id';

/**
 * The pool's connection settings: the example's application_name and its schema.
 * @throws TypeError when `schema` is not a plain lower-case SQL identifier (it goes into SQL unquoted)
 */
export function connectionConfig(databaseUrl: string, applicationName: string, schema: string): pg.ClientConfig {
  return { connectionString: databaseUrl, application_name: applicationName, options: `-c search_path=${schemaName(schema)}` };
}

/**
 * Creates the schema and its tables if they are missing and seeds them. Startup work outside any
 * request, so it borrows by hand: generic-pool's `use()` releases the client (or destroys it on an error).
 * @throws TypeError when `schema` is not a plain lower-case SQL identifier
 */
export async function createTables(pool: Pool<pg.Client>, schema: string): Promise<void> {
  const name = schemaName(schema); // before the lease: misuse borrows nothing
  await pool.use(async (client) => {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${name}`);
    await client.query(TABLES_SQL);
  });
}

/**
 * The events as NDJSON, read from a pg-cursor a batch at a time. The cursor opens on the first read
 * (a stream never read opens none), and the generator's `finally` closes it — after the last row,
 * and when whoever streams it stops early (a hang-up) and calls `return()`.
 */
export async function* eventsAsNdjson(db: pg.Client): AsyncGenerator<string> {
  const cursor = db.query(new Cursor(EVENTS_SQL));
  try {
    for (let batch = await cursor.read(CURSOR_BATCH_ROWS); batch.length > 0; batch = await cursor.read(CURSOR_BATCH_ROWS)) {
      yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
    }
  } finally {
    await closeCursor(cursor, db);
  }
}

export interface Transfer {
  from: number;
  to: number;
  amount: number;
}

/** A transfer read from a request body. Checked before any connection is leased. @throws a 400 error naming what is wrong */
export function transferOf(body: unknown): Transfer {
  const { from, to, amount } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (!isPositiveInteger(from) || !isPositiveInteger(to)) throw httpError(400, 'from and to must be account ids');
  if (!isPositiveInteger(amount)) throw httpError(400, 'amount must be a positive integer');
  return { from, to, amount };
}

/** An error carrying its HTTP status; a 4xx message is meant for the client (`expose`, as http-errors has it). */
export function httpError(status: number, message: string, cause?: unknown): Error & { status: number; expose: boolean } {
  return Object.assign(new Error(message, { cause }), { status, expose: status < 500 });
}

/** Rethrows PostgreSQL's CHECK violation (a balance below 0) as a 409; any other error as it is. */
export function asOverdraft(error: unknown): never {
  if ((error as { code?: unknown } | null)?.code === CHECK_VIOLATION) throw httpError(409, 'insufficient funds', error);
  throw error;
}

const CHECK_VIOLATION = '23514';
/** What a schema name may be: it is written into SQL and the search_path as it is. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function schemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new TypeError(`schema must be a lower-case SQL identifier (${SCHEMA_NAME.source}); received ${JSON.stringify(schema)}`);
  return schema;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}
