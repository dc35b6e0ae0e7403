import type { Admission } from './admission.ts';
import { isThenable } from '../contract/checks.ts';
import { CloseguardError, CloseguardTypeError } from '../contract/errors.ts';
import { isVerdict, judge, type DestroyCause, type PoolEntry, type Reporter, type Verdict } from './release-policy.ts';
import type { Finisher, HostScope } from '../host/scope.ts';
import type { RequestCheckouts } from './request-checkouts.ts';
import { RequestTransaction, type TransactionCounts } from './transaction.ts';
import type { TransactionMode } from './transaction-options.ts';
import type { RegisteredConnection, RequestScope } from '../contract/types.ts';

/** Counters kept across requests, read by `stats()`. */
export class Ledger {
  leased = 0;
  released = 0;
  destroyed: Record<DestroyCause, number> = { unusable: 0, obsolete: 0, abandoned: 0 };
  abandonedWaits = 0;
  leaksReclaimed = 0;
  transactions: TransactionCounts = { committed: 0, rolledBack: 0 };
}

/** The requests in flight, newest first: a list through their leases (no Set to hash into on every request). */
export class InFlight {
  head: RequestLeases | undefined = undefined;
}

/** What the leases of every request share: the pools, the policy settings, the counters. */
export interface LeaseContext {
  entry(alias: string): PoolEntry;
  /**
   * Admission control: a request takes a place with its first lease, not when it enters, so a
   * request still reading a slow upload (or one that never leases) holds no place meant for a
   * connection. It gives the place back once its connections are back.
   */
  readonly admission: Admission;
  readonly inFlight: InFlight;
  readonly ledger: Ledger;
  readonly maxAgeMs: number;
  readonly graceMs: number;
  readonly healthCheck: boolean | ((resource: unknown) => boolean | PromiseLike<boolean>);
  /** Every request's transaction setting unless a route says otherwise (`useTransaction()`). */
  readonly transaction: TransactionMode;
  /** Why the pools cannot run request transactions, or undefined when they can. */
  readonly transactionsUnsupported: string | undefined;
}

/**
 * How many connections in a row one lease may find unusable or failing its health check before it
 * gives up: every idle one of a full pool may be dead after a restart, and others' connections
 * come back meanwhile, so twice the pool's max (or 10 when it has none) and one more.
 */
export function attemptLimit(entry: PoolEntry): number {
  return 2 * (entry.pool.max ?? 10) + 1;
}

/**
 * One request's connections: leased lazily on first use, the same one for the rest of the
 * request, given back exactly once by `finish()` when its scope closes.
 */
export class RequestLeases implements Finisher {
  readonly scope: RequestScope;
  readonly #context: LeaseContext;
  /** Most requests hold one connection or none: the first is kept in fields, a Map only for more. */
  #firstAlias: string | undefined;
  #firstEntry: PoolEntry | undefined;
  #firstLease: Promise<unknown> | undefined;
  /** The first connection once leased: the common end() gives it back without waiting on its promise. */
  #firstResource: unknown = PENDING;
  #more: Map<string, { entry: PoolEntry; lease: Promise<unknown> }> | undefined;
  #ended = false;
  /** The admission place: undefined until the first lease asks for one, `true` once held at once, else the wait for it. */
  #admission: true | Promise<void> | undefined;
  /** Whether the request holds a place, to give back at its end. */
  #holdsPlace = false;
  #newer: RequestLeases | undefined = undefined;
  #older: RequestLeases | undefined = undefined;
  /** What pools that hand out connections by themselves (a guarded pg.Pool) handed out in this request, once one did. */
  checkouts: RequestCheckouts | undefined = undefined;
  /** The request's own transaction setting (a route's `transaction()`); undefined: the guard's. */
  #mode: TransactionMode | undefined = undefined;
  /** The request's transaction, once it is on and a lease (or a checkout) asked for a connection. */
  #transaction: RequestTransaction | undefined = undefined;
  /** The host settled the request's transaction (or found none to settle): later leases begin none. */
  #transactionSettled = false;

  /** Starts a request's leases and counts it in flight until `finish()` has given everything back. */
  constructor(scope: RequestScope, context: LeaseContext) {
    this.scope = scope;
    this.#context = context;
    const list = context.inFlight;
    this.#older = list.head;
    if (list.head !== undefined) list.head.#newer = this;
    list.head = this;
  }

