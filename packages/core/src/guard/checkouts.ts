import { CloseguardError } from '../contract/errors.ts';
import { activeScope, leasesSlot } from '../host/scope.ts';
import { signals } from '../host/signals.ts';
import { attemptLimit, giveBack, Ledger, RequestLeases } from './leases.ts';
import type { PoolWithPolicy } from './pool.ts';
import { isVerdict, judge, PoolEntry, type Reporter, type Verdict } from './release-policy.ts';
import { RequestCheckouts, type CheckoutCallback, type CheckoutLink, type GiveBack } from './request-checkouts.ts';
import type { ErrorPhase, RequestScope } from '../contract/types.ts';

/** Where a `Checkouts` warns (`warn`, else `error`) and logs give-backs that failed outside a request. */
export interface CheckoutsLogger {
  error(...args: unknown[]): void;
  warn?(...args: unknown[]): void;
}

/** How a driver's pool hands out its own connections. Durations in ms. */
export interface CheckoutsOptions {
  /** Names the pool in the warning and the logs ('GuardedPool'). */
  name: string;
  /**
   * Outside a request: how long a connection given back while a query still runs on it is waited
   * for before it is cancelled and destroyed. (Inside one, the guard's `abortGrace`.)
   */
  abortGrace: number;
  /** Default: console. */
  logger?: CheckoutsLogger | undefined;
}

/** Where a guard attaches to a `Checkouts` (module-private: only a guard given the pool does). */
const attachSlot: unique symbol = Symbol('closeguard.attach') as never;

/** `Checkouts` that no guard was given yet: while there are any, guards turn async context on, so one used inside a request is seen (and warned about). */
let unattached = 0;

/**
 * The guard's side of a pool that hands out connections by itself, through its own API — a
 * guarded `pg.Pool`, whose `connect()` ORMs call. A driver makes one per pool and puts it on the
 * pool under `poolCheckouts`; a guard given that pool leases from `pool` for `req.db()`, turns on
 * async context, and from then on each `checkout()` made inside one of its requests is the
 * request's: it takes the request's admission place, is abandoned if the client leaves while it
 * waits, is given back by the release policy, and is reclaimed (and reported as a leak) if still
 * out when the request ends. Elsewhere `checkout()` is the pool's plain checkout, with the same
 * release policy on give-back.
 */
export class Checkouts<R = unknown> {
  /** The pool as leases use it: `acquire()` is the plain checkout, `release`/`destroy` give one back as it is. */
  readonly pool: PoolWithPolicy<R>;
  readonly #links: CheckoutLink[] = [];
  readonly #entry: PoolEntry<R>;
  readonly #settings: { maxAgeMs: number; graceMs: number };
  /** Outside requests nobody reads these counts; giveBack keeps them. */
  readonly #ledger = new Ledger();
  readonly #reporter: Reporter;
  readonly #name: string;
  readonly #logger: CheckoutsLogger;
  #warned = false;

  constructor(pool: PoolWithPolicy<R>, options: CheckoutsOptions) {
    this.pool = pool;
    this.#entry = new PoolEntry(options.name, pool);
    this.#settings = { maxAgeMs: Infinity, graceMs: options.abortGrace };
    this.#name = options.name;
    this.#logger = options.logger ?? console;
    this.#reporter = { report: (error, phase) => this.#report(error, phase) };
    unattached++;
  }

  /**
   * Checks a connection out and calls `callback` once, never synchronously: with the connection and
   * the `GiveBack` the caller must use to give it back (the app's release), or with the error.
   * `own`: the pool's own one-statement `query()` took it (not a leak if still running at the end).
   */
  checkout(callback: CheckoutCallback<R>, own = false): void {
    const scope = activeScope();
    const leases = scope === undefined || scope.closed ? undefined : leasesOf(scope);
    if (leases !== undefined && !leases.ended) {
      const link = this.#linkFor(leases);
      if (link !== undefined) return RequestCheckouts.of(leases).take(link, own, callback as CheckoutCallback<unknown>);
      this.#warnOnce(scope!);
    }
    this.#acquire().then(
      (resource) => callback(undefined, resource, this.#giveBack(resource)),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), undefined, undefined),
    );
  }

