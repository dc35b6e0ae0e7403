// The audit's PostgreSQL: the one DATABASE_URL points at, else a throwaway embedded server
// (launchPostgres: under root, initdb and postgres run as `nobody`; removed on stop and when this
// process dies).
// An admin connection of its own counts the backends each run's pool leaves behind.
import pg from 'pg';
import { launchPostgres } from '../packages/conformance/src/postgres/postgres-launcher.ts';

export interface Database {
  url: string;
  /** How it was found or started, for the report. */
  origin: string;
  /** How many backends are connected with this application_name. */
  backendsFor(applicationName: string): Promise<number>;
  /** Of them, how many sit idle inside a transaction (open, or aborted by an error). */
  idleInTransaction(applicationName: string): Promise<number>;
  /** Ends the backends of this application_name (leaked connections a run cannot give back). */
  terminate(applicationName: string): Promise<void>;
  /** Closes the admin connection and stops the embedded server; idempotent. */
  stop(): Promise<void>;
}

const ADMIN_APPLICATION_NAME = 'closeguard-audit-admin';

/** Starts (or adopts) the database. `root` is the repository root, where `--import tsx` resolves. */
export async function openDatabase(root: string, databaseUrl = process.env.DATABASE_URL): Promise<Database> {
  const launched = databaseUrl ? undefined : await launchPostgres(root);
  const url = databaseUrl ?? launched!.url;
  const admin = new pg.Client({ connectionString: url, application_name: ADMIN_APPLICATION_NAME });
  admin.on('error', () => undefined); // the server going away at stop() is not news
  try {
    await admin.connect();
  } catch (error) {
    await launched?.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    origin: launched ? 'embedded PostgreSQL (started for this run, removed after it)' : 'DATABASE_URL',
    async backendsFor(applicationName) {
      const result = await admin.query<{ count: number }>('SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      return result.rows[0]?.count ?? 0;
    },
    async idleInTransaction(applicationName) {
      const result = await admin.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
        [applicationName],
      );
      return result.rows[0]?.count ?? 0;
    },
    async terminate(applicationName) {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    },
    stop: () =>
      (stopping ??= (async () => {
        await admin.end().catch(() => undefined);
        await launched?.stop();
      })()),
  };
}
