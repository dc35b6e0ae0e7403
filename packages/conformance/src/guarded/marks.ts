// A table on the run's PostgreSQL that the transaction routes insert marks into, and what the
// cases read back through their own admin connection: whether a request's work was kept.
import pg from 'pg';
import { databaseUrl } from '../postgres/index.ts';

/** The table: `key` is unique and checked only at COMMIT (`DEFERRABLE INITIALLY DEFERRED`). */
export const MARKS_TABLE = 'closeguard_conformance_marks';

let counter = 0;

/** A mark no other test (in any worker) inserts. */
export function newMark(): string {
  return `mark-${process.pid}-${Date.now()}-${++counter}`;
}

/** Creates the table once; test files create it at once in several workers, so under a lock. */
export async function ensureMarksTable(): Promise<void> {
  await admin(async (client) => {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [MARKS_TABLE]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${MARKS_TABLE} (mark text NOT NULL, key text UNIQUE DEFERRABLE INITIALLY DEFERRED)`);
    await client.query('COMMIT');
  });
}

/** How many rows carry `mark` (or start with it, for a route that inserts `mark-a`, `mark-b`…). */
export async function marksKept(mark: string): Promise<number> {
  return admin(async (client) => (await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${MARKS_TABLE} WHERE mark = $1`, [mark])).rows[0]!.count);
}

/** The pg_stat_activity states of the backends with this application_name ('idle', 'idle in transaction'…). */
export async function statesOf(applicationName: string): Promise<string[]> {
  return admin(async (client) => (await client.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [applicationName])).rows.map((row) => row.state));
}

async function admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: 'closeguard-test-admin' });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
