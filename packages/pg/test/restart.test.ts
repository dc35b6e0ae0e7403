// What requests see when PostgreSQL drops the pool's connections: a restart or failover, an
// administrator's pg_terminate_backend, idle_session_timeout. The outage itself may fail requests;
// nothing after it may (docs/operations.md, "When PostgreSQL restarts").
import { fileURLToPath } from 'node:url';
import type { Pool } from 'generic-pool';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionClosingMiddleware, isCloseguardError, poolPolicy, type ConnectionClosingOptions, type PoolLike } from '@closeguard/core';
import { backendPids, databaseUrl, launchPostgres, quiet, terminateBackend, type GuardedHost, type GuardedRoute, type LaunchedPostgres } from '@closeguard/conformance';
import { createPool, fromPgPool, pgPolicy } from '@closeguard/pg';
import { expressHost } from '../../../test/conformance/hosts/express.ts';
import { fastifyGuardedHost } from '../../../test/conformance/hosts/fastify.ts';
import { koaGuardedHost } from '../../../test/conformance/hosts/koa.ts';
import { nodeGuardedHost } from '../../../test/conformance/hosts/node.ts';
import { eventually, useHarness } from './harness.ts';

const harness = useHarness();
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The route every case serves: one query on the request's connection. */
const QUERY: GuardedRoute = {
  method: 'GET',
  path: '/query',
  kind: 'json',
  run: async (db) => (await (await db()).query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
};

/** Requests parked in HOLD, each holding its connection, until the gate opens. */
let parked: { clients: pg.Client[]; gate: Promise<void> } = { clients: [], gate: Promise.resolve() };

const HOLD: GuardedRoute = {
  method: 'GET',
  path: '/hold',
  kind: 'json',
  run: async (db) => {
    const client = await db();
    await client.query('SELECT 1');
    parked.clients.push(client as unknown as pg.Client);
    await parked.gate;
    return 'held';
  },
};

/** Serves QUERY (at `url`) and HOLD on `host` behind a guard with `options`; the errors its handler saw are kept. */
async function serve(host: GuardedHost, options: ConnectionClosingOptions): Promise<{ url: string; base: string; guard: ConnectionClosingMiddleware; errors: unknown[] }> {
  const guard = new ConnectionClosingMiddleware(options);
  const errors: unknown[] = [];
  const server = await host.listenGuarded({ guard, routes: [QUERY, HOLD], onError: (error) => void errors.push(error), logger: quiet });
  harness.onDispose(() => server.close());
  return { url: `${server.url}${QUERY.path}`, base: server.url, guard, errors };
}

/**
 * Has `count` requests hold a connection at once, so the guard hands out `count` clients, then
 * lets them finish: the clients are left idle in the pool, known to the guard as reused. `ended`
 * resolves once all their connections ended.
 */
async function warm(base: string, pool: Pool<pg.Client>, count: number): Promise<{ ended: Promise<unknown> }> {
  let open!: () => void;
  parked = { clients: [], gate: new Promise((resolve) => (open = resolve)) };
  const requests = Array.from({ length: count }, () => status(`${base}${HOLD.path}`));
  await eventually(() => expect(parked.clients).toHaveLength(count));
  const ended = Promise.all(parked.clients.map((client) => new Promise((resolve) => client.once('end', resolve))));
  open();
  expect(await Promise.all(requests)).toEqual(Array.from({ length: count }, () => 200));
  await eventually(() => expect(pool.available).toBe(count));
  return { ended };
}

/** Opens `count` clients in `pool` and leaves them idle there; `ended` resolves once all their connections ended. */
async function idleClients(pool: Pool<pg.Client>, count: number): Promise<{ ended: Promise<unknown> }> {
  const clients = await Promise.all(Array.from({ length: count }, () => pool.acquire()));
  const ended = Promise.all(clients.map((client) => new Promise((resolve) => client.once('end', resolve))));
  await Promise.all(clients.map((client) => pool.release(client)));
  return { ended };
}

/** Terminates every backend of `applicationName`, as a restart or an idle-session timeout does; returns their pids. */
async function terminateAll(applicationName: string): Promise<number[]> {
  const pids = await backendPids(applicationName);
  { const c = new pg.Client({ connectionString: databaseUrl() }); await c.connect(); console.log((await c.query('select pid, application_name, state from pg_stat_activity')).rows); await c.end(); }
  await Promise.all(pids.map((pid) => terminateBackend(pid)));
  return pids;
}

/** The status of each of `count` requests made one after another (0: no response). */
async function statuses(url: string, count: number): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < count; i++) seen.push(await status(url));
  return seen;
}

