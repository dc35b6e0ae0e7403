import { Readable } from 'node:stream';
import { invalidChunk, isChunk } from '../contract/checks.ts';
import type { BodyCursor, BodyOutcome } from './cursor.ts';
import type { HostScope } from './scope.ts';
import { signals } from './signals.ts';
import type { Chunk } from '../contract/types.ts';

/**
 * A gateway body as a byte-mode Node `Readable`. It pulls one chunk per `_read()`, so it never
 * runs further ahead of the consumer than its high-water mark; when it ends, errors or is
 * destroyed, the cursor ends the iterator and closes the body exactly once.
 */
export class GatewayReadable extends Readable {
  readonly #cursor: BodyCursor;
  readonly #scope: HostScope;
  #first: Chunk | undefined;
  #ended: boolean;
  #failed = false;
  #pulling = false;
  #settle!: (outcome: Promise<BodyOutcome>) => void;
  /** Settles once the body is closed: how its life ended. */
  readonly outcome: Promise<BodyOutcome>;

  constructor(cursor: BodyCursor, scope: HostScope, first: Chunk | undefined, highWaterMark: number) {
    super({ highWaterMark });
    this.#cursor = cursor;
    this.#scope = scope;
    this.#first = first;
    this.#ended = first === undefined;
    this.outcome = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  override _read(): void {
    if (this.#first !== undefined) {
      const first = this.#first;
      this.#first = undefined;
      this.push(first);
    } else if (this.#ended) {
      this.push(null);
    } else if (!this.#pulling) {
      this.#pull();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const reason = this.#failed ? 'error' : this.#cursor.exhausted || this.#ended ? 'complete' : 'aborted';
    this.#settle(this.#cursor.finish(reason));
    callback(error);
  }

  #pull(): void {
    // Keep pulling while push() has room, so chunks reach the socket together (one writev, not
    // one per chunk); #pulling keeps a _read() from starting a second next() meanwhile.
    this.#pulling = true;
    for (;;) {
      let step;
      try {
        step = this.#cursor.next();
      } catch (error) {
        this.#pulling = false;
        this.#fail(error);
        return;
      }
      if (typeof (step as PromiseLike<unknown>).then === 'function') {
        (step as PromiseLike<IteratorResult<unknown>>).then(
          (result) => {
            if (this.#accept(result)) this.#pull();
            else this.#pulling = false;
          },
          (error: unknown) => {
            this.#pulling = false;
            this.#fail(error);
          },
        );
        return;
      }
      if (!this.#accept(step as IteratorResult<unknown>)) {
        this.#pulling = false;
        return;
      }
    }
  }

  /** Pushes one result; true when it was an empty chunk and another pull is needed. */
  #accept(result: IteratorResult<unknown>): boolean {
    if (this.destroyed) return false;
    if (result.done) {
      this.#ended = true;
      this.push(null);
      return false;
    }
    const chunk = result.value;
    if (!isChunk(chunk)) {
      this.#fail(invalidChunk(chunk));
      return false;
    }
    if (chunk.length === 0) return true;
    return this.push(chunk);
  }

  #fail(error: unknown): void {
    if (this.destroyed) return;
    this.#failed = true;
    signals.requestException.publish({ scope: this.#scope, error, phase: 'iterate' });
    this.destroy(error instanceof Error ? error : new Error(String(error), { cause: error }));
  }
}
