import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CloseguardError,
  connection,
  ConnectionClosingMiddleware,
  signals,
  type ConnectionClosingOptions,
  type LeakReport,
  type RequestFinishedMessage,
  type RequestScope,
  type RequestStartedMessage,
} from '@closeguard/core';
import { closeCursor, createPool } from '@closeguard/pg';
import type { ListeningServer } from './host.ts';
import { backendPids, backendsFor, databaseUrl, terminateBackend } from './postgres/index.ts';
import type { Db, DbClient, GuardedHost, GuardedRoute } from './routes.ts';
import { hangUpMidStream, hangUpWhen } from './support/hang-up.ts';
import { waitFor } from './support/wait.ts';

/** After a hang-up, how long a late handler may run on: long for the "finishes in time" case. */
const GRACE_MS = 2_000;
/** …and short for the "past abortGrace" case. */
const SHORT_GRACE_MS = 150;
const quiet = { error: () => undefined };
let poolCount = 0;

/** An error the routes throw on purpose; the framework's error handler must see each one once. */
export class RouteError extends Error {
  constructor(route: string) {
    super(`${route} failed on purpose`);
    this.name = 'RouteError';
  }
}

/** What routes record for the cases to check, reset for each case. */
interface RouteState {
  querying: boolean;
  lateStarted: boolean;
  /** The backend pid the late handler's query after the hang-up ran on. */
  lateQueriedOn: number | undefined;
  latePid: number | undefined;
  cursorsClosed: number;
  tracked: Pool<pg.Client> | undefined;
}

const state: RouteState = newState();

function newState(): RouteState {
  return { querying: false, lateStarted: false, lateQueriedOn: undefined, latePid: undefined, cursorsClosed: 0, tracked: undefined };
}

async function one(db: Db, alias?: string): Promise<number> {
  const client = await db(alias);
  const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
  return rows[0]!.one;
}

async function pid(client: DbClient): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/**
 * Rows of `generate_series(1, count)` from a pg-cursor, 100 at a time, as NDJSON bytes; the cursor
 * is closed in the generator's finally (then `onClosed` runs), on the last row and on a hang-up alike.
 */
export function ndjsonCursor(client: DbClient, count: number, onClosed: () => void = () => undefined): Readable {
  const cursor = (client as pg.Client).query(new Cursor('SELECT g, repeat($1, 100) AS pad FROM generate_series(1, $2::int) g', ['x', count]));
  async function* rows(): AsyncGenerator<string> {
    try {
      for (let batch = await cursor.read(100); batch.length > 0; batch = await cursor.read(100)) {
        yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
      }
    } finally {
      await closeCursor(cursor, client as pg.Client);
      onClosed();
    }
  }
  return Readable.from(rows(), { objectMode: false });
}