function status(url: string): Promise<number> {
  return fetch(url).then(async (response) => {
    await response.arrayBuffer();
    return response.status;
  }, () => 0);
}

interface Outcome {
  startedAt: number;
  endedAt: number;
  status: number;
}

/** `workers` clients requesting `url` back to back until `stop()`; every outcome is kept (times from performance.now()). */
function startLoad(url: string, workers: number) {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const startedAt = performance.now();
      const seen = await status(url);
      outcomes.push({ startedAt, endedAt: performance.now(), status: seen });
    }
  });
  const stop = once(async () => {
    running = false;
    await Promise.all(loops);
  });
  harness.onDispose(stop);
  return {
    outcomes,
    stop,
    successesStartedAfter: (time: number) => outcomes.filter((o) => o.status === 200 && o.startedAt >= time).length,
    failuresStartedAfter: (time: number) => outcomes.filter((o) => o.status !== 200 && o.startedAt >= time),
    failuresEndedAfter: (time: number) => outcomes.filter((o) => o.status !== 200 && o.endedAt >= time).length,
    firstSuccessEndedAfter: (time: number) => Math.min(...outcomes.filter((o) => o.status === 200 && o.endedAt >= time).map((o) => o.endedAt)),
  };
}

/** The message pg gives a query on a client that already knew its connection was gone: handed out broken. */
const HANDED_OUT_BROKEN = /not queryable/;

function messagesOf(errors: unknown[]): string[] {
  return errors.map((error) => (error instanceof Error ? error.message : String(error)));
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}

const HOSTS = [nodeGuardedHost, expressHost, fastifyGuardedHost, koaGuardedHost];

describe.each(HOSTS)('$name', (host) => {
  describe('when every idle client of the pool lost its backend (pg_terminate_backend, idle_session_timeout)', () => {
    it('serves every request: a client known broken is never handed out', async () => {
      const { pool, name } = harness.pool(4);
      const { url, base } = await serve(host, { pool });
      const { ended } = await warm(base, pool, 4);
      await terminateAll(name);
      await ended;
      expect(await statuses(url, 6)).toEqual([200, 200, 200, 200, 200, 200]);
    });

    it('with healthCheck, serves every request: no 503 while the pool can open a fresh connection', async () => {
      const { pool, name } = harness.pool(8);
      const { url, base } = await serve(host, { pool, healthCheck: true });
      const { ended } = await warm(base, pool, 8);
      await terminateAll(name);
      await ended;
      expect(await statuses(url, 3)).toEqual([200, 200, 200]);
    });
  });
});

