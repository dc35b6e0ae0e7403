import { Admission } from './admission.ts';
import { attachCheckouts, hasUnattachedCheckouts } from './checkouts.ts';
import { CloseguardError, CloseguardTypeError } from '../contract/errors.ts';
import { InFlight, Ledger, RequestLeases, type LeaseContext } from './leases.ts';
import { checkMiddlewareOptions, type ConnectionClosingOptions, type Settings } from './options.ts';
import type { PoolEntry } from './release-policy.ts';
import { leasesSlot, type HostScope } from '../host/scope.ts';
import { collectStats, type GuardStats } from './stats.ts';
import { createTracker } from './tracking.ts';
import type { PoolLike } from './pool.ts';
import type { GatewayApp, GatewayBody, RequestScope } from '../contract/types.ts';

type Slotted = { [leasesSlot]?: unknown };

/** The guard's entry for hosts: a symbol `@closeguard/core` does not export, so apps cannot let a request in twice. */
const enterSlot: unique symbol = Symbol('closeguard.enter') as never;

/**
 * Lets a request in through `guard` (hosts and adapters: the bridge's `Exchange.enter` calls it):
 * opens the request's leases on `scope`; they are given back when the scope closes. Call it once
 * per request and guard.
 * @throws CloseguardError `ERR_CLOSEGUARD_SHUTDOWN` synchronously once `guard.close()` was called:
 * answer it with its status and `Retry-After`.
 */
export function enterGuard(guard: ConnectionClosingMiddleware, scope: RequestScope): void {
  guard[enterSlot](scope);
}


/** The leases of the request `scope` belongs to, if a guard wraps it (adapters' `req.db()` and `connection()`). */
export function leasesFor(scope: RequestScope): RequestLeases | undefined {
  const leases = (scope as Slotted)[leasesSlot];
  return leases instanceof RequestLeases ? leases : undefined;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Django's `close_old_connections`, done right for Node: request-owned leases given back (or
 * destroyed when unfit) exactly once at request end, admission sized to the pool, leak reports,
 * graceful shutdown.
 * @throws CloseguardTypeError (a TypeError) `ERR_CLOSEGUARD_INVALID_OPTION` at construction when an option is wrong, naming it.
 * @example
 * const guard = new ConnectionClosingMiddleware({ pool: createPool(pgConfig) });
 * http.createServer(requestListener(guard.wrap(app)));
 */
export class ConnectionClosingMiddleware {
  readonly #settings: Settings;
  readonly #admission: Admission;
  readonly #context: LeaseContext;
  #closing: Promise<void> | undefined;

  constructor(options: ConnectionClosingOptions) {
    this.#settings = checkMiddlewareOptions(options);
    const { backpressure, queueLimit, queueTimeout } = this.#settings;
    this.#admission = new Admission(backpressure, queueLimit, queueTimeout);
    this.#context = {
      entry: (alias) => this.#entry(alias),
      admission: this.#admission,
      inFlight: new InFlight(),
      ledger: new Ledger(),
      maxAgeMs: this.#settings.maxAge,
      graceMs: this.#settings.abortGrace,
      healthCheck: this.#settings.healthCheck,
      transaction: this.#settings.transaction,
      transactionsUnsupported: this.#settings.transactionsUnsupported,
    };
    for (const [alias, checkouts] of this.#settings.checkouts) {
      attachCheckouts(checkouts, { entry: this.#entry(alias), context: this.#context, onLeak: this.#settings.onLeak });
    }
  }

  /**
   * Wraps a gateway app: the app runs with request-owned leases; the request takes an admission
   * place with its first lease (a 503 then, under overload). Once `close()` was called, a new
   * request is refused at once (ERR_CLOSEGUARD_SHUTDOWN, thrown synchronously to the host).
   */
  wrap(app: GatewayApp): GatewayApp {
    if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `wrap(app) takes a gateway app function; received ${typeof app}`);
    return (env, start) => {
      this[enterSlot](env.scope); // refuses synchronously once closing
      return this.#run(app, env, start);
    };
  }

