import { describe } from '../contract/checks.ts';
import { CloseguardTypeError } from '../contract/errors.ts';
import { DEFAULT_ABORT_GRACE_MS } from '../host/driver.ts';
import type { Checkouts } from './checkouts.ts';
import { isCheckoutPool, isPoolLike, poolCheckouts, type CheckoutPool, type PoolLike } from './pool.ts';
import { PoolEntry } from './release-policy.ts';
import type { LeakMessage } from '../host/signals.ts';
import { checkTransactionOption, transactionsUnsupported, type TransactionMode, type TransactionOptions } from './transaction-options.ts';

/** A leak report: a connection acquired by hand through `track(pool)` and not released in its request. */
export type LeakReport = Pick<LeakMessage, 'stack' | 'route' | 'heldMs' | 'alias'>;

/** Options of ConnectionClosingMiddleware and of every adapter's `connectionClosing()`. Durations in ms. */
export interface ConnectionClosingOptions {
  /**
   * The pool of the alias 'default'. Give `pool` or `pools`. A pool that hands out connections by
   * itself (`GuardedPool` from @closeguard/pg) is taken as it is: its checkouts inside a request
   * become the request's, and async context is turned on.
   */
  pool?: PoolLike | CheckoutPool;
  /** Pools by alias: `connection('analytics')`. */
  pools?: Readonly<Record<string, PoolLike | CheckoutPool>>;
  /** Destroy a connection older than this at request end; 0 = one request only. Default Infinity (keep). */
  maxAge?: number;
  /** Check a reused connection before handing it out: true for the pool policy's check, or your own. Default false. */
  healthCheck?: boolean | ((connection: unknown) => boolean | PromiseLike<boolean>);
  /** Requests inside the app at once. Default: the largest pool's `max`. */
  backpressure?: number;
  /** Requests that may wait for a place; past it, 503 at once. Default: 2 × backpressure. */
  queueLimit?: number;
  /** How long a request may wait for a place before a 503. Default 5000. */
  queueTimeout?: number;
  /** After a hang-up, how long a busy connection is waited for before it is destroyed. Default 5000. */
  abortGrace?: number;
  /** Called with each leak `track(pool)` reclaims (isolated: a throw is logged). */
  onLeak?: (leak: LeakReport) => void;
  /** Turn on AsyncLocalStorage so `connection()` and `currentScope()` work (costs a few %). Default false; `track()` and a `GuardedPool` turn it on. */
  asyncContext?: boolean;
  /**
   * Request transactions (Django's `ATOMIC_REQUESTS`): each request's connection runs inside
   * `BEGIN … COMMIT`, committed before its response goes out when the status commits (default 2xx
   * and 3xx) and the client is still there, rolled back on a thrown error, another status, a
   * hang-up, a timeout or shutdown. A `GuardedPool`'s checkouts in the request join it. Per route:
   * the adapters' `transaction(false)` (or `true`), Fastify's route `config.closeguard.transaction`.
   * Default false. See docs/transactions.md.
   */
  transaction?: boolean | TransactionOptions;
}

export interface Settings {
  entries: Map<string, PoolEntry>;
  /** The `Checkouts` of the pools that hand out connections by themselves, by alias. */
  checkouts: Map<string, Checkouts>;
  maxAge: number;
  healthCheck: boolean | ((connection: unknown) => boolean | PromiseLike<boolean>);
  backpressure: number;
  queueLimit: number;
  queueTimeout: number;
  abortGrace: number;
  onLeak: ((leak: LeakReport) => void) | undefined;
  asyncContext: boolean;
  /** Every request's transaction setting unless a route says otherwise. */
  transaction: TransactionMode;
  /** Why the pools cannot run request transactions (a route that turns one on is refused), or undefined. */
  transactionsUnsupported: string | undefined;
}

const DEFAULT_QUEUE_TIMEOUT_MS = 5_000;

