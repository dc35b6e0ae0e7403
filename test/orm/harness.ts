// One suite for every ORM and query builder (issue 15): the same faults, each through the library's
// own API, on Express and on Fastify, on the real PostgreSQL — once on a plain pg.Pool (the control:
// what the library does on its own behind connectionClosing) and once on closeguard's GuardedPool.
// A library file gives its routes and what its control does (library.ts); the cases and the
// assertions are written here once.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signals, type LeakMessage, type RequestFinishedMessage } from '@closeguard/core';
import { eventually, fetchOnce, hangUpMidStream, hangUpWhen, settle, terminateBackend } from '@closeguard/conformance';
import { Activity } from './database.ts';
import { CLEAN, type CaseName, type Observed, type OrmLibrary } from './library.ts';
import { Holds, PATHS, startServer, type Framework, type OrmServer } from './servers.ts';

export { runSql } from './database.ts';
export { ndjson, NO_LEAKS, PLAIN_POOL, PLAIN_POOL_STREAMS, STREAM_ROWS } from './library.ts';
export type { OrmLibrary } from './library.ts';

const CASES: Record<CaseName, string> = {
  throwInTransaction: 'a. a throw inside the transaction API',
  handBegin: 'b. a BEGIN issued by hand and never closed, the response sent',
  sleep: 'c. a client hang-up during a query (pg_sleep)',
  stream: 'd. a client hang-up during a streamed result',
  killedMidTransaction: 'e. the backend killed mid-transaction (pg_terminate_backend)',
  unendedTransaction: 'a transaction the library leaves to the app to end, never ended',
};

