import { isThenable } from '../contract/checks.ts';
import { CloseguardError, ContractError } from '../contract/errors.ts';
import type { HostScope } from './scope.ts';
import type { Chunk, GatewayBody } from '../contract/types.ts';

/** How a body's life ended, as the driver saw it. */
export type BodyOutcome = 'complete' | 'error' | 'aborted' | 'timeout';

type Step = IteratorResult<unknown> | PromiseLike<IteratorResult<unknown>>;

/**
 * Walks one gateway body and ends it exactly once: `return()` on an iterator stopped early (so a
 * generator's `finally` runs), then the body's `close()`. Each step is isolated and bounded by
 * `graceMs`; a `next()` still pending at the end is waited for at most that long.
 */
export class BodyCursor {
  readonly #body: GatewayBody;
  readonly #iterator: Iterator<unknown> | AsyncIterator<unknown>;
  readonly #scope: HostScope;
  readonly #graceMs: number;
  #pending: Promise<unknown> | undefined;
  #exhausted = false;
  #finishing: Promise<BodyOutcome> | undefined;

  constructor(body: GatewayBody, scope: HostScope, graceMs: number) {
    this.#body = body;
    this.#scope = scope;
    this.#graceMs = graceMs;
    const asyncIterator = (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator];
    this.#iterator = asyncIterator
      ? asyncIterator.call(body)
      : (body as Iterable<Chunk>)[Symbol.iterator]();
  }

  /** Whether the iterator ended by itself (done, or threw). */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  get finished(): boolean {
    return this.#finishing !== undefined;
  }

  /** Asks for the next value: a result, or a promise of one for async iterators. Throws through. */
  next(): Step {
    if (this.#finishing) {
      throw new ContractError('ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE', 'the driver pulled after close()');
    }
    let step: Step;
    try {
      step = this.#scope.run(() => this.#iterator.next());
    } catch (error) {
      this.#exhausted = true;
      throw error;
    }
    if (!isThenable(step)) {
      if (step.done) this.#exhausted = true;
      return step;
    }
    const tracked = Promise.resolve(step).then(
      (result) => {
        this.#pending = undefined;
        if (result.done) this.#exhausted = true;
        return result;
      },
      (error: unknown) => {
        this.#pending = undefined;
        this.#exhausted = true;
        throw error;
      },
    );
    this.#pending = tracked;
    return tracked;
  }

  /** Ends the iterator and closes the body, once; later calls return the same promise. */
  finish(reason: Exclude<BodyOutcome, 'timeout'>): Promise<BodyOutcome> {
    this.#finishing ??= this.#end(reason);
    return this.#finishing;
  }

  async #end(reason: Exclude<BodyOutcome, 'timeout'>): Promise<BodyOutcome> {
    const deadline = Date.now() + this.#graceMs;
    let outcome: BodyOutcome = reason;
    if (this.#pending && !(await settlesBy(this.#pending, deadline))) {
      // return() cannot interrupt a generator paused at an await: give up waiting, report it.
      outcome = 'timeout';
      this.#scope.report(
        new CloseguardError('ERR_CLOSEGUARD_CLOSE_TIMEOUT', `the body's next() was still pending after ${this.#graceMs} ms`),
        'return',
      );
    }
    // After a timeout, return() is queued behind the pending next(): ask for it, don't wait.
    const returnBy = outcome === 'timeout' ? 0 : deadline;
    if (!this.#exhausted && typeof this.#iterator.return === 'function') {
      await this.#step(() => this.#iterator.return?.(), returnBy, 'return');
    }
    if (typeof this.#body.close === 'function') {
      await this.#step(() => this.#body.close?.(), deadline, 'close');
    }
    return outcome;
  }

  /** Runs one cleanup step, isolated: its error is reported, its wait bounded by `deadline`. */
  async #step(fn: () => unknown, deadline: number, phase: 'return' | 'close'): Promise<void> {
    let result: unknown;
    try {
      result = this.#scope.run(fn);
    } catch (error) {
      this.#scope.report(error, phase);
      return;
    }
    if (!isThenable(result)) return;
    const reported = Promise.resolve(result).catch((error: unknown) => this.#scope.report(error, phase));
    if (deadline === 0) return;
    if (!(await settlesBy(reported, deadline))) {
      this.#scope.report(
        new CloseguardError('ERR_CLOSEGUARD_CLOSE_TIMEOUT', `the body's ${phase}() did not settle in ${this.#graceMs} ms`),
        phase,
      );
    }
  }
}

/** Resolves true when `promise` settles before `deadline` (Date.now() ms), false otherwise. */
function settlesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.race([settled, Promise.resolve(false)]);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, remaining, false);
  });
  return Promise.race([settled, expired]).finally(() => clearTimeout(timer));
}