describe('healthCheck', () => {
  it('keeps checking until a fresh connection, however many reused ones fail', async () => {
    const { pool } = harness.pool(6);
    const { url, base, guard } = await serve(nodeGuardedHost, { pool, healthCheck: () => false });
    await warm(base, pool, 6);
    expect(await statuses(url, 1)).toEqual([200]);
    await eventually(() => expect(guard.stats().destroyed.unusable).toBe(6));
  });

  it('answers 503 ERR_CLOSEGUARD_HEALTH_CHECK_FAILED with Retry-After when connection after connection fails, past the pool max', async () => {
    const { pool } = harness.pool(2);
    // A policy that finds every connection unusable stands for a database that spoils each one.
    const spoiled: PoolLike<pg.Client> = {
      acquire: () => pool.acquire(),
      release: (client) => pool.release(client),
      destroy: (client) => pool.destroy(client),
      max: pool.max,
      [poolPolicy]: { ...pgPolicy, isUsable: () => false },
    } as PoolLike<pg.Client>;
    const { url, guard, errors } = await serve(nodeGuardedHost, { pool: spoiled, healthCheck: true });
    const response = await fetch(url);
    await response.arrayBuffer();
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(errors.map((error) => (isCloseguardError(error) ? error.code : error))).toEqual(['ERR_CLOSEGUARD_HEALTH_CHECK_FAILED']);
    await eventually(() => expect(guard.stats().destroyed.unusable).toBeGreaterThan(pool.max));
  });
});

describe('a pool that keeps a client it knows is broken (a pg.Pool, a client left in a failed transaction)', () => {
  it.each([
    ['without options', {}],
    ['with healthCheck', { healthCheck: true }],
  ] as const)('destroys it instead of handing it out, and leases another (%s)', async (_name, extra) => {
    const pgPool = new pg.Pool({ connectionString: databaseUrl(), application_name: `closeguard-test-pgpool-${process.pid}`, max: 2 });
    harness.onDispose(() => pgPool.end());
    const client = await pgPool.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => undefined);
    await eventually(() => expect(pgPolicy.isUsable?.(client)).toBe(false));
    client.release(); // the bug of some hand-written code: a pg.Pool takes it back as it is
    const { url, guard } = await serve(nodeGuardedHost, { pool: fromPgPool(pgPool), ...extra });
    expect(await statuses(url, 2)).toEqual([200, 200]);
    expect(guard.stats().destroyed.unusable).toBe(1);
  });
});

describe('createPool() acquired from directly (guard.track(pool), or no guard at all)', () => {
  it('never hands out a client whose connection ended', async () => {
    const { pool, name } = harness.pool(3);
    const { ended } = await idleClients(pool, 3);
    await terminateAll(name);
    await ended;
    const client = await pool.acquire();
    try {
      expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.release(client);
    }
  });
});

describe('when a loop kills the app\'s backends under load', () => {
  it('fails no request once the loop stops, and leaks nothing', async () => {
    const { pool, name } = harness.pool(6);
    const { url, errors } = await serve(expressHost, { pool });
    await idleClients(pool, 6);
    const load = startLoad(url, 3);
    for (let round = 0; round < 8; round++) {
      const roundStarted = performance.now();
      // Each round kills clients at work and at least one idle in the pool.
      await eventually(() => {
        expect(load.successesStartedAfter(roundStarted)).toBeGreaterThanOrEqual(3);
        expect(pool.available).toBeGreaterThan(0);
      });
      const killed = await terminateAll(name);
      await eventually(async () => expect((await backendPids(name)).filter((pid) => killed.includes(pid))).toEqual([]));
    }
    const stoppedAt = performance.now();
    const duringLoop = load.outcomes.filter((o) => o.status !== 200).length;
    await eventually(() => expect(load.successesStartedAfter(stoppedAt)).toBeGreaterThanOrEqual(60));
    await load.stop();
    console.log(`kill loop: ${load.outcomes.length} requests, ${duringLoop} failed while the loop ran, ${load.failuresStartedAfter(stoppedAt).length} after`);
    expect(load.failuresStartedAfter(stoppedAt)).toEqual([]);
    // While it ran, requests failed only when a query was cut mid-way, never on a client already known dead.
    expect(messagesOf(errors).filter((message) => HANDED_OUT_BROKEN.test(message))).toEqual([]);
    await harness.expectAllGivenBack();
  });
});

