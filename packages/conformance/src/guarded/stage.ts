import { afterEach, expect } from 'vitest';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions } from '@closeguard/core';
import type { ListeningServer } from '../host.ts';
import { eventually } from '../postgres/harness.ts';
import { backendsFor, databaseUrl } from '../postgres/index.ts';
import { quiet } from '../support/logger.ts';
import { clientFor, type GuardedClient } from './clients.ts';
import type { DriverPool, GuardedDriver } from './driver.ts';
import type { GuardedHost, GuardedRoute } from './host.ts';
import { useLifecycle, type Lifecycle } from './lifecycle.ts';
import { guardedRoutes } from './routes.ts';
import { createRouteState, resetRouteState, type RouteState } from './state.ts';
import { transactionRoutes } from './transaction-routes.ts';

/** After a hang-up, how long a late handler may run on: long for the "finishes in time" case. */
export const GRACE_MS = 2_000;
/** …and short for the "past abortGrace" case. */
export const SHORT_GRACE_MS = 150;

let poolCount = 0;

/** A pool the stage opened, and the application_name its backends carry. */
export interface StagePool {
  readonly pool: DriverPool;
  readonly name: string;
}

/** One case's world: the driver's pools on the real PostgreSQL, the guard, the host's server. */
export class Stage {
  readonly pools: StagePool[] = [];
  /** What the framework's error handler saw. */
  readonly errors: unknown[] = [];
  server: ListeningServer | undefined;
  /** Set by a case that closed the guard: the server answers 503 from then on. */
  closed = false;
  readonly #host: GuardedHost;
  readonly #driver: GuardedDriver;
  readonly #routes: readonly GuardedRoute<unknown>[];
  readonly #connectionString: () => string;

  constructor(host: GuardedHost, driver: GuardedDriver, routes: readonly GuardedRoute<unknown>[], connectionString: () => string) {
    this.#host = host;
    this.#driver = driver;
    this.#routes = routes;
    this.#connectionString = connectionString;
  }

  /** Opens a pool of at most `max` connections through the driver. */
  pool(max: number, options: { acquireTimeout?: number } = {}): StagePool {
    const name = `closeguard-conformance-${process.pid}-${++poolCount}`;
    const pool = this.#driver.open({ connectionString: this.#connectionString(), applicationName: name, max, ...options });
    const opened = { pool, name };
    this.pools.push(opened);
    return opened;
  }

  /** Serves the standard routes on the host behind a guard with `options` (abortGrace GRACE_MS unless given). */
  async serve(options: ConnectionClosingOptions): Promise<{ url: string; guard: ConnectionClosingMiddleware }> {
    const guard = new ConnectionClosingMiddleware({ abortGrace: GRACE_MS, ...options });
    this.server = await this.#host.listenGuarded({ guard, routes: this.#routes, onError: (error) => void this.errors.push(error), logger: quiet });
    return { url: this.server.url, guard };
  }

  async dispose(): Promise<void> {
    await this.server?.close();
    for (const { pool } of this.pools.splice(0)) await this.#driver.close(pool);
  }
}

/** Where a suite's pools connect, and whether its give-up cases run (see GuardedSuiteOptions). */
export interface StageOptions {
  readonly connectionString?: () => string;
  readonly giveUps?: boolean;
}

/** What every case of the guarded suite gets. */
export interface GuardedContext {
  readonly driver: GuardedDriver;
  /** The client side, in the host's protocol. */
  readonly client: GuardedClient;
  readonly state: RouteState;
  readonly lifecycle: Lifecycle;
  /** Where the case's pools connect: the run's PostgreSQL, or a pooler in front of it. */
  connectionString(): string;
  /** Whether the cases where the guard gives up on a connection (cancels its query, destroys it) run. */
  readonly giveUps: boolean;
  /** Starts a case: its stage, fresh, and the lifecycle counts from here. */
  begin(): Stage;
  /** Requests started since `begin()`. */
  startedSinceBegin(): number;
}

/**
 * The suite's context for `host` on `driver`: routes, state and lifecycle for the enclosing
 * `describe`, and after each case the checks every case ends with — the server still answers,
 * every pool has nothing borrowed and PostgreSQL holds no more backends for it than its idle
 * connections, every request fired requestFinished exactly once, nothing escaped. The pools
 * connect to `connectionString()` (default: the run's PostgreSQL); the checks look at the run's.
 */
export function useGuardedStage(host: GuardedHost, driver: GuardedDriver, { connectionString = databaseUrl, giveUps = true }: StageOptions = {}): GuardedContext {
  const lifecycle = useLifecycle();
  const client = clientFor(host.protocol ?? 'http1');
  const state = createRouteState();
  const routes = [...guardedRoutes(driver, state), ...transactionRoutes(driver, state)];
  let stage = new Stage(host, driver, routes, connectionString);
  let startedBefore = 0;
  let escapedBefore = 0;

  afterEach(async () => {
    try {
      // A closed guard still answers: 503, from then on.
      const alive = await client.get(`${stage.server!.url}/alive`).catch(() => undefined);
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
      stage = new Stage(host, driver, routes, connectionString);
      resetRouteState(state);
    }
  });

  return {
    driver,
    client,
    state,
    lifecycle,
    connectionString,
    giveUps,
    begin: () => {
      startedBefore = lifecycle.started.length;
      escapedBefore = lifecycle.escaped.length;
      return stage;
    },
    startedSinceBegin: () => lifecycle.started.length - startedBefore,
  };
}