/**
 * Checks the options and fills in defaults.
 * @throws CloseguardTypeError (a TypeError) `ERR_CLOSEGUARD_INVALID_OPTION` naming the option that is wrong.
 */
export function checkMiddlewareOptions(options: ConnectionClosingOptions): Settings {
  if (typeof options !== 'object' || options === null) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `ConnectionClosingMiddleware takes an options object with pool or pools; received ${typeof options}`);
  }
  const { entries, checkouts } = poolEntries(options);
  const maxima = [...entries.values()].map((entry) => entry.pool.max).filter((max): max is number => typeof max === 'number');
  const backpressure = options.backpressure ?? (maxima.length > 0 ? Math.max(...maxima) : undefined);
  if (backpressure === undefined) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', 'option backpressure is required when the pool does not tell its max: pass the number of connections the pool may open');
  }
  checkCount('backpressure', backpressure, 1);
  const queueLimit = options.queueLimit ?? 2 * backpressure;
  checkCount('queueLimit', queueLimit, 0);
  for (const name of ['maxAge', 'queueTimeout', 'abortGrace'] as const) checkDuration(name, options[name]);
  if (options.healthCheck !== undefined && typeof options.healthCheck !== 'boolean' && typeof options.healthCheck !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option healthCheck must be a boolean or a function; received ${typeof options.healthCheck}`);
  }
  if (options.onLeak !== undefined && typeof options.onLeak !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option onLeak must be a function; received ${typeof options.onLeak}`);
  }
  const transaction = checkTransactionOption(options.transaction, 'option transaction') ?? false;
  const unsupported = transactionsUnsupported(entries, new Set(checkouts.keys()));
  if (transaction !== false && unsupported !== undefined) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option transaction cannot be on: ${unsupported}`);
  }
  return {
    entries,
    checkouts,
    maxAge: options.maxAge ?? Infinity,
    healthCheck: options.healthCheck ?? false,
    backpressure,
    queueLimit,
    queueTimeout: options.queueTimeout ?? DEFAULT_QUEUE_TIMEOUT_MS,
    abortGrace: options.abortGrace ?? DEFAULT_ABORT_GRACE_MS,
    onLeak: options.onLeak,
    asyncContext: options.asyncContext === true || checkouts.size > 0,
    transaction,
    transactionsUnsupported: unsupported,
  };
}

function poolEntries(options: ConnectionClosingOptions): Pick<Settings, 'entries' | 'checkouts'> {
  if ((options.pool === undefined) === (options.pools === undefined)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', 'give exactly one of the options pool (one pool) and pools (pools by alias)');
  }
  const pools: Record<string, unknown> = options.pool !== undefined ? { default: options.pool } : { ...options.pools };
  const entries = new Map<string, PoolEntry>();
  const checkouts = new Map<string, Checkouts>();
  for (const [alias, pool] of Object.entries(pools)) {
    if (isCheckoutPool(pool)) {
      // It hands out connections by itself: leases take them through its own view of itself.
      const source = pool[poolCheckouts] as Checkouts;
      checkouts.set(alias, source);
      entries.set(alias, new PoolEntry(alias, source.pool));
      continue;
    }
    if (!isPoolLike(pool)) {
      const name = options.pool !== undefined ? 'pool' : `pools.${alias}`;
      throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option ${name} must have acquire(), release(r) and destroy(r) (a generic-pool Pool fits; use @closeguard/pg's GuardedPool, or wrap a plain pg.Pool with fromPgPool())`);
    }
    entries.set(alias, new PoolEntry(alias, pool));
  }
  if (entries.size === 0) throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', 'option pools must name at least one pool');
  return { entries, checkouts };
}

function checkCount(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option ${name} must be an integer ≥ ${min}; received ${describe(value)}`);
  }
}

function checkDuration(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'number' || Number.isNaN(value) || value < 0)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option ${name} must be a number of milliseconds ≥ 0; received ${describe(value)}`);
  }
}