describe('across a PostgreSQL restart (a server of its own, restarted on the same port)', () => {
  let postgres: LaunchedPostgres | undefined;
  beforeAll(async () => {
    postgres = await launchPostgres(ROOT);
  }, 120_000);
  afterAll(() => postgres?.stop());

  /** A pool on this test's own server, drained after the test. */
  function poolOnOwnServer(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    const name = `closeguard-restart-${process.pid}-${max}-${Math.random().toString(36).slice(2, 8)}`;
    const pool = createPool({ connectionString: postgres!.url, application_name: name }, { max, ...extra });
    harness.onDispose(async () => {
      await pool.drain();
      await pool.clear();
    });
    return { pool, name };
  }

  /** Nothing borrowed, and no backend of the pool beyond its idle clients (on this test's server). */
  async function expectAllGivenBack(pool: Pool<pg.Client>, name: string): Promise<void> {
    await eventually(async () => {
      expect(pool.borrowed).toBe(0);
      const admin = new pg.Client({ connectionString: postgres!.url });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ count: number }>('SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = $1', [name]);
        expect(rows[0]?.count).toBeLessThanOrEqual(pool.available);
      } finally {
        await admin.end();
      }
    });
  }

  it.each([
    ['without options', {}],
    ['with healthCheck', { healthCheck: true }],
  ] as const)('with the pool idle through the outage, fails no request after it (%s)', async (label, extra) => {
    const { pool, name } = poolOnOwnServer(4);
    const { url, base } = await serve(koaGuardedHost, { pool, ...extra });
    const { ended } = await warm(base, pool, 4);
    await postgres!.stopServer();
    await ended;
    await postgres!.startServer();
    const backAt = performance.now();
    const first = await status(url);
    const recoveryMs = performance.now() - backAt;
    expect([first, ...(await statuses(url, 7))]).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
    console.log(`restart, pool idle through the outage (${label}): first request after the server was back answered in ${recoveryMs.toFixed(0)} ms`);
    await expectAllGivenBack(pool, name);
  }, 60_000);

  it('under load, fails no request once the first one after the restart succeeded, and leaks nothing', async () => {
    const { pool, name } = poolOnOwnServer(8, { acquireTimeoutMillis: 5_000 });
    const { url, base, errors } = await serve(fastifyGuardedHost, { pool });
    await warm(base, pool, 8); // idle clients too, as a pool sized for peaks has
    const load = startLoad(url, 4);
    const started = performance.now();
    await eventually(() => expect(load.successesStartedAfter(started)).toBeGreaterThanOrEqual(20));
    const downAt = performance.now();
    await postgres!.stopServer();
    // The outage is seen: queries cut by the shutdown, connections refused.
    await eventually(() => expect(load.failuresEndedAfter(downAt)).toBeGreaterThan(0));
    await postgres!.startServer();
    const backAt = performance.now();
    const recoveredAt = await vi.waitFor(() => {
      const first = load.firstSuccessEndedAfter(backAt);
      expect(first).toBeLessThan(Infinity);
      return first;
    }, { timeout: 20_000, interval: 20 });
    await eventually(() => expect(load.successesStartedAfter(recoveredAt)).toBeGreaterThanOrEqual(60));
    await load.stop();
    const failedInOutage = load.failuresEndedAfter(downAt) - load.failuresStartedAfter(recoveredAt).length;
    console.log(`restart under load: down ${(backAt - downAt).toFixed(0)} ms, ${failedInOutage} requests failed during the outage, first success ${(recoveredAt - backAt).toFixed(0)} ms after the server was back, ${load.failuresStartedAfter(recoveredAt).length} failed after`);
    expect(load.failuresStartedAfter(recoveredAt)).toEqual([]);
    // During the outage too, requests failed only for the outage, never on a client already known dead.
    expect(messagesOf(errors).filter((message) => HANDED_OUT_BROKEN.test(message))).toEqual([]);
    await expectAllGivenBack(pool, name);
  }, 60_000);
});
