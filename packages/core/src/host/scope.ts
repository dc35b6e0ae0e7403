import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { isThenable } from '../contract/checks.ts';
import { CloseguardError, CloseguardTypeError, type ErrorCode } from '../contract/errors.ts';
import { signals } from './signals.ts';
import type { AbortReason, Cleanup, CloseReason, ErrorPhase, Logger, RequestScope } from '../contract/types.ts';

/** What a host knows when a request enters. */
export interface ScopeOptions {
  method: string;
  url: string;
  /** Where errors that must not reach the server are logged (default: console). */
  logger?: Logger | undefined;
  /** Make the scope reachable through `currentScope()` (AsyncLocalStorage). Default: false. */
  asyncContext?: boolean | undefined;
  /** The request's response, destroyed when the request is aborted for shutdown (see `abort()`). */
  response?: Destroyable | undefined;
}

/** A response as the scope cuts it at shutdown: `ServerResponse`, `Http2ServerResponse`. */
export interface Destroyable {
  destroy(error?: Error): unknown;
  readonly destroyed?: boolean;
}

const storage = new AsyncLocalStorage<RequestScope>();
let asyncContextUsed = false;
let nextId = 1;

/** Where ConnectionClosingMiddleware keeps a request's leases on its scope (a slot, not a WeakMap: it is on every request's path). */
export const leasesSlot: unique symbol = Symbol('closeguard.leases') as never;

/**
 * What the guard defers on a scope without a closure: `finish()` runs at close in the scope's
 * last-in-first-out order, and the promise it may return never rejects.
 */
export interface Finisher {
  finish(): Promise<void> | undefined;
}

type Deferred = Cleanup | Finisher;

/** close()'s promise when no cleanup returned one. */
const CLOSED: Promise<void> = Promise.resolve();
/** `#closing` while the cleanups run synchronously (never settles, never returned). */
const RUNNING: Promise<void> = new Promise(() => undefined);

const abortCodes: Record<AbortReason, ErrorCode> = {
  aborted: 'ERR_CLOSEGUARD_CLIENT_CLOSED',
  timeout: 'ERR_CLOSEGUARD_TIMEOUT',
  shutdown: 'ERR_CLOSEGUARD_SHUTDOWN',
};

const abortMessages: Record<AbortReason, string> = {
  aborted: 'the client closed the connection before the response was complete',
  timeout: 'the request timed out',
  shutdown: 'the server is shutting down',
};

class Scope implements RequestScope {
  readonly id = nextId++;
  readonly method: string;
  readonly url: string;
  route: string | undefined = undefined;
  readonly startedAt = performance.now();
  /** Made on first use of `signal`: most requests never read it, and an AbortController costs. */
  #controller: AbortController | undefined;
  #abortReason: CloseguardError | undefined;
  /** Most scopes defer one thing (the guard's leases): it goes in a field, a list only for more. */
  #first: Deferred | undefined;
  #cleanups: Deferred[] | undefined;
  readonly #logger: Logger;
  #asyncContext: boolean;
  #closeReason: CloseReason | undefined;
  #closing: Promise<void> | undefined;
  #onAbort: (() => void)[] | undefined;
  [leasesSlot]: unknown = undefined;
  /** The host's response: cut when the request is aborted for shutdown. */
  response: Destroyable | undefined;

