import { CloseguardError } from './errors.ts';

/** Counters of admission control, for `stats()`. */
export interface AdmissionStats {
  inFlight: number;
  queued: number;
  rejected: number;
}

type Waiter = { admit(): void; fail(error: Error): void; timer: NodeJS.Timeout };

/**
 * Admits at most `limit` requests at once; up to `queueLimit` more wait, each at most
 * `queueTimeoutMs`. Shedding is synchronous: deferred work under overload starves Node's accept
 * loop (nodejs/node#57364).
 */
export class Admission {
  readonly #limit: number;
  readonly #queueLimit: number;
  readonly #queueTimeoutMs: number;
  readonly #queue: Waiter[] = [];
  #inFlight = 0;
  #rejected = 0;
  #closed = false;

  constructor(limit: number, queueLimit: number, queueTimeoutMs: number) {
    this.#limit = limit;
    this.#queueLimit = queueLimit;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  /**
   * Takes a place: `true` when admitted at once, a promise when queued.
   * @throws CloseguardError ERR_CLOSEGUARD_OVERLOADED (queue full) or ERR_CLOSEGUARD_SHUTDOWN, synchronously.
   */
  enter(signal: AbortSignal): true | Promise<void> {
    if (this.#closed) throw this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server is no longer admitting requests');
    if (this.#inFlight < this.#limit) {
      this.#inFlight++;
      return true;
    }
    if (this.#queue.length >= this.#queueLimit) {
      throw this.#reject('ERR_CLOSEGUARD_OVERLOADED', `${this.#inFlight} requests in flight and ${this.#queue.length} queued`);
    }
    return new Promise((resolve, reject) => {
      const leave = (error: Error): void => {
        this.#remove(waiter);
        signal.removeEventListener('abort', onAbort);
        reject(error);
      };
      const onAbort = (): void => leave(signal.reason as Error);
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(waiter.timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: leave,
        timer: setTimeout(() => leave(this.#reject('ERR_CLOSEGUARD_QUEUE_TIMEOUT', `the request waited ${this.#queueTimeoutMs} ms`)), this.#queueTimeoutMs),
      };
      this.#queue.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives a place back; the longest-waiting request takes it. */
  leave(): void {
    const next = this.#queue.shift();
    if (next) next.admit();
    else this.#inFlight--;
  }

  /** Stops admitting: queued requests get 503 now, new ones at once. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#queue]) waiter.fail(this.#reject('ERR_CLOSEGUARD_SHUTDOWN', 'the server stopped admitting requests'));
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  stats(): AdmissionStats {
    return { inFlight: this.#inFlight, queued: this.#queue.length, rejected: this.#rejected };
  }

  #remove(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    const index = this.#queue.indexOf(waiter);
    if (index !== -1) this.#queue.splice(index, 1);
  }

  #reject(code: 'ERR_CLOSEGUARD_OVERLOADED' | 'ERR_CLOSEGUARD_QUEUE_TIMEOUT' | 'ERR_CLOSEGUARD_SHUTDOWN', what: string): CloseguardError {
    this.#rejected++;
    return new CloseguardError(code, what, { retryAfter: 1 });
  }
}
