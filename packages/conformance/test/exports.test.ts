import { describe, expect, it } from 'vitest';
import * as conformance from '@closeguard/conformance';

describe('@closeguard/conformance exports', () => {
  it('exposes the suites, their host and driver fixtures, and the test helpers, and nothing else', () => {
    expect(Object.keys(conformance).sort()).toEqual(
      [
        // The gateway suite and its hosts.
        'conformanceSuite',
        'runConformance',
        'describeMatrix',
        'listenOn',
        'scenario',
        'ALIVE_PATH',
        'useRecorder',
        'itAbortsTheSignal',
        'itAnswers',
        'itCleansUp',
        'itCutsTheResponse',
        'itEndsTheIterator',
        'itHidesTheError',
        'itReports',
        'itReportsAndLogs',
        'itRunsFinally',
        'readAheadBound',
        // The guarded suite, its hosts and its drivers.
        'guardedSuite',
        'runGuardedConformance',
        'guardedGatewayHost',
        'pgDriver',
        'pgPoolDriver',
        'RouteError',
        // Test helpers: clients, apps, waits, loggers, cursors.
        'connect',
        'fetchOnce',
        'headerValue',
        'hangUpMidStream',
        'hangUpWhen',
        'createProbe',
        'failingQuery',
        'whenAborted',
        'TEXT',
        'testEnv',
        'createGate',
        'settle',
        'waitFor',
        'waitForSteady',
        'waitUntil',
        'eventually',
        'quiet',
        'backendPidOf',
        'createCursorProbe',
        'cursorRows',
        'ndjsonCursor',
        // The run's PostgreSQL.
        'PoolHarness',
        'usePoolHarness',
        'backendPids',
        'backendsFor',
        'databaseUrl',
        'terminateBackend',
        'waitForBackends',
        'launchPostgres',
        // PgBouncer in front of it.
        'ensurePgBouncer',
        'startPgBouncer',
        'usePgBouncer',
      ].sort(),
    );
  });

  it('gives each pg driver fixture every member the guarded suite calls', () => {
    for (const driver of [conformance.pgDriver, conformance.pgPoolDriver]) {
      expect(typeof driver.name).toBe('string');
      for (const member of ['open', 'close', 'query', 'busy', 'kill', 'stream'] as const) expect(typeof driver[member]).toBe('function');
    }
    expect(conformance.pgDriver.name).not.toBe(conformance.pgPoolDriver.name);
  });
});