/** The standard routes: every framework host serves these, in its own idiom for each `kind`. */
export const guardedRoutes: readonly GuardedRoute[] = [
  { method: 'GET', path: '/alive', kind: 'json', run: () => Promise.resolve('alive') },
  { method: 'GET', path: '/one', kind: 'json', run: (db) => one(db) },
  { method: 'GET', path: '/one-callback', kind: 'callback', run: (db) => one(db) },
  {
    method: 'GET', path: '/throw', kind: 'json',
    run: async (db) => {
      await one(db);
      throw new RouteError('/throw');
    },
  },
  {
    method: 'GET', path: '/throw-callback', kind: 'callback',
    run: async (db) => {
      await one(db);
      throw new RouteError('/throw-callback');
    },
  },
  {
    method: 'GET', path: '/reject', kind: 'json',
    run: async (db) => {
      await one(db);
      return Promise.reject(new RouteError('/reject'));
    },
  },
  {
    method: 'GET', path: '/sleep', kind: 'json',
    run: async (db, { query }) => {
      const client = await db();
      state.querying = true;
      await client.query('SELECT pg_sleep($1)', [Number(query.get('s') ?? '0.2')]);
      return 'slept';
    },
  },
  {
    method: 'GET', path: '/late', kind: 'json',
    // Still running after the client left: sleeps, then queries again on the same client.
    run: async (db, { query }) => {
      const client = await db();
      state.latePid = await pid(client);
      state.lateStarted = true;
      await client.query('SELECT pg_sleep($1)', [Number(query.get('s') ?? '0.4')]);
      state.lateQueriedOn = await pid(client);
      return 'late';
    },
  },
  {
    method: 'GET', path: '/terminate', kind: 'json',
    run: async (db) => {
      const client = await db();
      await client.query('SELECT pg_terminate_backend(pg_backend_pid())');
      return 'unreachable';
    },
  },
  {
    method: 'GET', path: '/tx-abort', kind: 'json',
    run: async (db) => {
      const client = await db();
      await client.query('BEGIN');
      await client.query('SELECT 1/0').catch(() => undefined);
      return 'left the failed transaction';
    },
  },
  {
    method: 'GET', path: '/tx-open', kind: 'json',
    run: async (db) => {
      const client = await db();
      await client.query('BEGIN');
      await client.query('CREATE TEMP TABLE left_open (id int)');
      return 'left the transaction open';
    },
  },
  {
    method: 'GET', path: '/left-open', kind: 'json',
    run: async (db) => {
      const { rows } = await (await db()).query<{ exists: boolean }>("SELECT to_regclass('pg_temp.left_open') IS NOT NULL AS exists");
      return rows[0]!.exists;
    },
  },
  { method: 'GET', path: '/pid', kind: 'json', run: async (db) => pid(await db()) },
  {
    method: 'GET', path: '/cursor', kind: 'stream', contentType: 'application/x-ndjson',
    run: async (db, { query }) => ndjsonCursor(await db(), Number(query.get('n') ?? '1000000'), () => state.cursorsClosed++),
  },
  {
    method: 'GET', path: '/two', kind: 'json',
    run: async (db) => {
      const clients = await Promise.all([db('main'), db('analytics')]);
      return Promise.all(clients.map(async (client) => (await client.query<{ n: string }>('SELECT current_setting($1) AS n', ['application_name'])).rows[0]!.n));
    },
  },
  {
    method: 'GET', path: '/leak', kind: 'json',
    run: async function leakingRoute() {
      const client = await state.tracked!.acquire(); // the bug under test: no release()
      await client.query('SELECT 1');
      return 'leaked';
    },
  },
  {
    method: 'GET', path: '/hang', kind: 'json',
    // A handler that leases, queries, then never settles (a bug): only shutdown's give-up ends it.
    run: async (db) => {
      await one(db);
      state.querying = true;
      return new Promise(() => undefined);
    },
  },
  {
    method: 'POST', path: '/echo', kind: 'json',
    // Reads its body (the framework's parser), then leases: a slow upload holds no connection place meanwhile.
    run: async (db, { body }) => ({ one: await one(db), body }),
  },
  { method: 'GET', path: '/connection', kind: 'json', run: async () => (await (await connection<pg.Client>()).query<{ one: number }>('SELECT 1 AS one')).rows[0] },
  {
    method: 'POST', path: '/connection', kind: 'json',
    run: async (_db, { body }) => {
      const { rows } = await (await connection<pg.Client>()).query<{ echo: string }>('SELECT $1::text AS echo', [JSON.stringify(body)]);
      return JSON.parse(rows[0]!.echo) as unknown;
    },
  },
];

/** One case's world: pools of real PostgreSQL clients, the guard, the host's server. */
class Stage {
  readonly pools: { pool: Pool<pg.Client>; name: string }[] = [];
  readonly errors: unknown[] = [];
  guard: ConnectionClosingMiddleware | undefined;
  server: ListeningServer | undefined;
  closed = false;

  pool(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    const name = `closeguard-conformance-${process.pid}-${++poolCount}`;
    const pool = createPool({ connectionString: databaseUrl(), application_name: name }, { max, ...extra });
    this.pools.push({ pool, name });
    return { pool, name };
  }

