// The run's PostgreSQL as the ORM suite sees it: a library's tables made by SQL, and what a pool's
// backends are doing (pg_stat_activity), read on one administrative connection.
import pg from 'pg';
import { databaseUrl } from '@closeguard/conformance';
import type { Observed } from './library.ts';

const ADMIN_APPLICATION_NAME = 'closeguard-orm-admin';

/** Runs `statement` on its own short-lived connection: a library's tables, made by SQL. */
export async function runSql(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: ADMIN_APPLICATION_NAME });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** One backend of a pool, as pg_stat_activity shows it. */
export interface Backend {
  pid: number;
  state: string | null;
  query: string;
}

/** pg_stat_activity on one administrative connection, opened for a test file. */
export class Activity {
  #client: pg.Client | undefined;

  async open(): Promise<void> {
    this.#client = new pg.Client({ connectionString: databaseUrl(), application_name: ADMIN_APPLICATION_NAME });
    await this.#client.connect();
  }

  async close(): Promise<void> {
    await this.#client?.end();
  }

  /** The backends connected with `applicationName`. */
  async of(applicationName: string): Promise<Backend[]> {
    const { rows } = await this.#client!.query<Backend>('SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    return rows;
  }

  /** What `pool` (whose clients connect as `applicationName`) holds and its backends do. */
  async observe(pool: pg.Pool, applicationName: string): Promise<Observed> {
    const backends = await this.of(applicationName);
    return {
      borrowed: pool.totalCount - pool.idleCount,
      idleInTransaction: backends.filter((backend) => backend.state?.startsWith('idle in transaction') === true).length,
      active: backends.filter((backend) => backend.state === 'active').length,
    };
  }

  /** Whether a backend of `applicationName` is running a statement containing `text`. */
  async isRunning(applicationName: string, text: string): Promise<boolean> {
    return (await this.of(applicationName)).some((backend) => backend.state === 'active' && backend.query.includes(text));
  }
}
