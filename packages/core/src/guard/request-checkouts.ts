import { CloseguardError } from '../contract/errors.ts';
import { signals } from '../host/signals.ts';
import { acquireUnlessAborted, attemptLimit, giveBack, type LeaseContext, type RequestLeases } from './leases.ts';
import type { LeakReport } from './options.ts';
import type { JoinedCheckout } from './pool.ts';
import { isVerdict, judge, type PoolEntry, type Verdict } from './release-policy.ts';

/** A guard's side of a pool it was given that hands out connections by itself (see `Checkouts`). */
export interface CheckoutLink {
  /** The guard's entry for the pool: its alias, its policy, the pool as `req.db()` leases from it. */
  readonly entry: PoolEntry;
  readonly context: LeaseContext;
  readonly onLeak: ((leak: LeakReport) => void) | undefined;
}

/**
 * Gives one checkout back by the release policy — destroyed when given an error (as pg's
 * `release(error)`), else rolled back if a transaction was left open, waited for while a query
 * runs — once: a later call does nothing.
 */
export type GiveBack = (error?: unknown) => void;

/**
 * Told once how a checkout went: the connection and how to give it back, or why there is none.
 * `joined`: the connection is the request transaction's, wrapped by the pool's `join` (its own
 * `release()` is the give-back already: leave it as it is).
 */
export type CheckoutCallback<R> = (error: Error | undefined, resource: R | undefined, giveBack: GiveBack | undefined, joined?: boolean) => void;

const UNUSABLE: Verdict = Object.freeze({ action: 'destroy', cause: 'unusable' });

/** One connection a pool handed out inside the request. */
class Held {
  back = false;
  readonly at = Date.now();

  constructor(
    readonly link: CheckoutLink,
    readonly resource: unknown,
    /** Where the app checked it out (its stack is read only for a leak); undefined for the pool's own `query()`. */
    readonly checkedOutAt: Error | undefined,
    /** It joined the request's transaction: the connection is the request's lease, given back with it. */
    readonly joined = false,
  ) {}
}

/**
 * What pools handed out by themselves inside one request (an ORM's `pool.connect()` and
 * `pool.query()` on a guarded pg.Pool): each checkout takes the request's admission place as a
 * lease would, is abandoned if the client leaves while it waits, and is given back when the app
 * gives it back — or, at the latest, when the request ends: then reclaimed by the release policy
 * and, if the app checked it out and the request did not time out, reported as a leak.
 */
export class RequestCheckouts {
  readonly #leases: RequestLeases;
  readonly #held = new Set<Held>();
  /** Give-backs still running (a ROLLBACK, a busy connection waited for): the request ends after them. */
  readonly #returning = new Set<Promise<void>>();

  private constructor(leases: RequestLeases) {
    this.#leases = leases;
  }

  /** The checkouts of the request `leases` belong to, made on its first checkout. */
  static of(leases: RequestLeases): RequestCheckouts {
    return (leases.checkouts ??= new RequestCheckouts(leases));
  }

  /**
   * Checks a connection out of `link`'s pool for the request. `own`: the pool's own `query()` took
   * it (still running at the end is no leak: the request gave up on it, not the app).
   */
  take(link: CheckoutLink, own: boolean, callback: CheckoutCallback<unknown>): void {
    const leases = this.#leases;
    const checkedOutAt = own ? undefined : new Error('checked out here');
    if (leases.joinsTransaction(link.context)) {
      this.#join(link, checkedOutAt, callback);
      return;
    }
    // The admission place is the request's guard's: a pool of another guard (nested) takes none.
    const admitted = leases.sharesGuardWith(link.context) ? leases.admitted() : true;
    const acquired = admitted === true ? this.#acquire(link) : admitted.then(() => this.#acquire(link));
    acquired.then(
      (resource) => {
        if (leases.ended) {
          // The request ended while this waited (nobody awaited it): straight back.
          void giveBack(link.entry, resource, undefined, link.context.ledger, leases.scope);
          callback(new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', 'a connection was checked out after its request ended'), undefined, undefined);
          return;
        }
        const held = new Held(link, resource, checkedOutAt);
        this.#held.add(held);
        callback(undefined, resource, (error) => this.#givenBack(held, error));
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), undefined, undefined),
    );
  }

  /**
   * In a transaction request, a checkout is the request's own connection — its lease, which began
   * the transaction — as the pool's policy joins it: the library's BEGIN/COMMIT/ROLLBACK become
   * savepoints, its release() gives nothing back (the request does, at its end).
   */
  #join(link: CheckoutLink, checkedOutAt: Error | undefined, callback: CheckoutCallback<unknown>): void {
    const leases = this.#leases;
    leases.get(link.entry.alias).then(
      (resource) => {
        if (leases.ended) {
          callback(new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', 'a connection was checked out after its request ended'), undefined, undefined);
          return;
        }
        const held = new Held(link, resource, checkedOutAt, true);
        this.#held.add(held);
        const release = (error?: unknown): void => this.#givenBack(held, error);
        const checkout: JoinedCheckout = {
          get active() {
            return !leases.ended;
          },
          release,
        };
        callback(undefined, link.entry.policy.join!(resource, checkout), release, true);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), undefined, undefined),
    );
  }

