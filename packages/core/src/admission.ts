import { performance } from 'node:perf_hooks';
import { CloseguardError } from './errors.ts';

/** Counters of admission control, for `stats()`. */
export interface AdmissionStats {
  inFlight: number;
  queued: number;
  rejected: number;
}

type Waiter = { admit(): void; fail(error: Error): void; deadline: number; settled: boolean };

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
    if (this.#closed) throw this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server is no longer admitting requests');
    if (this.#inFlight < this.#limit) {
      this.#inFlight++;
      return true;
    }
    if (this.#queue.length >= this.#queueLimit) {
      throw this.#reject('ERR_CLOSEGUARD_OVERLOADED', `${this.#inFlight} requests in flight and ${this.#queue.length} queued`);
    }
    if (request.aborted ?? request.signal.aborted) return Promise.reject(request.signal.reason as Error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        admit: resolve,
        fail: reject,
        deadline: performance.now() + this.#queueTimeoutMs,
        settled: false,
      };
      this.#queue.push(waiter);
      this.#timer ??= this.#arm();
      const onAbort = (): void => {
        if (waiter.settled) return;
        this.#remove(waiter);
        this.#settle(waiter).fail(request.signal.reason as Error);
      };
      if (typeof request.whenAborted === 'function') request.whenAborted(onAbort);
      else request.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives a place back; the longest-waiting request takes it. */
  leave(): void {
    const next = this.#queue.shift();
    if (next) this.#settle(next).admit();
    else this.#inFlight--;
  }

  /** Stops admitting: queued requests get 503 now, new ones at once. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#queue.splice(0)) this.#settle(waiter).fail(this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server stopped admitting requests'));
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
   * Marks a waiter as settled. The queue's timer stays armed when the queue empties: under load
   * the queue empties and refills with nearly every request, and a timer cleared and re-armed each
   * time costs more than one that fires idle once per `queueTimeout` (it then re-arms only if a
   * waiter is queued). A waiter queued later has a later deadline, so an armed timer is never late.
   */
  #settle(waiter: Waiter): Waiter {
    waiter.settled = true;
    return waiter;
  }

  /** One timer for the queue: it fires at the oldest waiter's deadline (deadlines come in order). */
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
      this.#settle(waiter).fail(this.#reject('ERR_CLOSEGUARD_QUEUE_TIMEOUT', `the request waited ${this.#queueTimeoutMs} ms`));
    }
    this.#timer ??= this.#arm();
  }

  #reject(code: 'ERR_CLOSEGUARD_OVERLOADED' | 'ERR_CLOSEGUARD_QUEUE_TIMEOUT' | 'ERR_CLOSEGUARD_SHUTDOWN', what: string): CloseguardError {
    this.#rejected++;
    return new CloseguardError(code, what, { retryAfter: 1 });
  }
}