  /** The requests in flight, newest first (a copy: aborting one may end it). */
  static inFlight(list: InFlight): RequestLeases[] {
    const all: RequestLeases[] = [];
    for (let leases = list.head; leases !== undefined; leases = leases.#older) all.push(leases);
    return all;
  }

  /** Whether the request asked for a connection (it holds one, or waits for one or for a place). */
  get leasing(): boolean {
    return this.#firstLease !== undefined || this.checkouts !== undefined;
  }

  /** Whether `finish()` ran: the request's connections went back (or are going back) to their pools. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Whether these leases are those of the guard whose context is `context`. */
  sharesGuardWith(context: LeaseContext): boolean {
    return this.#context === context;
  }

  /**
   * Takes the request's admission place for a pool's own checkout (see `Checkouts`), as its first
   * lease would: `true` once held, else the wait for it, rejecting as `#admit()` says.
   */
  admitted(): true | Promise<void> {
    return this.#admission ?? this.#admit();
  }

  /**
   * Shutdown gave up waiting: cancels, server-side, the query running on each of the request's
   * connections (a `pg_sleep` or a cursor stops now, its handler gets an error and settles).
   */
  cancelRunning(): void {
    const cancel = (entry: PoolEntry, lease: Promise<unknown>): void => {
      lease.then((resource) => {
        if (entry.policy.isBusy?.(resource) !== true || !entry.policy.cancel) return;
        Promise.resolve(entry.policy.cancel(resource)).catch((error: unknown) => this.scope.report(error, 'cleanup'));
      }, ignore); // a lease that failed holds nothing to cancel
    };
    if (this.#firstLease !== undefined) cancel(this.#firstEntry!, this.#firstLease);
    for (const { entry, lease } of this.#more?.values() ?? []) cancel(entry, lease);
    this.checkouts?.cancelRunning();
  }

  /** The request's transaction setting: a route's own (`useTransaction()`), else the guard's `transaction` option. */
  get transactionMode(): TransactionMode {
    return this.#mode ?? this.#context.transaction;
  }

  /**
   * A route's own transaction setting (the adapters' `transaction()`): its settings, or false.
   * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` turning transactions on when the
   * pools cannot run them; CloseguardError `ERR_CLOSEGUARD_TRANSACTION_BEGUN` turning them on or
   * off after the request leased a connection.
   */
  useTransaction(mode: TransactionMode): void {
    const unsupported = this.#context.transactionsUnsupported;
    if (mode !== false && unsupported !== undefined) {
      throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `transaction() cannot turn request transactions on: ${unsupported}`);
    }
    if (this.leasing && (mode === false) !== (this.transactionMode === false)) {
      throw new CloseguardError('ERR_CLOSEGUARD_TRANSACTION_BEGUN', `transaction(${mode !== false}) came after the request leased a connection`);
    }
    this.#mode = mode;
    if (mode !== false && this.#transaction !== undefined) this.#transaction.settings = mode;
  }

  /**
   * Hosts: the response's status is known and nothing of it went out yet (the point to call it
   * for each framework: docs/transactions.md). Commits the request's transaction when nothing
   * failed, the status commits and the client is still there, else rolls it back; a connection
   * leased from now on runs outside it. Once: a later call does nothing.
   * @param failed the handler chain failed (a thrown error the framework answers)
   * @returns undefined when nothing is to be done (no transaction, or the common request that
   * did not lease); else a promise that rejects with `ERR_CLOSEGUARD_COMMIT_FAILED` when COMMIT
   * failed — answer that error instead of the response (500).
   */
  settleTransaction(status: number, failed: boolean): Promise<void> | undefined {
    this.#transactionSettled = true;
    return this.#transaction?.settle(status, failed, isAborted(this.scope));
  }

  /** Whether a pool's own checkout made now, from a pool of the guard of `context`, joins the request's transaction. */
  joinsTransaction(context: LeaseContext): boolean {
    return this.#context === context && this.#transactionToBegin() !== undefined;
  }

  /** The transaction a lease made now begins on its connection, made on first need; undefined when none. */
  #transactionToBegin(): RequestTransaction | undefined {
    if (this.#transactionSettled) return undefined;
    if (this.#transaction !== undefined) return this.#transaction;
    const mode = this.transactionMode;
    if (mode === false) return undefined;
    return (this.#transaction = new RequestTransaction(mode, this.#context.ledger.transactions, this.scope));
  }

  /** The request's connection for `alias`, leasing it on first use (typed by `Register`, see `connection()`). */
  get<T = RegisteredConnection>(alias = 'default'): Promise<T> {
    return this.#get(alias) as Promise<T>;
  }

  #get(alias: string): Promise<unknown> {
    // Also for a connection it held: once the request ended it went back to the pool, maybe to another request.
    if (this.#ended) return Promise.reject(new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', `connection('${alias}') was asked for after the request ended`));
    if (alias === this.#firstAlias) return this.#firstLease!;
    const held = this.#more?.get(alias);
    if (held) return held.lease;
    const entry = this.#context.entry(alias);
    const first = this.#firstAlias === undefined;
    const lease = this.#lease(entry, first);
    if (first) {
      this.#firstAlias = alias;
      this.#firstEntry = entry;
      this.#firstLease = lease;
    } else {
      (this.#more ??= new Map()).set(alias, { entry, lease });
    }
    return lease;
  }

  /**
   * Gives every connection back, by the release policy, then takes the request off the in-flight
   * list and gives its admission place back. Runs once, when the scope closes; never throws or
   * rejects. When the request leased nothing, that is done at once and it returns nothing;
   * otherwise it returns a promise that settles once it is done.
   */
  finish(): Promise<void> | undefined {
    this.#ended = true;
    // A pool's own checkouts go back first (leaks reported); the admission place once everything is back.
    const checkouts = this.checkouts?.finish();
    const transaction = this.#transaction;
    if (transaction === undefined) {
      if (checkouts !== undefined) return checkouts.then(() => this.#finishLeases());
      return this.#finishLeases();
    }
    // The transaction ends (committed or rolled back) before its connections go back.
    const end = (): Promise<void> | undefined => {
      const ending = transaction.finish(this.scope.closeReason);
      return ending === undefined ? this.#finishLeases() : ending.then(() => this.#finishLeases());
    };
    return checkouts === undefined ? end() : checkouts.then(end);
  }

  #finishLeases(): Promise<void> | undefined {
    if (this.#firstLease === undefined) {
      this.#left();
      return undefined;
    }
    const left = (): void => this.#left();
    if (this.#more === undefined) {
      // Leased by now (the common case): judged and given back at once, not after a turn on its promise.
      if (this.#firstResource !== PENDING) return this.#giveBackNow(this.#firstEntry!, this.#firstResource, left);
      return this.#giveBack(this.#firstEntry!, this.#firstLease, left);
    }
    const leases = [{ entry: this.#firstEntry!, lease: this.#firstLease }, ...this.#more.values()];
    return Promise.all(leases.map(({ entry, lease }) => this.#giveBack(entry, lease, ignore))).then(left);
  }

  #left(): void {
    const list = this.#context.inFlight;
    if (this.#newer === undefined) list.head = this.#older;
    else this.#newer.#older = this.#older;
    if (this.#older !== undefined) this.#older.#newer = this.#newer;
    this.#newer = this.#older = undefined;
    if (this.#holdsPlace) {
      this.#holdsPlace = false;
      this.#context.admission.leave();
    }
  }

  /** Leases from `entry` once the request holds an admission place (taken by its first lease). */
  #lease(entry: PoolEntry, first: boolean): Promise<unknown> {
    const admitted = this.#admission ?? this.#admit();
    const transaction = this.#transactionToBegin();
    if (admitted === true && transaction === undefined) return this.#acquire(entry, first);
    const acquired = admitted === true ? this.#acquire(entry, first) : admitted.then(() => this.#acquire(entry, first));
    const lease = transaction === undefined ? acquired : acquired.then((resource) => this.#begin(transaction, entry, resource, first));
    lease.catch(ignore); // the caller's to handle, when it awaits the lease
    return lease;
  }

  /** Opens the request's transaction on a connection just leased; one whose BEGIN failed is destroyed, and the lease rejects. */
  async #begin(transaction: RequestTransaction, entry: PoolEntry, resource: unknown, first: boolean): Promise<unknown> {
    try {
      await transaction.begin(entry, resource);
      return resource;
    } catch (error) {
      // Unless finish() took the first connection already (the request ended while BEGIN ran), it goes back here.
      if (!(first && this.#ended)) {
        if (first) this.#firstResource = PENDING;
        void giveBack(entry, resource, 'unusable', this.#context.ledger, this.scope);
      }
      throw error;
    }
  }

  /**
   * Takes the request's admission place: `true` at once, else the wait for one, which rejects with
   * a coded 503 (overloaded: at once; queue timeout; shutdown) or the abort reason when the client
   * leaves first. The request's error path answers a 503 with `Retry-After` (the error's `headers`).
   */
  #admit(): true | Promise<void> {
    const { admission } = this.#context;
    try {
      if (admission.tryEnter()) {
        this.#holdsPlace = true;
        return (this.#admission = true);
      }
    } catch (error) {
      // Shed (overloaded, or shutting down): the lease rejects with the coded 503.
      const shed = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      shed.catch(ignore);
      return (this.#admission = shed);
    }
    this.#admission = new Promise<void>((resolve, reject) => {
      admission.queue(this.scope, {
        admitted: () => {
          this.#holdsPlace = true;
          // Its turn came after the request ended (it answered without awaiting its lease): the place goes back at once, through finish().
          if (this.#ended) reject(new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', 'a connection was waited for after the request ended'));
          else resolve();
        },
        refused: reject,
      });
    });
    return this.#admission;
  }

  /** Judges and gives back one connection once leased, then calls `after`; never rejects (a failure to lease means nothing to give back). */
  #giveBack(entry: PoolEntry, lease: Promise<unknown>, after: () => void): Promise<void | undefined> {
    return lease.then((resource) => this.#giveBackNow(entry, resource, after), after);
  }

  /** Judges and gives back a leased connection, then calls `after` (at once, and returns nothing, when all of it was synchronous). */
  #giveBackNow(entry: PoolEntry, resource: unknown, after: () => void): Promise<void> | undefined {
    const verdict = judge(entry, resource, this.scope.closeReason, this.#context, this.scope);
    if (isVerdict(verdict)) return this.#apply(entry, resource, verdict, after);
    return verdict.then((later) => this.#apply(entry, resource, later, after));
  }

  #apply(entry: PoolEntry, resource: unknown, verdict: Verdict, after: () => void): Promise<void> | undefined {
    return giveBack(entry, resource, verdict.action === 'release' ? undefined : verdict.cause, this.#context.ledger, this.scope, after);
  }

  /** Leases from `entry`'s pool: at once when nothing is to be remembered or checked (the common case). */
  #acquire(entry: PoolEntry, first: boolean): Promise<unknown> {
    if (entry.remembers(this.#context)) {
      const checked = this.#acquireChecked(entry, first);
      // The rejection is the caller's, who may await the lease later: never report it as unhandled.
      checked.catch(ignore);
      return checked;
    }
    const { ledger } = this.#context;
    // One reaction keeps the books and hands the connection over as it is, with no further promise,
    // unless the policy knows it is unusable (a pool kept it while its backend went away: a
    // restart, pg_terminate_backend): then it is destroyed and another leased. A rejection, rare,
    // is marked handled only then, so a lease the caller awaits later never counts as unhandled.
    const lease: Promise<unknown> = acquireUnlessAborted(entry, this.scope, ledger).then(
      (resource) => {
        ledger.leased++;
        if (entry.policy.isUsable?.(resource) === false) {
          lease.catch(ignore);
          void giveBack(entry, resource, 'unusable', ledger, this.scope);
          return this.#acquireChecked(entry, first);
        }
        if (first) this.#firstResource = resource;
        return resource;
      },
      (error: unknown) => {
        lease.catch(ignore);
        throw error;
      },
    );
    return lease;
  }

  /**
   * Leases a connection fit to hand out: one the policy knows is unusable is destroyed and another
   * leased; with healthCheck, a reused one must pass the check too. It goes on until a fresh
   * connection (one the pool never handed out before), or passes on the pool's own error when it
   * cannot open one (the database is unreachable); a bound well past the pool's max stops a pool
   * whose every connection fails.
   */
  async #acquireChecked(entry: PoolEntry, first: boolean): Promise<unknown> {
    const { ledger, healthCheck } = this.#context;
    const limit = attemptLimit(entry);
    for (let attempt = 1; ; attempt++) {
      const resource = await acquireUnlessAborted(entry, this.scope, ledger);
      ledger.leased++;
      const reused = entry.remember(resource);
      const usable = entry.policy.isUsable?.(resource) !== false;
      if (usable && (!reused || healthCheck === false || (await this.#healthy(entry, resource)))) {
        if (first) this.#firstResource = resource;
        return resource;
      }
      void giveBack(entry, resource, 'unusable', ledger, this.scope);
      if (attempt >= limit) {
        throw new CloseguardError('ERR_CLOSEGUARD_HEALTH_CHECK_FAILED', `${attempt} connections in a row from pool '${entry.alias}' were unusable or failed the health check`, { retryAfter: 1 });
      }
    }
  }

  async #healthy(entry: PoolEntry, resource: unknown): Promise<boolean> {
    const check = typeof this.#context.healthCheck === 'function' ? this.#context.healthCheck : entry.policy.check?.bind(entry.policy);
    if (!check) return true; // the policy's isUsable was asked already
    try {
      return (await check(resource)) === true;
    } catch {
      return false;
    }
  }
}

const ignore = (): void => undefined;
/** `#firstResource` before the first lease resolved (a connection may be any value, even undefined). */
const PENDING: unique symbol = Symbol('pending');

/** Acquires from the pool; if the request ends first, the wait is abandoned and a late connection goes straight back. */
export function acquireUnlessAborted(entry: PoolEntry, scope: RequestScope, ledger: Ledger): Promise<unknown> {
  if (isAborted(scope)) return Promise.reject(scope.signal.reason as Error);
  // A pool with an idle connection hands it over at once: there is no wait to abandon. (One that
  // arrives after an abort all the same is the request's, and goes back at its end.)
  if ((entry.pool.available ?? 0) > 0) return Promise.resolve(entry.pool.acquire());
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      ledger.abandonedWaits++;
      reject(scope.signal.reason as Error);
    };
    whenAborted(scope, onAbort);
    Promise.resolve(entry.pool.acquire()).then(
      (resource) => {
        if (!settled) {
          settled = true;
          resolve(resource);
        } else {
          // Taken from the pool all the same: counted leased, so leased − released − destroyed stays what requests hold.
          ledger.leased++;
          void giveBack(entry, resource, undefined, ledger, scope);
        }
      },
      (error: Error) => {
        if (settled) return;
        settled = true;
        reject(error);
      },
    );
  });
}

/** Whether the request was aborted; a host scope knows without making its signal. */
function isAborted(scope: RequestScope): boolean {
  return (scope as Partial<HostScope>).aborted ?? scope.signal.aborted;
}

/** Calls `callback` if the scope aborts: through the host scope's own list when it has one, else an 'abort' listener. */
function whenAborted(scope: RequestScope, callback: () => void): void {
  const host = scope as Partial<HostScope>;
  if (typeof host.whenAborted === 'function') host.whenAborted(callback);
  else scope.signal.addEventListener('abort', callback, { once: true });
}

/**
 * Releases (cause undefined) or destroys a connection, then calls `after`; a failure is reported,
 * never thrown. When the pool's `release()`/`destroy()` returns a promise, the returned one settles
 * once it has, and `after` has run (it never rejects); when it returns anything else (a `pg.Pool`
 * client's `release()`), it is done: `after` runs at once and nothing is returned, no promise and
 * no turn of the microtask queue.
 */
export function giveBack(entry: PoolEntry, resource: unknown, cause: DestroyCause | undefined, ledger: Ledger, scope: Reporter, after: () => void = ignore): Promise<void> | undefined {
  // A connection given up on may still run a query server-side: stop it before destroying.
  if (cause === 'abandoned' && entry.policy.cancel) return cancelThenDestroy(entry, resource, ledger, scope).then(after);
  let done: unknown;
  try {
    if (cause === undefined) {
      ledger.released++;
      done = entry.pool.release(resource);
    } else {
      ledger.destroyed[cause]++;
      done = entry.pool.destroy(resource);
    }
  } catch (error) {
    scope.report(error, 'cleanup');
    after();
    return undefined;
  }
  if (!isThenable(done)) {
    after();
    return undefined;
  }
  return Promise.resolve(done).then(after, (error: unknown) => {
    scope.report(error, 'cleanup');
    after();
  });
}

async function cancelThenDestroy(entry: PoolEntry, resource: unknown, ledger: Ledger, scope: Reporter): Promise<void> {
  ledger.destroyed.abandoned++;
  try {
    await entry.policy.cancel!(resource);
    await entry.pool.destroy(resource);
  } catch (error) {
    scope.report(error, 'cleanup');
  }
}