  async serve(host: GuardedHost, options: ConnectionClosingOptions): Promise<{ url: string; guard: ConnectionClosingMiddleware }> {
    const guard = new ConnectionClosingMiddleware({ abortGrace: GRACE_MS, ...options });
    this.guard = guard;
    this.server = await host.listenGuarded({ guard, routes: guardedRoutes, onError: (error) => void this.errors.push(error), logger: quiet });
    return { url: this.server.url, guard };
  }

  async dispose(): Promise<void> {
    await this.server?.close();
    for (const { pool } of this.pools.splice(0)) {
      await pool.drain();
      await pool.clear();
    }
  }
}

/** Records which scopes started and how often each finished, and what escaped, for a whole host's cases. */
function useLifecycle(): { started: RequestScope[]; finishes: Map<RequestScope, RequestFinishedMessage[]>; escaped: unknown[] } {
  const started: RequestScope[] = [];
  const finishes = new Map<RequestScope, RequestFinishedMessage[]>();
  const escaped: unknown[] = [];
  const onStart = ({ scope }: RequestStartedMessage): void => void started.push(scope);
  const onFinish = (message: RequestFinishedMessage): void => {
    const list = finishes.get(message.scope) ?? [];
    list.push(message);
    finishes.set(message.scope, list);
  };
  const onEscaped = (error: unknown): void => void escaped.push(error);
  beforeAll(() => {
    signals.requestStarted.subscribe(onStart);
    signals.requestFinished.subscribe(onFinish);
    process.on('unhandledRejection', onEscaped);
  });
  afterAll(() => {
    signals.requestStarted.unsubscribe(onStart);
    signals.requestFinished.unsubscribe(onFinish);
    process.off('unhandledRejection', onEscaped);
  });
  return { started, finishes, escaped };
}

function eventually(check: () => unknown): Promise<void> {
  return waitFor('the expectation', async () => {
    try {
      await check();
      return true;
    } catch {
      return false;
    }
  }).catch(async () => {
    await check(); // fails with the real assertion message
  });
}

/** A JSON body of exactly 64 bytes, as a slow client uploads it. */
const SLOW_BODY = JSON.stringify({ pad: 'x'.repeat(54) });

/**
 * Starts a POST of SLOW_BODY on a raw socket and sends only its first byte: the request is in the
 * server, its body unread, for as long as the test likes. `finish()` sends the rest and resolves
 * with the response's status line.
 */
