import { DEFAULT_ABORT_GRACE_MS } from './driver.ts';
import { closeReason } from './close-reason.ts';
import { createScope, type HostScope, type ScopeOptions } from './scope.ts';

/** What an adapter knows when a request enters a framework. */
export interface HostRequestOptions extends ScopeOptions {
  /** After a hang-up, how long the handler may keep running before the scope closes with 'timeout'. Default 5000. */
  abortGrace?: number | undefined;
  /**
   * The request's body is a gateway app's, driven by `drive()` with the same `abortGrace`: the
   * driver bounds its own waits and reports how the body ended (`ERR_CLOSEGUARD_CLOSE_TIMEOUT`,
   * close() called), so the request gives up only a margin later, as a backstop. Default false.
   */
  driven?: boolean | undefined;
}

/** How much later than `drive()` a driven request gives up: a timer armed later by this much always fires after the driver's. */
const BACKSTOP_MARGIN_MS = 1_000;

/**
 * One request served by a framework's own routes. The adapter reports two independent events —
 * the handler chain settled (`settled()`), and the response is over (`over(finished)`, from the
 * response's one `'close'`) — and the scope closes once both have happened, so a connection a
 * streamed body or a late handler still uses is never given back under it.
 *
 * A handler that has not settled `abortGrace` ms after the response is over (a hang-up, or a
 * framework that answered on its own, like Fastify's `handlerTimeout`) is given up on: the scope
 * closes with 'timeout' and the request's connections are destroyed, not released.
 * @example
 * const request = new HostRequest({ method: req.method, url: req.url });
 * res.once('close', () => request.over(res.writableFinished));
 * handler().then(() => request.settled(), (error) => request.settled(error));
 */
export class HostRequest {
  readonly scope: HostScope;
  readonly #graceMs: number;
  #settled = false;
  #failed = false;
  #finished: boolean | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HostRequestOptions) {
    this.scope = createScope(options);
    this.#graceMs = (options.abortGrace ?? DEFAULT_ABORT_GRACE_MS) + (options.driven === true ? BACKSTOP_MARGIN_MS : 0);
  }

  /** The handler chain finished; pass its error if it failed (the request then ends 'error'). */
  settled(error?: unknown): void {
    if (error !== undefined) this.#failed = true;
    if (this.#settled) return;
    this.#settled = true;
    if (this.#finished !== undefined) this.#close();
  }

  /** Marks the request as failed without settling it (an error the framework answered for). */
  failed(): void {
    this.#failed = true;
  }

  /** The response is over: sent in full (`finished`), or the client left first (the scope aborts at once). */
  over(finished: boolean): void {
    if (this.#finished !== undefined) return;
    this.#finished = finished;
    if (!finished) this.scope.abort('aborted');
    if (this.#settled) {
      this.#close();
      return;
    }
    this.#timer = setTimeout(() => void this.scope.close('timeout'), this.#graceMs);
    this.#timer.unref();
  }

  /** Whether the request was marked failed: settled with an error, or `failed()`. */
  get hasFailed(): boolean {
    return this.#failed;
  }

  /** Whether the response is over (see `over()`). */
  get isOver(): boolean {
    return this.#finished !== undefined;
  }

  #close(): void {
    clearTimeout(this.#timer);
    void this.scope.close(closeReason(this.#finished === true, this.#failed));
  }
}
