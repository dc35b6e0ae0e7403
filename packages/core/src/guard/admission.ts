import { performance } from 'node:perf_hooks';
import { CloseguardError } from '../contract/errors.ts';

/** Counters of admission control, for `stats()`. */
export interface AdmissionStats {
  inFlight: number;
  queued: number;
  rejected: number;
}

/**
 * A request waiting for a place: told once, admitted or refused, from another request's async
 * context (settle a promise there; run nothing of the request's own).
 */
export interface Waiting {
  admitted(): void;
  refused(error: Error): void;
}

/**
 * A queued request. It is told its turn from inside another request's end (or a loop over the
 * queue), in that one's async context: `waiting` must not run the request's code there, only
 * settle what the request awaits (the guard resolves or rejects the lease's promise, whose
 * reactions run in the context they were attached in), so no AsyncResource is kept per waiter.
 */
type Waiter = { waiting: Waiting; deadline: number; settled: boolean };

/** What admission needs of a request: how to tell it was aborted. */
export interface Abortable {
  readonly signal: AbortSignal;
  /** `signal.aborted`, when the request can tell without making its signal (a host scope). */
  readonly aborted?: boolean;
  /** The request's own abort callbacks (a host scope's), cheaper than an 'abort' listener. */
  whenAborted?(onAbort: () => void): void;
}

/**
 * Admits at most `limit` requests at once; up to `queueLimit` more wait, each at most
 * `queueTimeoutMs`. Shedding is synchronous: deferred work under overload starves Node's accept
 * loop (nodejs/node#57364). Waiting is cheap, since under overload every request waits: the queue
 * is first in, first out with one timeout for all, so one timer armed for the oldest waiter serves
 * the whole queue.
 */
export class Admission {
  readonly #limit: number;
  readonly #queueLimit: number;
  readonly #queueTimeoutMs: number;
  readonly #queue: Waiter[] = [];
  #inFlight = 0;
  #rejected = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(limit: number, queueLimit: number, queueTimeoutMs: number) {
    this.#limit = limit;
    this.#queueLimit = queueLimit;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  /**
   * Takes a place: `true` when admitted at once, a promise when queued, which rejects with the
   * abort reason when the request is aborted while it waits.
   * @throws CloseguardError ERR_CLOSEGUARD_OVERLOADED (queue full) or ERR_CLOSEGUARD_SHUTDOWN, synchronously.
   */
  enter(request: Abortable): true | Promise<void> {
    if (this.tryEnter()) return true;
    return new Promise((resolve, reject) => this.queue(request, { admitted: resolve, refused: reject }));
  }

  /**
   * Takes a place if there is one (`true`); `false` when the request must `queue()` for one, which
   * it must do at once.
   * @throws CloseguardError ERR_CLOSEGUARD_OVERLOADED (queue full) or ERR_CLOSEGUARD_SHUTDOWN, synchronously.
   */
  tryEnter(): boolean {
    this.ensureOpen();
    if (this.#inFlight < this.#limit) {
      this.#inFlight++;
      return true;
    }
    if (this.#queue.length >= this.#queueLimit) {
      throw this.#reject('ERR_CLOSEGUARD_OVERLOADED', `${this.#inFlight} requests in flight and ${this.#queue.length} queued`);
    }
    return false;
  }

  /**
   * Queues a request `tryEnter()` found no place for: `waiting` is admitted when a place comes
   * free, or refused (queue timeout, shutdown, or the request aborted: at once if it already was).
   */
  queue(request: Abortable, waiting: Waiting): void {
    if (request.aborted ?? request.signal.aborted) {
      waiting.refused(request.signal.reason as Error);
      return;
    }
    const waiter: Waiter = { waiting, deadline: performance.now() + this.#queueTimeoutMs, settled: false };
    this.#queue.push(waiter);
    this.#timer ??= this.#arm();
    const onAbort = (): void => {
      if (waiter.settled) return;
      this.#remove(waiter);
      refuse(waiter, request.signal.reason as Error);
    };
    if (typeof request.whenAborted === 'function') request.whenAborted(onAbort);
    else request.signal.addEventListener('abort', onAbort, { once: true });
  }

  /**
   * Whether requests are still let in.
   * @throws CloseguardError ERR_CLOSEGUARD_SHUTDOWN, synchronously, once `close()` was called.
   */
  ensureOpen(): void {
    if (this.#closed) throw this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server is no longer admitting requests');
  }

  /** Gives a place back; the longest-waiting request takes it. */
  leave(): void {
    const next = this.#queue.shift();
    if (next) admit(next);
    else this.#inFlight--;
  }

  /** Stops admitting: queued requests get 503 now, new ones at once. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#queue.splice(0)) {
      const error = this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server stopped admitting requests');
      refuse(waiter, error);
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  stats(): AdmissionStats {
    return { inFlight: this.#inFlight, queued: this.#queue.length, rejected: this.#rejected };
  }

  #remove(waiter: Waiter): void {
    const index = this.#queue.indexOf(waiter);
    if (index !== -1) this.#queue.splice(index, 1);
  }

  /**
   * One timer for the queue: it fires at the oldest waiter's deadline (deadlines come in order).
   * It stays armed when the queue empties: under load the queue empties and refills with nearly
   * every request, and a timer cleared and re-armed each time costs more than one that fires idle
   * once per `queueTimeout` (it then re-arms only if a waiter is queued). A waiter queued later has
   * a later deadline, so an armed timer is never late.
   */
  #arm(): NodeJS.Timeout | undefined {
    const oldest = this.#queue[0];
    if (oldest === undefined) return undefined;
    const timer = setTimeout(() => this.#expire(), Math.max(0, oldest.deadline - performance.now()));
    timer.unref();
    return timer;
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.deadline <= now) {
      const waiter = this.#queue.shift()!;
      const error = this.#reject('ERR_CLOSEGUARD_QUEUE_TIMEOUT', `the request waited ${this.#queueTimeoutMs} ms`);
      refuse(waiter, error);
    }
    this.#timer ??= this.#arm();
  }

  #reject(code: 'ERR_CLOSEGUARD_OVERLOADED' | 'ERR_CLOSEGUARD_QUEUE_TIMEOUT' | 'ERR_CLOSEGUARD_SHUTDOWN', what: string): CloseguardError {
    this.#rejected++;
    return new CloseguardError(code, what, { retryAfter: 1 });
  }
}

/** Tells a waiter its turn came. */
function admit(waiter: Waiter): void {
  waiter.settled = true;
  try {
    waiter.waiting.admitted();
  } catch (error) {
    rethrowAlone(error);
  }
}

/** Tells a waiter it was refused (queue timeout, shutdown, its request aborted). */
function refuse(waiter: Waiter, error: Error): void {
  waiter.settled = true;
  try {
    waiter.waiting.refused(error);
  } catch (thrown) {
    rethrowAlone(thrown);
  }
}

/**
 * What a waiter throws must stop neither the request whose end let it in nor the loop over the
 * queue: it is rethrown on its own, as an uncaught exception.
 */
function rethrowAlone(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