async function startSlowUpload(url: string, path: string): Promise<{ finish(): Promise<string>; socket: Socket }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${SLOW_BODY.length}\r\nConnection: close\r\n\r\n${SLOW_BODY[0]}`);
  let received = '';
  const response = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => void (received += chunk.toString()));
    socket.once('close', () => resolve(received.split('\r\n')[0] ?? ''));
  });
  return {
    socket,
    finish: () => {
      socket.write(SLOW_BODY.slice(1));
      return response;
    },
  };
}

/**
 * A GET whose client reads the headers, then stops reading. `drain()` reads on and resolves when
 * the connection is closed (a paused socket sees the server's end only once it reads up to it).
 */
function pausedReader(url: string): Promise<{ drain(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, (response) => {
      response.pause();
      const closed = new Promise<void>((done) => response.socket.once('close', () => done()));
      response.on('error', () => undefined); // 'aborted': the server cut the body, as it should
      resolve({
        drain: () => {
          response.resume();
          return closed;
        },
      });
    });
    request.once('error', reject);
  });
}

async function get(url: string): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const response = await fetch(url);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text: await response.text() };
}

/**
 * The ConnectionClosingMiddleware cases on the real PostgreSQL, for a host's own routes (written in
 * its framework's idiom) behind its `connectionClosing()`. Each case ends by checking that every
 * pool has nothing borrowed and PostgreSQL holds no more backends for it than its idle clients,
 * that every request fired requestFinished exactly once, that nothing escaped as an unhandled
 * rejection, and that the server still answers.
 */
export function guardedSuite(host: GuardedHost): void {
  const lifecycle = useLifecycle();
  let stage = new Stage();
  let startedBefore = 0;
  let escapedBefore = 0;

  afterEach(async () => {
    try {
      // A closed guard still answers: 503, from then on.
      const alive = await get(`${stage.server!.url}/alive`).catch(() => undefined);
      expect(alive?.status, 'the server still answers').toBe(stage.closed ? 503 : 200);
      for (const { pool, name } of stage.pools) {
        await eventually(async () => {
          expect(pool.borrowed).toBe(0);
          expect(await backendsFor(name)).toBeLessThanOrEqual(pool.available);
        });
      }
      const scopes = lifecycle.started.slice(startedBefore);
      await eventually(() => expect(scopes.filter((scope) => lifecycle.finishes.get(scope)?.length !== 1)).toEqual([]));
      expect(lifecycle.escaped.slice(escapedBefore)).toEqual([]);
    } finally {
      await stage.dispose();
      stage = new Stage();
      Object.assign(state, newState());
    }
  });
  const begin = (): Stage => {
    startedBefore = lifecycle.started.length;
    escapedBefore = lifecycle.escaped.length;
    return stage;
  };

  describe('a route that leases a connection', () => {
    it('gives it back after each request, async and callback style', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      for (const path of ['/one', '/one-callback', '/one']) expect(await get(`${url}${path}`)).toMatchObject({ status: 200, text: '1' });
      await eventually(() => expect(guard.stats().released).toBe(3));
      expect(guard.stats().leased).toBe(3);
      expect(stage.errors).toEqual([]);
    });
  });

  describe.each([
    ['throws after db()', '/throw'],
    ['rejects after db()', '/reject'],
    ['fails after db() in a callback-style handler', '/throw-callback'],
  ])('when the handler %s', (_title, path) => {
    it("answers 500 through the framework's error handler, once, and releases the client", async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      expect((await get(`${url}${path}`)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(stage.errors).toHaveLength(1);
      expect(stage.errors[0]).toBeInstanceOf(RouteError);
      expect((stage.errors[0] as Error).message).toContain(path);
    });
  });

  describe("the framework's error handler", () => {
    it('sees each error once, and only errors', async () => {
      const { pool } = begin().pool(2);
      const { url } = await stage.serve(host, { pool });
      for (const path of ['/throw', '/one', '/reject', '/throw-callback', '/one-callback']) await get(`${url}${path}`);
      expect(stage.errors.map((error) => (error as Error).message)).toEqual(['/throw', '/reject', '/throw-callback'].map((path) => new RouteError(path).message));
      expect(new Set(stage.errors).size).toBe(3);
    });
  });

  describe('when the client hangs up during pg_sleep', () => {
    it('destroys the busy client (never released) and its query ends server-side', async () => {
      const { pool, name } = begin().pool(2);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: SHORT_GRACE_MS });
      await hangUpWhen(`${url}/sleep?s=30`, () => state.querying);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
    });
  });

  describe('when the client hangs up while its handler still runs', () => {
    it('keeps the connection until the handler finished, then releases it', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: GRACE_MS });
      await hangUpWhen(`${url}/late?s=0.4`, () => state.lateStarted);
      await eventually(() => expect(state.lateQueriedOn).toBeDefined());
      // The query after the hang-up ran on the request's own client, not one handed to anyone else.
      expect(state.lateQueriedOn).toBe(state.latePid);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(await get(`${url}/pid`)).toMatchObject({ status: 200, text: String(state.latePid) });
    });

    it('destroys the connection when the handler runs past abortGrace', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: SHORT_GRACE_MS });
      await hangUpWhen(`${url}/late?s=1.5`, () => state.lateStarted);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      expect((await get(`${url}/one`)).status).toBe(200);
    });
  });

  describe('when the client hangs up while waiting in the pool queue', () => {
    it('abandons the wait; the client that comes later goes back to the pool', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, backpressure: 2 });
      const holder = get(`${url}/sleep?s=0.5`);
      await eventually(() => expect(pool.borrowed).toBe(1));
      await hangUpWhen(`${url}/one`, () => pool.pending === 1);
      await eventually(() => expect(guard.stats().abandonedWaits).toBe(1));
      expect((await holder).status).toBe(200);
    });
  });

  describe('when the backend of a leased client is terminated', () => {
    it('destroys the client and serves the next request', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      expect((await get(`${url}/terminate`)).status).toBe(500);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
    });
  });

  describe('when a statement fails inside a transaction', () => {
    it('destroys the client in the aborted transaction; the next request sees a clean one', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      expect((await get(`${url}/tx-abort`)).status).toBe(200);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
    });
  });

  describe('when the handler leaves a transaction open', () => {
    it('rolls it back and releases the client', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      expect((await get(`${url}/tx-open`)).status).toBe(200);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(await get(`${url}/left-open`)).toMatchObject({ status: 200, text: 'false' });
      expect(guard.stats().destroyed.unusable).toBe(0);
    });
  });

  describe('with maxAge 0', () => {
    it('destroys each client at the end of its request', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, maxAge: 0 });
      await get(`${url}/one`);
      await get(`${url}/one`);
      await eventually(() => expect(guard.stats().destroyed.obsolete).toBe(2));
    });
  });

  describe('with healthCheck', () => {
    it('replaces a reused client whose backend was killed', async () => {
      const { pool, name } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, healthCheck: true });
      const first = Number((await get(`${url}/pid`)).text);
      await eventually(() => expect(guard.stats().released).toBe(1));
      await terminateBackend(first);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
      const second = Number((await get(`${url}/pid`)).text);
      // Replaced by createPool's acquire(), which knows the connection ended (or, had pg not heard yet, by the check).
      expect(second).not.toBe(first);
      expect(guard.stats().destroyed.unusable).toBeLessThanOrEqual(1);
    });
  });

  describe('when a route streams rows from a cursor', () => {
    it('keeps the connection until the last row is sent, then releases it once', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      const { status, text } = await get(`${url}/cursor?n=2500`);
      expect(status).toBe(200);
      expect(text.trim().split('\n')).toHaveLength(2500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(state.cursorsClosed).toBe(1);
    });

    it('closes the cursor and releases the client once when the client hangs up mid-stream', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool });
      await hangUpMidStream(`${url}/cursor`);
      await eventually(() => expect(state.cursorsClosed).toBe(1));
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe("under four times the pool's max in concurrent requests", () => {
    it("serves what fits, queues the excess, and sheds the rest with 503 and Retry-After through the framework's error path", async () => {
      const { pool } = begin().pool(2, { acquireTimeoutMillis: 2_000 });
      const { url, guard } = await stage.serve(host, { pool, queueLimit: 4, queueTimeout: 10_000 });
      const responses = await Promise.all(Array.from({ length: 8 }, () => get(`${url}/sleep?s=0.2`)));
      expect(responses.map(({ status }) => status).sort()).toEqual([200, 200, 200, 200, 200, 200, 503, 503]);
      expect(responses.find(({ status }) => status === 503)?.retryAfter).toBe('1');
      expect(guard.stats()).toMatchObject({ rejected: 2, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
      expect(stage.errors.filter((error) => !(error instanceof CloseguardError))).toEqual([]);
    });
  });

  describe('when as many clients as backpressure admits upload their bodies slowly', () => {
    it('answers a request that needs a connection at once, and the uploads once they arrive', async () => {
      const { pool } = begin().pool(2);
      // queueLimit 0: a request that had to wait for a place would get a 503 at once.
      const { url, guard } = await stage.serve(host, { pool, backpressure: 2, queueLimit: 0 });
      const uploads = await Promise.all([startSlowUpload(url, '/echo'), startSlowUpload(url, '/echo')]);
      await eventually(() => expect(lifecycle.started.length - startedBefore).toBe(2));
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0 });
      expect(await get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
      expect(await Promise.all(uploads.map((upload) => upload.finish()))).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
      expect(guard.stats()).toMatchObject({ rejected: 0 });
      await eventually(() => expect(guard.stats().released).toBe(3));
    });
  });

  describe('close() with requests in flight', () => {
    it('lets them finish, answers 503 to new ones, then drains the pool', async () => {
      const { pool } = begin().pool(2);
      const { url, guard } = await stage.serve(host, { pool });
      const inFlight = get(`${url}/sleep?s=0.3`);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const closing = guard.close();
      stage.closed = true;
      const refused = await get(`${url}/one`);
      await closing;
      expect(await inFlight).toMatchObject({ status: 200, text: '"slept"' });
      expect(refused.status).toBe(503);
      expect(pool.size).toBe(0);
    });
  });

  describe('close({ timeout }) with requests that outlive it', () => {
    it('cuts a response whose query runs on, cancels the query server-side, and resolves', async () => {
      const { pool, name } = begin().pool(2);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: SHORT_GRACE_MS });
      const inFlight = get(`${url}/sleep?s=600`).catch((error: unknown) => error);
      await eventually(() => expect(state.querying).toBe(true));
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await inFlight).toBeInstanceOf(Error); // cut before its headers
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });

    it('gives up on a handler that never settles: its connection is destroyed, never released', async () => {
      const { pool, name } = begin().pool(2);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: SHORT_GRACE_MS });
      const inFlight = get(`${url}/hang`).catch((error: unknown) => error);
      await eventually(() => expect(state.querying).toBe(true));
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await inFlight).toBeInstanceOf(Error);
      expect(guard.stats()).toMatchObject({ released: 0, destroyed: { abandoned: 1 } });
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });

    it('cuts a cursor streamed to a client that stopped reading, and closes the cursor', async () => {
      const { pool, name } = begin().pool(2);
      const { url, guard } = await stage.serve(host, { pool, abortGrace: SHORT_GRACE_MS });
      const reader = await pausedReader(`${url}/cursor`);
      await guard.close({ timeout: 50 });
      stage.closed = true;
      await reader.drain(); // the server cut it: the client reads what was in flight, then the end
      await eventually(() => expect(state.cursorsClosed).toBe(1));
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });
  });

  describe('with two pools under two aliases', () => {
    it('leases from each and gives both back', async () => {
      const main = begin().pool(1);
      const analytics = stage.pool(1);
      const { url, guard } = await stage.serve(host, { pools: { main: main.pool, analytics: analytics.pool }, backpressure: 1 });
      expect(JSON.parse((await get(`${url}/two`)).text)).toEqual([main.name, analytics.name]);
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });

  describe('track(pool)', () => {
    it('reclaims a client acquired by hand and reports the acquiring stack', async () => {
      const { pool } = begin().pool(1);
      const leaks: LeakReport[] = [];
      const { url, guard } = await stage.serve(host, { pool, onLeak: (leak) => void leaks.push(leak) });
      state.tracked = guard.track(pool);
      expect((await get(`${url}/leak`)).status).toBe(200);
      await eventually(() => expect(leaks).toHaveLength(1));
      expect(leaks[0]?.stack).toMatch(/leakingRoute/);
      expect(guard.stats().leaksReclaimed).toBe(1);
    });
  });

  describe('connection() with asyncContext', () => {
    it('finds the request in GET and POST routes', async () => {
      const { pool } = begin().pool(1);
      const { url, guard } = await stage.serve(host, { pool, asyncContext: true });
      expect(await get(`${url}/connection`)).toMatchObject({ status: 200, text: '{"one":1}' });
      const posted = await fetch(`${url}/connection`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'world' }) });
      expect(posted.status).toBe(200);
      expect(await posted.json()).toEqual({ hello: 'world' });
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });
}

/**
 * Runs the PostgreSQL cases against each host's own routes behind its `connectionClosing()`.
 * The database is the run's (`DATABASE_URL`, or the embedded PostgreSQL of
 * `@closeguard/conformance/postgres-setup` as a vitest globalSetup).
 * @example
 * runGuardedConformance([{ name: 'hono', listenGuarded: ({ guard, routes, onError }) => … }]);
 */
export function runGuardedConformance(hosts: readonly GuardedHost[]): void {
  for (const host of hosts) describe(`${host.name} routes on PostgreSQL`, () => guardedSuite(host));
}
