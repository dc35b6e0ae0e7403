import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { HostRequest, type HostRequestOptions } from '@closeguard/core/host';

/** Where a request's state lives: a symbol property on the native request, not a WeakMap. */
export const kState: unique symbol = Symbol('closeguard.fastify.request') as never;

/** A native request that may carry closeguard's state. */
export type Carrier = IncomingMessage & { [kState]?: RequestState };

const NOT_STARTED = 0;
const RUNNING = 1;
const AWAITING_SEND = 2;
const DONE = 3;
/** Served by the gateway, which reports its own end (`finished()`). */
const ADOPTED = 4;

/** What the plugin and the gateway know when a request enters: core's, and the request's reply. */
export interface RequestStateOptions extends HostRequestOptions {
  reply: FastifyReply;
}

/**
 * One Fastify request as closeguard follows it. "Settled" for HostRequest means: the handler is
 * done (its promise settled; for callback handlers, `reply.send` ran onSend; for requests that
 * never reached a handler, their reply went out; for a reply answered through `reply.raw`, its
 * response is over) and every stream payload sent for the request has closed (a cursor streamed
 * by `reply.send(stream)` still uses the connection until then).
 */
export class RequestState extends HostRequest {
  readonly asyncContext: boolean;
  readonly #reply: FastifyReply;
  #handler = NOT_STARTED;
  #replied = false;
  #holds = 0;

  constructor(options: RequestStateOptions) {
    super(options);
    this.asyncContext = options.asyncContext === true;
    this.#reply = options.reply;
  }

  /** Fastify is about to run the route's handler (its handler channel's `start`). */
  handlerStarted(route: string | undefined): void {
    if (this.#handler !== NOT_STARTED) return;
    this.scope.route = route;
    this.#handler = RUNNING;
  }

  /**
   * The handler returned something that is not a promise, or threw (pass its error). One that
   * returned nothing and has not replied is a callback handler: done at its `reply.send`.
   */
  handlerReturned(error: unknown): void {
    if (this.#handler !== RUNNING) return;
    if (error !== undefined || this.#reply.sent) this.finished(error);
    else this.awaitSend();
  }

  /** The promise the handler returned settled; pass its error if it rejected. */
  handlerSettled(error: unknown): void {
    if (this.#handler === RUNNING) this.finished(error);
  }

  /** The gateway serves the request: it reports the end itself, with `finished()`. */
  adopt(): void {
    this.#handler = ADOPTED;
  }

  /** The handler is done; pass its error if it failed. Later calls only record an error. */
  finished(error?: unknown): void {
    if (error !== undefined) this.failed();
    if (this.#handler === DONE) return;
    this.#handler = DONE;
    if (this.#holds === 0) this.settled();
  }

  /** A callback-style handler returned: it is done when its reply goes out (onSend). */
  awaitSend(): void {
    if (this.#replied) this.finished();
    else this.#handler = AWAITING_SEND;
  }

  /** onSend ran: the end of a callback handler, or of a request answered before any handler. */
  replied(): void {
    this.#replied = true;
    if (this.#handler === NOT_STARTED || this.#handler === AWAITING_SEND) this.finished();
  }

  /** Something (a stream payload, a gateway body) uses the request until `release()`. */
  hold(): void {
    this.#holds++;
  }

  release(): void {
    if (--this.#holds === 0 && this.#handler === DONE) this.settled();
  }

  /**
   * The response is over. A response answered through `reply.raw` without Fastify's reply (a
   * hijacked reply: proxies, event streams, upgrades) ends its request there: Fastify runs no
   * later hook or handler for it, nor follows the promise of the handler that hijacked it.
   */
  override over(finished: boolean): void {
    if (!this.#replied && this.#reply.sent && this.#handler !== ADOPTED) this.finished();
    super.over(finished);
  }
}

/**
 * The response's one terminal event: `'close'`, once per response, after `'finish'` on success
 * and alone on a hang-up (Fastify's onResponse misses hang-ups, and onRequestAbort misses them
 * once a POST body was read). A shared function with `this` = the response: no closure per request.
 */
export function onResponseClose(this: ServerResponse): void {
  (this.req as Carrier)[kState]?.over(this.writableFinished);
}

/**
 * Watches `res` for its end; a response already closed (a hook that awaited) is over now. A
 * response queued behind a pipelined one has no socket yet and gets no `'close'` if the socket
 * goes first: for those only, the socket's `'close'` ends it too.
 */
export function watchResponse(state: RequestState, res: ServerResponse): void {
  if (res.closed) {
    state.over(res.writableFinished);
    return;
  }
  res.on('close', onResponseClose); // 'close' comes once per response: no once() wrapper to allocate
  const socket = res.socket ? undefined : res.req.socket;
  if (!socket) return;
  const onSocketClose = (): void => state.over(false);
  socket.once('close', onSocketClose);
  res.once('close', () => socket.off('close', onSocketClose));
}