  /** A guard was given the pool: checkouts inside its requests are theirs from now on. */
  [attachSlot](link: CheckoutLink): void {
    if (this.#links.length === 0) unattached--;
    this.#links.push(link);
  }

  /** The guard of the request's leases if it was given this pool; else (a sub-app's guard) the first guard given it. */
  #linkFor(leases: RequestLeases): CheckoutLink | undefined {
    for (const link of this.#links) if (leases.sharesGuardWith(link.context)) return link;
    return this.#links[0];
  }

  /** A plain checkout; one the policy knows is unusable (its backend went away while idle) is destroyed and another taken. */
  async #acquire(): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const resource = await this.pool.acquire();
      if (this.#entry.policy.isUsable?.(resource) !== false) return resource;
      void giveBack(this.#entry, resource, 'unusable', this.#ledger, this.#reporter);
      if (attempt >= attemptLimit(this.#entry)) {
        throw new CloseguardError('ERR_CLOSEGUARD_HEALTH_CHECK_FAILED', `${attempt} connections in a row from ${this.#name} were unusable`, { retryAfter: 1 });
      }
    }
  }

  /** The give-back of a plain checkout: the release policy, once. */
  #giveBack(resource: R): GiveBack {
    let back = false;
    return (error) => {
      if (back) return;
      back = true;
      const verdict = error ? UNUSABLE : judge(this.#entry, resource, undefined, this.#settings, this.#reporter);
      const apply = (decided: Verdict): unknown =>
        giveBack(this.#entry, resource, decided.action === 'release' ? undefined : decided.cause, this.#ledger, this.#reporter);
      if (isVerdict(verdict)) apply(verdict);
      else void verdict.then(apply);
    };
  }

  #warnOnce(scope: RequestScope): void {
    if (this.#warned) return;
    this.#warned = true;
    const message = `closeguard: a ${this.#name} was used inside a request (${scope.method} ${scope.url}) but no guard was given it, so its connections are not tied to the request: pass it to connectionClosing({ pool }) (or pools)`;
    (this.#logger.warn ?? this.#logger.error).call(this.#logger, message);
  }

  #report(error: unknown, phase: ErrorPhase): void {
    signals.requestException.publish({ scope: undefined, error, phase });
    try {
      this.#logger.error(`closeguard: ${phase} error giving back a connection of ${this.#name} outside a request`, error);
    } catch {
      // A logger that throws must not stop the give-back.
    }
  }
}

const UNUSABLE: Verdict = Object.freeze({ action: 'destroy', cause: 'unusable' });

/**
 * Makes the `Checkouts` of a driver's pool that hands out connections by itself; put it on the
 * pool under `poolCheckouts` (see `Checkouts`).
 * @example
 * // in the pool's constructor: `view` is the pool as leases use it (acquire, release, destroy, its policy)
 * Object.defineProperty(this, poolCheckouts, { value: createCheckouts(view, { name: 'GuardedPool', abortGrace: 5000 }) });
 * // in its checkout: the client's release becomes the give-back
 * this[poolCheckouts].checkout((error, client, giveBack) => { if (client) client.release = giveBack; callback(error, client) }, false);
 */
export function createCheckouts<R>(pool: PoolWithPolicy<R>, options: CheckoutsOptions): Checkouts<R> {
  return new Checkouts(pool, options);
}

/** Tells `checkouts` a guard was given its pool (the guard's constructor calls it). */
export function attachCheckouts(checkouts: Checkouts<unknown>, link: CheckoutLink): void {
  checkouts[attachSlot](link);
}

/** Whether a pool that hands out its own connections exists that no guard was given: guards then turn async context on. */
export function hasUnattachedCheckouts(): boolean {
  return unattached > 0;
}

function leasesOf(scope: RequestScope): RequestLeases | undefined {
  const leases = (scope as { [leasesSlot]?: unknown })[leasesSlot];
  return leases instanceof RequestLeases ? leases : undefined;
}
