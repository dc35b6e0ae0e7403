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
}

/** A state at rest. */
export function createRouteState(): RouteState {
  return { querying: false, lateStarted: false, latePid: undefined, lateQueriedOn: undefined, cursorsClosed: 0, tracked: undefined };
}

/** Puts `state` back at rest, in place (the routes hold it). */
export function resetRouteState(state: RouteState): void {
  Object.assign(state, createRouteState());
}
