/**
 * What ConnectionClosingMiddleware needs of a pool: a generic-pool `Pool` fits as it is; a
 * `pg.Pool` fits through `fromPgPool()` in @closeguard/pg.
 */
export interface PoolLike<R = unknown> {
  acquire(): PromiseLike<R>;
  release(resource: R): unknown;
  destroy(resource: R): unknown;
  /** generic-pool's figures, read by `stats()` and for the default backpressure when present. */
  readonly max?: number;
  readonly size?: number;
  readonly available?: number;
  readonly borrowed?: number;
  readonly pending?: number;
  /** Called by `close()`: stop creating, wait for borrowed resources, then destroy the idle ones. */
  drain?(): PromiseLike<unknown>;
  clear?(): PromiseLike<unknown>;
}

/**
 * A driver's knowledge of its connections, attached to a pool under `poolPolicy`
 * (`@closeguard/pg` does). Every member is optional; without one the middleware assumes the
 * connection is usable, idle and clean.
 */
export interface PoolPolicy<R = unknown> {
  /** False when the connection must not be reused: it errored, or its socket ended. */
  isUsable?(resource: R): boolean;
  /** True while a query runs on it. */
  isBusy?(resource: R): boolean;
  /** Readies it for the next request (rolls back an open transaction); false or a throw → destroy. */
  reset?(resource: R): boolean | PromiseLike<boolean>;
  /** When it was created (ms since the epoch), for `maxAge`. */
  createdAt?(resource: R): number | undefined;
  /** The health check of a reused connection (`SELECT 1`); false or a throw → destroy. */
  check?(resource: R): boolean | PromiseLike<boolean>;
  /** Stops what runs on it server-side before it is destroyed (a cancel request). */
  cancel?(resource: R): PromiseLike<unknown>;
  /** Opens a transaction on it (`BEGIN`): a request transaction's first statement (the `transaction` option). */
  begin?(resource: R): PromiseLike<unknown>;
  /**
   * Commits its transaction; rejects when the database did not commit it (a deferred constraint
   * failed, or a statement failed inside it and the database rolled it back instead).
   */
  commit?(resource: R): PromiseLike<unknown>;
  /** Rolls its transaction back. */
  rollback?(resource: R): PromiseLike<unknown>;
  /**
   * For a pool that hands out connections by itself (a guarded pg.Pool): the request transaction's
   * connection as one more of its own checkouts, for a library that checks out inside a transaction
   * request — its `BEGIN`/`COMMIT`/`ROLLBACK` become savepoints of the request's transaction, its
   * `release()` calls `checkout.release()` and gives nothing back: the request's lease does at its end.
   */
  join?(resource: R, checkout: JoinedCheckout): R;
}

/** One of a library's checkouts that joined the request transaction's connection (see `PoolPolicy.join`). */
export interface JoinedCheckout {
  /** False once its request ended: the connection went back to the pool and is no longer the checkout's to use. */
  readonly active: boolean;
  /** The library gave the checkout back (pg's `release(error?)`): the connection stays the request's. */
  release(error?: unknown): void;
}

/** The key under which a pool carries its `PoolPolicy`. */
export const poolPolicy: unique symbol = Symbol.for('closeguard.poolPolicy') as never;

/** A pool as the middleware reads it, with its policy. */
export type PoolWithPolicy<R> = PoolLike<R> & { [poolPolicy]?: PoolPolicy<R> };

/** Whether `value` has what a pool needs. */
export function isPoolLike(value: unknown): value is PoolLike {
  const pool = value as Partial<PoolLike> | null;
  return (
    typeof pool === 'object' && pool !== null &&
    typeof pool.acquire === 'function' && typeof pool.release === 'function' && typeof pool.destroy === 'function'
  );
}

/**
 * The key under which a pool that hands out connections by itself (a guarded `pg.Pool`, whose
 * `connect()` ORMs call) carries its `Checkouts` (`createCheckouts()` from `@closeguard/core/host`):
 * a guard takes such a pool as it is, and its checkouts inside a request become the request's.
 */
export const poolCheckouts: unique symbol = Symbol.for('closeguard.poolCheckouts') as never;

/** A pool that carries its `Checkouts` under `poolCheckouts`. */
export interface CheckoutPool {
  readonly [poolCheckouts]: { readonly pool: PoolLike };
}

/** Whether `value` carries `Checkouts` (a guarded pool made by a driver). */
export function isCheckoutPool(value: unknown): value is CheckoutPool {
  const pool = value as Partial<CheckoutPool> | null;
  return typeof pool === 'object' && pool !== null && typeof pool[poolCheckouts] === 'object' && pool[poolCheckouts] !== null;
}
