import type { PoolLike } from '@closeguard/core';

/** What the standard routes record for the cases to check; one per suite, reset after each case. */
export interface RouteState {
  /** A route started its long query (`/sleep`) or leased and queried (`/hang`). */
  querying: boolean;
  /** `/late` leased and read its backend pid. */
  lateStarted: boolean;
  /** The backend pid `/late` got first… */
  latePid: number | undefined;
  /** …and the one its query after the hang-up ran on. */
  lateQueriedOn: number | undefined;
  /** Cursors `/cursor` closed. */
  cursorsClosed: number;
  /** The pool `/leak` acquires from by hand: `guard.track(pool)`, set by the case. */
  tracked: PoolLike | undefined;
  /** The pool the `/tx/checkout` routes check out of through its own API (a GuardedPool), set by the case. */
  checkoutPool: CheckoutPool | undefined;
}

/** A client a pool hands out by itself, as pg.Pool's `connect()` does. */
export interface CheckoutClient {
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: T[] }>;
  release(error?: unknown): void;
}

/** A pool that hands out clients by itself (pg.Pool's API: a GuardedPool), as libraries use it. */
export interface CheckoutPool {
  connect(): Promise<CheckoutClient>;
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: T[] }>;
}

/** A state at rest. */
export function createRouteState(): RouteState {
  return { querying: false, lateStarted: false, latePid: undefined, lateQueriedOn: undefined, cursorsClosed: 0, tracked: undefined, checkoutPool: undefined };
}

/** Puts `state` back at rest, in place (the routes hold it). */
export function resetRouteState(state: RouteState): void {
  Object.assign(state, createRouteState());
}