  /**
   * Lets a request in: opens its leases on `scope` and ties their end to the scope's close.
   * Admission is the leases' own (the first lease takes a place), so entering never waits.
   * Hosts reach it through `enterGuard()` from `@closeguard/core/host`; apps never call it.
   * @throws CloseguardError `ERR_CLOSEGUARD_SHUTDOWN` synchronously once `close()` was called.
   */
  [enterSlot](scope: RequestScope): void {
    this.#admission.ensureOpen();
    const leases = new RequestLeases(scope, this.#context);
    (scope as Slotted)[leasesSlot] = leases;
    const host = scope as Partial<HostScope>;
    if (this.asyncContext) host.enableAsyncContext?.();
    // A request that leased nothing ends without a promise.
    if (typeof host.deferFinish === 'function') host.deferFinish(leases);
    else scope.defer(() => leases.finish());
  }

  /** After a hang-up, how long a busy connection (or a still-running handler) is waited for. */
  get abortGrace(): number {
    return this.#settings.abortGrace;
  }

  /**
   * Whether `connection()` and `currentScope()` must work: the `asyncContext` option, `track()`, a
   * `GuardedPool` among the pools — or one that no guard was given yet, so its use inside a
   * request is seen and warned about.
   */
  get asyncContext(): boolean {
    return this.#settings.asyncContext || hasUnattachedCheckouts();
  }

  /** A pool whose `acquire()` calls inside a request are remembered and reclaimed as leaks at its end. */
  track<P extends PoolLike>(pool: P): P {
    this.#settings.asyncContext = true;
    return createTracker(pool, this.#context.ledger, this.#settings.onLeak);
  }

  stats(): GuardStats {
    return collectStats(this.#admission.stats(), this.#context.ledger, this.#settings.entries);
  }

  /**
   * Shuts down, bounded by `timeout` + `abortGrace` + the time to cancel and destroy what is left:
   * stops admitting (503), waits up to `timeout` ms for requests in flight; then aborts the rest
   * with 'shutdown' (their responses cut, their queries cancelled server-side) and waits up to
   * `abortGrace` for their handlers; then gives up on what still runs (its connections cancelled and
   * destroyed, never released), and drains and clears the pools.
   * @param options.timeout milliseconds to wait for requests in flight; default 10000
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    const timeout = options.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `close({ timeout }) takes milliseconds ≥ 0; received ${String(timeout)}`);
    }
    this.#closing ??= this.#shutdown(timeout);
    return this.#closing;
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    // From now on a first lease is refused (503): a request that holds no connection has nothing
    // for the guard to wait for or give back, so only those that lease are waited for and aborted.
    this.#admission.close();
    if (!(await this.#settled(timeoutMs))) {
      for (const leases of this.#leasing()) {
        (leases.scope as Partial<HostScope>).abort?.('shutdown');
        leases.cancelRunning();
      }
      if (!(await this.#settled(this.#settings.abortGrace))) {
        // Handlers still running: their connections are given up on (cancelled, destroyed), never released.
        await Promise.all(this.#leasing().map((leases) => leases.scope.close('shutdown')));
      }
    }
    for (const { pool } of this.#settings.entries.values()) {
      await pool.drain?.();
      await pool.clear?.();
    }
  }

  /** The requests in flight that leased (or wait for) a connection. */
  #leasing(): RequestLeases[] {
    return RequestLeases.inFlight(this.#context.inFlight).filter((leases) => leases.leasing);
  }

  /** Resolves true once no request holds or waits for a connection, false after `timeoutMs`. */
  async #settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#leasing().length > 0 || this.#admission.inFlight > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  /** Runs the app of an admitted request inside its scope. */
  #run(app: GatewayApp, env: Parameters<GatewayApp>[0], start: Parameters<GatewayApp>[1]): GatewayBody | Promise<GatewayBody> {
    const scope = env.scope as Partial<HostScope>;
    return scope.run ? scope.run(() => app(env, start)) : app(env, start);
  }

  #entry(alias: string): PoolEntry {
    const entry = this.#settings.entries.get(alias);
    if (!entry) {
      const known = [...this.#settings.entries.keys()].join(', ');
      throw new CloseguardError('ERR_CLOSEGUARD_UNKNOWN_ALIAS', `there is no pool '${alias}' (known: ${known})`);
    }
    return entry;
  }
}
