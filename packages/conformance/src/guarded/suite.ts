import { describe } from 'vitest';
import { admissionCases } from './cases/admission.ts';
import { hangUpCases } from './cases/hangups.ts';
import { leaseCases } from './cases/leases.ts';
import { leftTransactionCases } from './cases/left-transactions.ts';
import { poolCases } from './cases/pools.ts';
import { releaseCases } from './cases/release.ts';
import { shutdownCases } from './cases/shutdown.ts';
import { streamCases } from './cases/streams.ts';
import { transactionCases } from './cases/transactions.ts';
import type { GuardedDriver } from './driver.ts';
import type { GuardedHost } from './host.ts';
import { pgDriver } from './pg-drivers.ts';
import { useGuardedStage, type GuardedContext } from './stage.ts';

/** The suite's groups of cases, in the order they run. */
const CASES = {
  leases: leaseCases,
  hangUps: hangUpCases,
  release: releaseCases,
  leftTransactions: leftTransactionCases,
  streams: streamCases,
  admission: admissionCases,
  shutdown: shutdownCases,
  pools: poolCases,
  transactions: transactionCases,
} satisfies Record<string, (context: GuardedContext) => void>;

/** A group of the guarded suite's cases: `'leases'` (throws and rejections), `'hangUps'`, `'transactions'`… */
export type GuardedCases = keyof typeof CASES;

/** How `guardedSuite()` runs: which groups, and where the pools connect. */
export interface GuardedSuiteOptions {
  /** The groups to run, in the suite's order whatever the order given. Default: all of them. */
  readonly cases?: readonly GuardedCases[];
  /**
   * Where the pools connect, read when a case opens one: a pooler in front of the run's PostgreSQL
   * (PgBouncer's `url`). Default: the run's PostgreSQL (`databaseUrl()`). The checks every case ends
   * with still look at the run's PostgreSQL.
   */
  readonly connectionString?: () => string;
  /**
   * Default true. False leaves out the cases where the guard gives up on a connection (a handler
   * ran past abortGrace, shutdown's timeout passed): it cancels the query server-side, then
   * destroys the connection. Through PgBouncer 1.18 that cancel is lost or crashes PgBouncer.
   */
  readonly giveUps?: boolean;
}

/**
 * The ConnectionClosingMiddleware cases on the real PostgreSQL, for a host's own routes (written in
 * its framework's idiom) behind its `connectionClosing()`, on `driver`'s pools. Each case ends by
 * checking that every pool has nothing borrowed and PostgreSQL holds no more backends for it than
 * its idle connections, that every request fired requestFinished exactly once, that nothing
 * escaped as an unhandled rejection, and that the server still answers.
 * @example
 * guardedSuite(myHost, pgDriver, { cases: ['leases', 'streams'], connectionString: () => bouncer.url });
 */
export function guardedSuite(host: GuardedHost, driver: GuardedDriver = pgDriver, options: GuardedSuiteOptions = {}): void {
  const context = useGuardedStage(host, driver, options);
  const chosen = new Set<GuardedCases>(options.cases ?? (Object.keys(CASES) as GuardedCases[]));
  for (const [name, cases] of Object.entries(CASES)) if (chosen.has(name as GuardedCases)) cases(context);
}

/**
 * Runs the PostgreSQL cases against each host's own routes behind its `connectionClosing()`, once
 * per driver (default: `pg` through `createPool`). The database is the run's (`DATABASE_URL`, or
 * the embedded PostgreSQL of `@closeguard/conformance/postgres-setup` as a vitest globalSetup).
 * @example
 * runGuardedConformance([{ name: 'hono', listenGuarded: ({ guard, routes, onError, logger }) => … }]);
 * runGuardedConformance([myHost], [pgDriver, pgPoolDriver]);
 */
export function runGuardedConformance(hosts: readonly GuardedHost[], drivers: readonly GuardedDriver[] = [pgDriver]): void {
  for (const host of hosts) {
    for (const driver of drivers) describe(`${host.name} routes on PostgreSQL through ${driver.name}`, () => guardedSuite(host, driver));
  }
}