  constructor(options: ScopeOptions) {
    this.method = options.method;
    this.url = options.url;
    this.response = options.response;
    this.#logger = options.logger ?? console;
    this.#asyncContext = options.asyncContext === true;
    if (this.#asyncContext) asyncContextUsed = true;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Whether the request was aborted: `signal.aborted`, without making the signal. */
  get aborted(): boolean {
    return this.#abortReason !== undefined;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  defer(cleanup: Cleanup): void {
    if (typeof cleanup !== 'function') {
      throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `scope.defer(cleanup) takes a function; received ${typeof cleanup}`);
    }
    this.#defer(cleanup);
  }

  /** Defers `finisher.finish()` as `defer()` would a cleanup, without making a closure for it. */
  deferFinish(finisher: Finisher): void {
    this.#defer(finisher);
  }

  #defer(deferred: Deferred): void {
    // A cleanup registered after close (work that outlived its request) runs at once.
    if (this.#closing) void this.#runOne(deferred)?.catch((error: unknown) => this.report(error, 'cleanup'));
    else if (this.#first === undefined && this.#cleanups === undefined) this.#first = deferred;
    else (this.#cleanups ??= []).push(deferred);
  }

  /** The next deferred cleanup, last in first out. */
  #pop(): Deferred | undefined {
    const next = this.#cleanups?.pop();
    if (next !== undefined) return next;
    const first = this.#first;
    this.#first = undefined;
    return first;
  }

  abort(reason: AbortReason): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = new CloseguardError(abortCodes[reason], abortMessages[reason]);
    this.#controller?.abort(this.#abortReason);
    const callbacks = this.#onAbort;
    this.#onAbort = undefined;
    for (const callback of callbacks ?? []) callback();
    // Shutdown gave up waiting for this request: cut its response (a stream stops, the framework's
    // 'close' follows), so the handler is given up on abortGrace later at the latest.
    if (reason === 'shutdown' && this.response !== undefined && this.response.destroyed !== true) this.response.destroy();
  }

  /**
   * Calls `callback` once if the scope aborts; cheaper than an 'abort' listener on the signal
   * (an EventTarget listener costs about a microsecond on Node 20). Nothing to remove: the list
   * goes with the scope.
   */
  whenAborted(callback: () => void): void {
    if (this.#abortReason !== undefined) callback();
    else (this.#onAbort ??= []).push(callback);
  }

  close(reason: CloseReason): Promise<void> {
    if (this.#closing === RUNNING) return this.#reentered(); // called by one of its own cleanups
    if (this.#closing !== undefined) return this.#closing;
    this.#closeReason = reason;
    this.#closing = RUNNING; // closed from now on: a late defer() runs at once
    if (reason !== 'complete' && reason !== 'error') this.abort(reason);
    this.#closing = this.#runCleanups();
    return this.#closing;
  }

  /**
   * What close() returns while its cleanups are running synchronously: by the next turn the real
   * close promise is stored, and this one settles with it.
   */
  #reentered(): Promise<void> {
    return CLOSED.then(() => this.#closing);
  }

  report(error: unknown, phase: ErrorPhase): void {
    signals.requestException.publish({ scope: this, error, phase });
    try {
      this.#logger.error(`closeguard: ${phase} error in ${this.method} ${this.url}`, error);
    } catch {
      // A logger that throws must not stop cleanup.
    }
  }

  /** Makes `currentScope()` find this scope from now on (middleware that needs it turns it on). */
  enableAsyncContext(): void {
    this.#asyncContext = true;
    asyncContextUsed = true;
  }

  /**
   * `fn`, made to run inside this scope wherever it is called from (for a framework hook that
   * continues the request from another async context, such as the end of a request body).
   */
  bind<A extends unknown[], T>(fn: (...args: A) => T): (...args: A) => T {
    return (...args) => (this.#asyncContext ? storage.run(this, fn, ...args) : fn(...args));
  }

  /** Runs `fn` so that `currentScope()` inside it (and its async continuations) is this scope. */
  run<T>(fn: () => T): T {
    return this.#asyncContext ? storage.run(this, fn) : fn();
  }

  /**
   * Runs the cleanups, last in first out, each isolated from the others' errors; synchronously
   * until one returns a promise. The usual last one, the guard's leases, returns a promise that
   * never rejects: with nobody listening for requestFinished, close() returns it as it is.
   */
  #runCleanups(): Promise<void> {
    for (let deferred = this.#pop(); deferred !== undefined; deferred = this.#pop()) {
      const running = this.#runOne(deferred);
      if (running === undefined) continue;
      const last = this.#first === undefined && !this.#cleanups?.length;
      if (last && typeof deferred !== 'function' && !signals.requestFinished.hasSubscribers) return running as Promise<void>;
      return this.#awaitCleanups(running);
    }
    this.#finished();
    return CLOSED;
  }

  async #awaitCleanups(first: Promise<unknown>): Promise<void> {
    for (let running: Promise<unknown> | undefined = first; running !== undefined; ) {
      try {
        await running;
      } catch (error) {
        this.report(error, 'cleanup');
      }
      running = undefined;
      for (let deferred = this.#pop(); deferred !== undefined; deferred = this.#pop()) {
        running = this.#runOne(deferred);
        if (running !== undefined) break;
      }
    }
    this.#finished();
  }

  #finished(): void {
    if (!signals.requestFinished.hasSubscribers) return;
    signals.requestFinished.publish({
      scope: this,
      method: this.method,
      url: this.url,
      route: this.route,
      reason: this.#closeReason!,
      durationMs: performance.now() - this.startedAt,
    });
  }

  /**
   * Runs one cleanup and reports what it throws; returns what it returned when that is a promise
   * (or another thenable), for the caller to await and report a rejection (awaited directly, it
   * costs no promise of its own).
   */
  #runOne(deferred: Deferred): Promise<unknown> | undefined {
    let result: unknown;
    try {
      if (typeof deferred !== 'function') return deferred.finish();
      result = deferred();
    } catch (error) {
      this.report(error, 'cleanup');
      return undefined;
    }
    if (!isThenable(result)) return undefined;
    return result instanceof Promise ? result : Promise.resolve(result);
  }
}

/** A request scope as hosts create it: a `RequestScope` that can also run code inside itself. */
export type HostScope = RequestScope & {
  readonly aborted: boolean;
  run<T>(fn: () => T): T;
  bind<A extends unknown[], T>(fn: (...args: A) => T): (...args: A) => T;
  enableAsyncContext(): void;
  whenAborted(callback: () => void): void;
  deferFinish(finisher: Finisher): void;
  response: Destroyable | undefined;
  [leasesSlot]: unknown;
};

/**
 * Creates the scope of a request that just entered, and fires `requestStarted`.
 * Hosts call this; apps get the scope as `env.scope`.
 */
export function createScope(options: ScopeOptions): HostScope {
  const scope = new Scope(options);
  if (signals.requestStarted.hasSubscribers) signals.requestStarted.publish({ scope, method: scope.method, url: scope.url });
  return scope;
}

/** The scope in the current async context, without the check of `currentScope()`. */
export function activeScope(): RequestScope | undefined {
  return asyncContextUsed ? storage.getStore() : undefined;
}

/**
 * The scope of the request whose async call tree this code runs in, or `undefined` outside one.
 * @throws CloseguardError `ERR_CLOSEGUARD_NO_ASYNC_CONTEXT` when no host or middleware was created
 * with `{ asyncContext: true }`.
 * @example
 * const scope = currentScope();
 * scope?.defer(() => file.close());
 */
export function currentScope(): RequestScope | undefined {
  if (!asyncContextUsed) {
    throw new CloseguardError('ERR_CLOSEGUARD_NO_ASYNC_CONTEXT', 'currentScope() was called');
  }
  return storage.getStore();
}
