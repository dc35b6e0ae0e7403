import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import pg from 'pg';
import { expect, vi } from 'vitest';
import { ConnectionClosingMiddleware, signals, type ConnectionClosingOptions, type RequestFinishedMessage } from '@closeguard/core';
import { connectionClosing as expressGuard } from '@closeguard/express';
import { connectionClosing as fastifyGuard } from '@closeguard/fastify';
import { backendsFor, databaseUrl, PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';
import { GuardedPool, type GuardedPoolOptions } from '@closeguard/pg';

export { eventually, hangUpWhen, quiet } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

let counter = 0;

/** A route: gets the request's `db()`, returns a JSON value or a `Readable` to stream. */
export type Route = (request: { db(): Promise<pg.Client> }) => unknown;

/** A framework serving routes behind `connectionClosing(options)`. */
export interface GuardedHost {
  readonly name: string;
  /** The route a leak report names for `path`. */
  routeOf(path: string): string | undefined;
  serve(harness: GuardedPoolHarness, options: ConnectionClosingOptions, routes: Record<string, Route>): Promise<{ url: string; guard: ConnectionClosingMiddleware }>;
}

export const expressHost: GuardedHost = {
  name: 'express',
  routeOf: (path) => path,
  async serve(harness, options, routes) {
    const app = express();
    const handler = expressGuard({ abortGrace: GRACE_MS, ...options }, { logger: quiet });
    app.use(handler);
    for (const [path, route] of Object.entries(routes)) {
      app.get(path, async (req, res) => {
        const result = await route({ db: () => req.db() });
        // Express's idiom: pipe (which does not destroy the source when the client hangs up).
        if (result instanceof Readable) result.pipe(res.type('application/x-ndjson'));
        else res.json(result ?? null);
      });
    }
    return { url: await harness.listen(createServer(app)), guard: handler.guard };
  },
};

export const fastifyHost: GuardedHost = {
  name: 'fastify',
  routeOf: (path) => path,
  async serve(harness, options, routes) {
    const fastify = Fastify();
    await fastify.register(fastifyGuard, { abortGrace: GRACE_MS, ...options, logger: quiet });
    for (const [path, route] of Object.entries(routes)) {
      fastify.get(path, async (request, reply) => {
        const result = await route({ db: () => request.db() });
        if (result instanceof Readable) return reply.type('application/x-ndjson').send(result);
        return result ?? null;
      });
    }
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    harness.onDispose(async () => {
      fastify.server.closeAllConnections();
      await fastify.close();
    });
    const { port } = fastify.server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, guard: fastify.closeguard };
  },
};

export const hosts = [expressHost, fastifyHost] as const;

/** Everything a test made, disposed after it; requestFinished messages recorded meanwhile. */
export class GuardedPoolHarness extends PoolHarness {
  readonly guarded: Array<{ pool: GuardedPool; name: string }> = [];
  readonly finished: RequestFinishedMessage[] = [];
  /** For each requestFinished, how many clients the guarded pools had out at that moment. */
  readonly outAtFinish: number[] = [];
  readonly #onFinish = (message: RequestFinishedMessage): void => {
    this.finished.push(message);
    this.outAtFinish.push(this.guarded.reduce((out, { pool }) => out + pool.totalCount - pool.idleCount, 0));
  };

  constructor() {
    super('guarded');
    signals.requestFinished.subscribe(this.#onFinish);
  }

  /** A GuardedPool of real PostgreSQL clients tagged with a unique application_name, ended after the test. */
  guardedPool(max: number, options: GuardedPoolOptions = {}, config: pg.PoolConfig = {}): { pool: GuardedPool; name: string } {
    const name = `closeguard-guarded-pool-${process.pid}-${++counter}`;
    const pool = new GuardedPool({ connectionString: databaseUrl(), application_name: name, max, ...config }, { logger: quiet, ...options });
    // As with any pg.Pool: an idle client whose backend died is dropped with an 'error' the app must listen to.
    pool.on('error', () => undefined);
    this.guarded.push({ pool, name });
    this.onDispose(() => pool.end());
    return { pool, name };
  }

  /** Nothing borrowed, no backend beyond the idle clients, none left inside a transaction. */
  override async expectAllGivenBack(): Promise<void> {
    await super.expectAllGivenBack();
    for (const { pool, name } of this.guarded) {
      await vi.waitFor(async () => {
        expect(pool.totalCount - pool.idleCount).toBe(0);
        expect(await backendsFor(name)).toBeLessThanOrEqual(pool.idleCount);
        expect(await statesOf(name)).not.toContain('idle in transaction');
      }, { timeout: 5_000, interval: 25 });
    }
  }

  override async dispose(): Promise<void> {
    await super.dispose();
    this.guarded.splice(0);
    this.finished.splice(0);
    this.outAtFinish.splice(0);
  }

  override close(): void {
    signals.requestFinished.unsubscribe(this.#onFinish);
  }
}

export function useGuardedHarness(): GuardedPoolHarness {
  return usePoolHarness(new GuardedPoolHarness());
}

/** The pg_stat_activity states of the backends with this application_name ('active', 'idle', 'idle in transaction'…). */
export async function statesOf(applicationName: string): Promise<string[]> {
  return admin(async (client) => (await client.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE application_name = $1', [applicationName])).rows.map((row) => row.state));
}

/** The queries the backends with this application_name run now (state 'active'). */
export async function activeQueriesOf(applicationName: string): Promise<string[]> {
  return admin(async (client) => (await client.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", [applicationName])).rows.map((row) => row.query));
}

/** Runs `use` on a short-lived admin connection (never one of the pools under test). */
export async function admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: 'closeguard-test-admin' });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** GETs `url` and reads the whole body. */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}
