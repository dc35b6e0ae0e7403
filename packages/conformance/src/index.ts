// The conformance suite, for closeguard's own hosts and for third-party adapters.
export { conformanceSuite, runConformance } from './suite.ts';
export { describeMatrix, listenOn } from './host.ts';

export { scenario, ALIVE_PATH } from './scenario.ts';
export { useRecorder } from './recorder.ts';
export {
  itAbortsTheSignal,
  itAnswers,
  itCleansUp,
  itCutsTheResponse,
  itEndsTheIterator,
  itHidesTheError,
  itReports,
  itReportsAndLogs,
  itRunsFinally,
} from './expectations.ts';
export { readAheadBound } from './cases/backpressure.ts';
export { connect, fetchOnce, headerValue } from './support/http.ts';
export { createProbe, failingQuery, whenAborted, TEXT } from './support/app.ts';
export { createGate, settle, waitFor, waitForSteady, waitUntil } from './support/wait.ts';
export { hangUpMidStream, hangUpWhen } from './support/hang-up.ts';
export { quiet } from './support/logger.ts';
export { testEnv } from './support/env.ts';
export { backendPidOf, createCursorProbe, cursorRows, ndjsonCursor } from './support/pg.ts';

export type { ConformanceHost, HostOptions, ListeningServer } from './host.ts';
export type { Outcome, Scenario, ScenarioContext, SuiteContext } from './scenario.ts';
export type { Finish, Recorder } from './recorder.ts';
export type { CleanupExpectation } from './expectations.ts';
export type { Exchange, Protocol, ResponseHead, TestConnection, TestRequest, TestResponse } from './support/http.ts';
export type { Probe, ProbeHandler } from './support/app.ts';
export type { CursorOptions, CursorProbe } from './support/pg.ts';

// The guarded suite: ConnectionClosingMiddleware behind a framework's routes, on a driver's pools.
export { guardedSuite, runGuardedConformance } from './guarded/suite.ts';
export { guardedGatewayHost } from './guarded/gateway-host.ts';
export { pgDriver, pgPoolDriver } from './guarded/pg-drivers.ts';
export { RouteError } from './guarded/routes.ts';
export type { Db, DbClient, GuardedHost, GuardedHostOptions, GuardedRoute, RouteInput, RouteKind } from './guarded/host.ts';
export type { DriverPool, DriverPoolOptions, GuardedDriver } from './guarded/driver.ts';
export type { GuardedCases, GuardedSuiteOptions } from './guarded/suite.ts';

// The run's PostgreSQL.
export { eventually, PoolHarness, usePoolHarness } from './postgres/harness.ts';
export { backendPids, backendsFor, databaseUrl, terminateBackend, waitForBackends } from './postgres/index.ts';
export { launchPostgres } from './postgres/postgres-launcher.ts';
export type { LaunchedPostgres } from './postgres/postgres-launcher.ts';

// PgBouncer in front of the run's PostgreSQL (Debian's, installed when missing and allowed).
export { ensurePgBouncer } from './pgbouncer/install.ts';
export { startPgBouncer } from './pgbouncer/pgbouncer.ts';
export { usePgBouncer } from './pgbouncer/use-pgbouncer.ts';
export type { PgBouncerOptions, RunningPgBouncer } from './pgbouncer/pgbouncer.ts';
export type { PoolMode } from './pgbouncer/config.ts';
