// The guarantees through a real PgBouncer in transaction pooling mode in front of the run's
// PostgreSQL (issue 16): the guarded conformance cases that hold behind a pooler, on the node host
// and Express, on both pg pools, each pool connecting to PgBouncer. Every case ends with the direct
// suite's checks (nothing borrowed, no backend carrying the pool's name beyond its idle clients,
// requestFinished once, nothing escaped); then PgBouncer itself is asked what it still holds.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { databaseUrl, guardedSuite, pgDriver, pgPoolDriver, usePgBouncer, type GuardedCases } from '@closeguard/conformance';
import { expressHost } from '../conformance/hosts/express.ts';
import { nodeGuardedHost } from '../conformance/hosts/node.ts';

/**
 * Throws and rejections; hang-ups mid-query (the handler finishes, or the request waited in the
 * queue); transactions a handler left aborted or open; cursors cut mid-stream; overload shed with
 * 503; two pools and a hand-acquired client reclaimed; request transactions (a throw, a failed
 * COMMIT, hang-ups mid-query and mid-stream).
 *
 * Left out: the cases where the guard gives up on a connection (giveUps), since @closeguard/pg's
 * server-side cancel is lost through PgBouncer 1.18 or crashes it; and 'release' and 'shutdown',
 * whose premise is a client tied to its backend: through PgBouncer a backend terminated between two
 * statements is not the client's (its next statement runs on another one), and a client destroyed
 * or ended while idle leaves its server connection in PgBouncer's pool, still carrying its name.
 */
const CASES: GuardedCases[] = ['leases', 'hangUps', 'leftTransactions', 'streams', 'admission', 'pools', 'transactions'];

describe('through PgBouncer in transaction pooling mode', () => {
  const bouncer = usePgBouncer({ poolMode: 'transaction' });

  for (const host of [nodeGuardedHost, expressHost]) {
    for (const driver of [pgDriver, pgPoolDriver]) {
      describe(`${host.name} routes through ${driver.name}`, () => guardedSuite(host, driver, { cases: CASES, connectionString: () => bouncer.url, giveUps: false }));
    }
  }

  describe('once every case closed its pools', () => {
    it('PgBouncer has no client left and no server connection running a query or inside a transaction', async () => {
      const pools = await query<{ database: string; cl_active: number; cl_waiting: number; sv_active: number }>(bouncer.adminUrl, 'SHOW POOLS');
      expect(pools.filter(({ database }) => database !== 'pgbouncer').map(({ cl_active, cl_waiting, sv_active }) => ({ cl_active, cl_waiting, sv_active }))).toEqual([{ cl_active: 0, cl_waiting: 0, sv_active: 0 }]);
      // PgBouncer keeps its server connections; each carries the name of the last pool that ran on it.
      const states = await query<{ state: string }>(databaseUrl(), 'SELECT state FROM pg_stat_activity WHERE application_name LIKE $1', [`closeguard-conformance-${process.pid}-%`]);
      expect(states.length).toBeGreaterThan(0);
      expect(states.filter(({ state }) => state !== 'idle')).toEqual([]);
    });
  });
});

async function query<T>(url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'closeguard-test-admin' });
  await client.connect();
  try {
    return (await client.query<T & pg.QueryResultRow>(text, values)).rows;
  } finally {
    await client.end();
  }
}
