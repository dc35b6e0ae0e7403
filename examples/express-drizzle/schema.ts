// The Drizzle example's tables, as Drizzle declares them, in a PostgreSQL schema of their own
// (`DROP SCHEMA closeguard_express_drizzle CASCADE` removes it), and what the routes read from a
// request before they touch the database.
import { DrizzleQueryError, sql } from 'drizzle-orm';
import { check, integer, pgSchema, serial, text, timestamp } from 'drizzle-orm/pg-core';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { httpError, transferOf, type Transfer } from '../shared/schema.ts';

export { httpError, transferOf, type Transfer } from '../shared/schema.ts';

export const SCHEMA = 'closeguard_express_drizzle';
/** The accounts every start puts back (ids 1 and 2): the demo transfers begin from the same figures. */
export const SEED_ACCOUNTS = [
  { owner: 'Ada', balance: 100 },
  { owner: 'Grace', balance: 50 },
] as const;
/** Longest delay GET /report takes, in seconds. */
export const MAX_REPORT_DELAY_S = 60;
const MAX_BATCH_TRANSFERS = 100;
const CHECK_VIOLATION = '23514';

const example = pgSchema(SCHEMA);

export const accounts = example.table(
  'accounts',
  {
    id: serial('id').primaryKey(),
    owner: text('owner').notNull(),
    balance: integer('balance').notNull(),
  },
  (table) => [check('balance_not_negative', sql`${table.balance} >= 0`)],
);

export const transfers = example.table('transfers', {
  id: serial('id').primaryKey(),
  fromId: integer('from_id').notNull().references(() => accounts.id),
  toId: integer('to_id').notNull().references(() => accounts.id),
  amount: integer('amount').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
});

// The same tables in SQL: a real app would let drizzle-kit generate and run this as a migration.
const TABLES_SQL = `
  CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
  CREATE TABLE IF NOT EXISTS ${SCHEMA}.accounts (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    balance integer NOT NULL,
    CONSTRAINT balance_not_negative CHECK (balance >= 0)
  );
  CREATE TABLE IF NOT EXISTS ${SCHEMA}.transfers (
    id serial PRIMARY KEY,
    from_id integer NOT NULL REFERENCES ${SCHEMA}.accounts,
    to_id integer NOT NULL REFERENCES ${SCHEMA}.accounts,
    amount integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
  );
  TRUNCATE ${SCHEMA}.transfers, ${SCHEMA}.accounts RESTART IDENTITY;
`;

/** Creates the tables if they are missing and puts the seed accounts back (startup work, outside any request). */
export async function createTables(pool: pg.Pool, db: NodePgDatabase): Promise<void> {
  await pool.query(TABLES_SQL);
  await db.insert(accounts).values([...SEED_ACCOUNTS]);
}

/** A new account read from a request body: `{ owner, balance? }`. @throws a 400 error naming what is wrong */
export function newAccountOf(body: unknown): { owner: string; balance: number } {
  const { owner, balance = 0 } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof owner !== 'string' || owner.trim() === '') throw httpError(400, 'owner must be a non-empty string');
  if (typeof balance !== 'number' || !Number.isInteger(balance) || balance < 0) throw httpError(400, 'balance must be an integer ≥ 0');
  return { owner, balance };
}

/** A batch of transfers read from a request body: a JSON array of 1 to 100 `{ from, to, amount }`. @throws a 400 error */
export function batchOf(body: unknown): Transfer[] {
  if (!Array.isArray(body) || body.length === 0 || body.length > MAX_BATCH_TRANSFERS) {
    throw httpError(400, `a batch is a JSON array of 1 to ${MAX_BATCH_TRANSFERS} transfers`);
  }
  return body.map(transferOf);
}

/** GET /report's `?delay=` in seconds: 0 to 60, default 2. @throws a 400 error */
export function delayOf(value: unknown): number {
  if (value === undefined) return 2;
  const delay = typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!(delay >= 0 && delay <= MAX_REPORT_DELAY_S)) throw httpError(400, `delay must be a number of seconds from 0 to ${MAX_REPORT_DELAY_S}`);
  return delay;
}

/** Rethrows a failed balance CHECK as a 409 (Drizzle wraps pg's error: it is the cause); any other error as it is. */
export function asOverdraft(error: unknown): never {
  const cause = error instanceof DrizzleQueryError ? error.cause : error;
  if ((cause as { code?: unknown } | null)?.code === CHECK_VIOLATION) throw httpError(409, 'insufficient funds', error);
  throw error;
}