/** requestFinished and leak reports, counted by request URL. */
class Reports {
  readonly finished = new Map<string, number>();
  /** The routes the leak reports of each URL named. */
  readonly leaks = new Map<string, Array<string | undefined>>();
  readonly #onFinished = (message: RequestFinishedMessage): void => void this.finished.set(message.url, (this.finished.get(message.url) ?? 0) + 1);
  readonly #onLeak = (message: LeakMessage): void => {
    const url = message.scope?.url ?? '';
    this.leaks.set(url, [...(this.leaks.get(url) ?? []), message.route]);
  };

  subscribe(): void {
    signals.requestFinished.subscribe(this.#onFinished);
    signals.leak.subscribe(this.#onLeak);
  }

  unsubscribe(): void {
    signals.requestFinished.unsubscribe(this.#onFinished);
    signals.leak.unsubscribe(this.#onLeak);
  }
}

let requestCounter = 0;

/** Each request has a URL of its own, so its requestFinished can be counted. */
function pathFor(name: CaseName | 'alive'): string {
  return `${name === 'alive' ? '/alive' : PATHS[name]}?n=${++requestCounter}`;
}

/** Provokes the fault of case `name` on `server`; resolves once the client's side of it is over. */
async function provoke(name: CaseName, server: OrmServer, path: string, holds: Holds, activity: Activity): Promise<void> {
  switch (name) {
    case 'sleep':
      // Hang up once PostgreSQL runs the query: a real socket destroyed mid-query.
      await hangUpWhen(server.url + path, () => activity.isRunning(server.name, 'pg_sleep'));
      return;
    case 'stream':
      await hangUpMidStream(server.url + path);
      return;
    case 'killedMidTransaction': {
      const response = fetchOnce('http1', server.url, { path });
      const { pid, resume } = await holds.next();
      expect(await terminateBackend(pid)).toBe(true);
      resume();
      expect((await response).status).toBe(500);
      return;
    }
    case 'throwInTransaction':
      expect((await fetchOnce('http1', server.url, { path })).status).toBe(500);
      return;
    case 'handBegin':
    case 'unendedTransaction':
      expect((await fetchOnce('http1', server.url, { path })).status).toBe(200);
      return;
  }
}

/** The server still answers, through the library, on the same pool. */
async function expectAlive(server: OrmServer): Promise<void> {
  expect((await fetchOnce('http1', server.url, { path: pathFor('alive') })).status).toBe(200);
}

function controlOf(library: OrmLibrary, name: CaseName, framework: Framework): Observed {
  const outcome = library.control[name]!;
  return 'express' in outcome ? outcome[framework] : outcome;
}

function isClean(observed: Observed): boolean {
  return observed.borrowed + observed.idleInTransaction + observed.active === 0;
}

function describeLeak(observed: Observed): string {
  const parts = [];
  if (observed.borrowed > 0) parts.push(`${observed.borrowed} client(s) borrowed`);
  if (observed.idleInTransaction > 0) parts.push(`${observed.idleInTransaction} backend(s) idle in transaction`);
  if (observed.active > 0) parts.push(`${observed.active} statement(s) still running`);
  return parts.join(', ');
}

/**
 * Declares the suite for `library`: on Express and Fastify, the control (one server per case, since
 * its leaks would poison the next case) and GuardedPool (one server for all the cases: each must
 * leave the pool as it found it). The cases are those the library measured a control for.
 */
export function describeOrm(library: OrmLibrary): void {
  const activity = new Activity();
  const reports = new Reports();
  const cases = (Object.keys(CASES) as CaseName[]).filter((name) => library.control[name] !== undefined);

  describe(library.title, () => {
    beforeAll(async () => {
      await library.setup?.();
      await activity.open();
      reports.subscribe();
    });
    afterAll(async () => {
      reports.unsubscribe();
      await activity.close();
    });

    for (const framework of ['express', 'fastify'] as const) {
      describe(`on ${framework === 'express' ? 'Express' : 'Fastify'}`, () => {
        describe('with a plain pg.Pool (the control)', () => {
          const holds = new Holds();
          let server: OrmServer;
          beforeEach(async () => {
            server = await startServer(library, framework, 'plain', holds);
          });
          afterEach(async () => {
            // Written off: its backends killed, the pool abandoned with whatever it leaked.
            for (const { pid } of await activity.of(server.name)) await terminateBackend(pid);
            await server.close();
          });

          for (const name of cases) {
            const expected = controlOf(library, name, framework);
            it(`${CASES[name]}: ${isClean(expected) ? 'gives everything back on its own' : `leaks ${describeLeak(expected)}`}`, async () => {
              const path = pathFor(name);
              await provoke(name, server, path, holds, activity);
              await eventually(() => expect(reports.finished.get(path)).toBe(1));
              if (isClean(expected)) {
                await eventually(async () => expect(await activity.observe(server.pool, server.name)).toEqual(CLEAN));
                await expectAlive(server);
              } else {
                // The request is over and another was served after it: what is left now stays.
                await expectAlive(server);
                expect(await activity.observe(server.pool, server.name)).toEqual(expected);
              }
              await settle();
              expect(reports.finished.get(path)).toBe(1);
            });
          }
        });

        describe('with a GuardedPool', () => {
          const holds = new Holds();
          let server: OrmServer;
          beforeAll(async () => {
            server = await startServer(library, framework, 'guarded', holds);
          });
          afterAll(() => server.close());

          for (const name of cases) {
            it(`${CASES[name]}: nothing borrowed, no transaction left open, requestFinished once, the server still answers`, async () => {
              const path = pathFor(name);
              await provoke(name, server, path, holds, activity);
              await eventually(async () => expect(await activity.observe(server.pool, server.name)).toEqual(CLEAN));
              await eventually(() => expect(reports.finished.get(path)).toBe(1));
              await expectAlive(server);
              await eventually(async () => expect(await activity.observe(server.pool, server.name)).toEqual(CLEAN));
              const leaks = library.leaks?.[name];
              // A forgotten checkout is reported once, naming its route.
              if (leaks !== undefined) expect(reports.leaks.get(path) ?? []).toEqual(Array<string>(leaks).fill(PATHS[name]));
              expect(reports.finished.get(path)).toBe(1);
            });
          }
        });
      });
    }
  });
}
