// PostgreSQL's side of the books: the backends a pool's application_name holds, and their state,
// read through one admin connection of its own (never counted, never borrowed from a pool under test).
import pg from 'pg';

export interface BackendCounts {
  total: number;
  /** Backends running a statement, or holding a transaction open between statements. */
  busy: number;
}

const ADMIN_APPLICATION_NAME = 'closeguard-faults-admin';

export class Backends {
  readonly #client: pg.Client;

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  static async connect(databaseUrl: string): Promise<Backends> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: ADMIN_APPLICATION_NAME });
    await client.connect();
    return new Backends(client);
  }

  /** The backends of `applicationName` right now: all of them, and those `active` or `idle in transaction`. */
  async count(applicationName: string): Promise<BackendCounts> {
    const { rows } = await this.#client.query<BackendCounts>(
      `SELECT count(*)::int AS total,
              (count(*) FILTER (WHERE state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')))::int AS busy
         FROM pg_stat_activity WHERE application_name = $1`,
      [applicationName],
    );
    return rows[0] ?? { total: 0, busy: 0 };
  }

  end(): Promise<void> {
    return this.#client.end();
  }
}
