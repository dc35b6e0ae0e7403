import { describe } from 'vitest';
import { admissionCases } from './cases/admission.ts';
import { hangUpCases } from './cases/hangups.ts';
import { leaseCases } from './cases/leases.ts';
import { poolCases } from './cases/pools.ts';
import { releaseCases } from './cases/release.ts';
import { shutdownCases } from './cases/shutdown.ts';
import { streamCases } from './cases/streams.ts';
import { transactionCases } from './cases/transactions.ts';
import type { GuardedDriver } from './driver.ts';
import type { GuardedHost } from './host.ts';
import { pgDriver } from './pg-drivers.ts';
import { useGuardedStage } from './stage.ts';

/**
 * The ConnectionClosingMiddleware cases on the real PostgreSQL, for a host's own routes (written in
 * its framework's idiom) behind its `connectionClosing()`, on `driver`'s pools. Each case ends by
 * checking that every pool has nothing borrowed and PostgreSQL holds no more backends for it than
 * its idle connections, that every request fired requestFinished exactly once, that nothing
 * escaped as an unhandled rejection, and that the server still answers.
 */
export function guardedSuite(host: GuardedHost, driver: GuardedDriver = pgDriver): void {
  const context = useGuardedStage(host, driver);
  leaseCases(context);
  hangUpCases(context);
  releaseCases(context);
  streamCases(context);
  admissionCases(context);
  shutdownCases(context);
  poolCases(context);
  transactionCases(context);
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