  /** Reclaims what the app did not give back, then waits for every give-back; never rejects. */
  finish(): Promise<void> | undefined {
    const { scope } = this.#leases;
    const reason = scope.closeReason;
    // Given up on (a timeout, shutdown): the code holding it may still run, so no leak, but never released under it.
    const leaks = reason !== 'timeout' && reason !== 'shutdown';
    for (const held of this.#held) {
      held.back = true;
      if (held.joined) {
        // The connection is the request's lease: it goes back with it. The checkout is spent (its `active` is false now).
        if (leaks && held.checkedOutAt !== undefined) this.#reportLeak(held);
        continue;
      }
      const { entry, context } = held.link;
      const verdict = judge(entry, held.resource, reason, context, scope);
      if (held.checkedOutAt === undefined) {
        this.#track(this.#apply(held, verdict));
        continue;
      }
      if (leaks) this.#reportLeak(held);
      // The app still holds it, and code that outlived its request may still use it or release it
      // later — a release pg-pool cannot tell from the next holder's: destroyed, never handed out
      // again (once idle: judge() still waits for, or cancels, a query running on it).
      this.#track(this.#apply(held, isVerdict(verdict) ? neverReleased(verdict) : verdict.then(neverReleased)));
    }
    this.#held.clear();
    if (this.#returning.size === 0) return undefined;
    return Promise.all(this.#returning).then(ignore);
  }

  /** Shutdown gave up waiting: cancels, server-side, what runs on the connections still held. */
  cancelRunning(): void {
    for (const { link, resource, joined } of this.#held) {
      if (joined) continue; // the request's lease: cancelled with it
      const { policy } = link.entry;
      if (policy.isBusy?.(resource) !== true || !policy.cancel) continue;
      Promise.resolve(policy.cancel(resource)).catch((error: unknown) => this.#leases.scope.report(error, 'cleanup'));
    }
  }

  /** Leases from the pool, abandoned on abort; one the policy knows is unusable is destroyed and another taken. */
  async #acquire(link: CheckoutLink): Promise<unknown> {
    const { entry, context } = link;
    const { scope } = this.#leases;
    for (let attempt = 1; ; attempt++) {
      const resource = await acquireUnlessAborted(entry, scope, context.ledger);
      context.ledger.leased++;
      if (entry.policy.isUsable?.(resource) !== false) return resource;
      void giveBack(entry, resource, 'unusable', context.ledger, scope);
      if (attempt >= attemptLimit(entry)) {
        throw new CloseguardError('ERR_CLOSEGUARD_HEALTH_CHECK_FAILED', `${attempt} connections in a row from pool '${entry.alias}' were unusable`, { retryAfter: 1 });
      }
    }
  }

  #givenBack(held: Held, error: unknown): void {
    if (held.back) return; // a late release: the request reclaimed it already, or it was given back before
    held.back = true;
    this.#held.delete(held);
    if (held.joined) return; // the request's connection: nothing goes back before the request ends
    const { entry, context } = held.link;
    this.#track(this.#apply(held, error ? UNUSABLE : judge(entry, held.resource, undefined, context, this.#leases.scope)));
  }

  #apply(held: Held, verdict: Verdict | Promise<Verdict>): Promise<void> | undefined {
    const { entry, context } = held.link;
    const { scope } = this.#leases;
    const apply = (decided: Verdict): Promise<void> | undefined =>
      giveBack(entry, held.resource, decided.action === 'release' ? undefined : decided.cause, context.ledger, scope);
    return isVerdict(verdict) ? apply(verdict) : verdict.then(apply);
  }

  #track(returning: Promise<void> | undefined): void {
    if (returning === undefined) return;
    this.#returning.add(returning);
    void returning.then(() => this.#returning.delete(returning));
  }

  #reportLeak(held: Held): void {
    const { link } = held;
    const { scope } = this.#leases;
    link.context.ledger.leaksReclaimed++;
    const leak: LeakReport = { stack: held.checkedOutAt?.stack ?? '', route: scope.route, heldMs: Date.now() - held.at, alias: link.entry.alias };
    signals.leak.publish({ scope, ...leak });
    try {
      link.onLeak?.(leak);
    } catch (error) {
      scope.report(error, 'hook');
    }
  }
}

const ignore = (): void => undefined;

const ABANDONED: Verdict = Object.freeze({ action: 'destroy', cause: 'abandoned' });

function neverReleased(verdict: Verdict): Verdict {
  return verdict.action === 'release' ? ABANDONED : verdict;
}
