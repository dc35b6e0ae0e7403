import diagnostics from 'node:diagnostics_channel';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ConnectionClosingMiddleware } from '@closeguard/core';
import { Exchange, type ExchangeOptions, type NodeRequest, type NodeResponse } from '@closeguard/node';

const NOT_STARTED = 0;
const RUNNING = 1;
const AWAITING_SEND = 2;
const DONE = 3;
/** Served by the gateway, which settles it itself. */
const ADOPTED = 4;

/** What a Fastify request adds to the bridge's options: its reply. */
export interface FastifyExchangeOptions extends ExchangeOptions {
  reply: FastifyReply;
}

/**
 * One Fastify request on the bridge. Its handler chain has settled when the route's handler is
 * done: its promise settled; for a callback handler, `reply.send` ran onSend; for a request that
 * never reached a handler, its reply went out; for a reply answered through `reply.raw` (hijacked),
 * its response is over. What Fastify tells: its handler channel (below) and hooks.
 */
export class FastifyExchange extends Exchange {
  readonly #reply: FastifyReply;
  #handler = NOT_STARTED;
  #replied = false;

  constructor(req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware | undefined, options: FastifyExchangeOptions) {
    super(req, res, guard, options);
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
    if (error !== undefined || this.#reply.sent) this.#done(error);
    else if (this.#replied) this.#done(undefined);
    else this.#handler = AWAITING_SEND;
  }

  /** The promise the handler returned settled; pass its error if it rejected. */
  handlerSettled(error: unknown): void {
    if (this.#handler === RUNNING) this.#done(error);
  }

  /** A gateway serves the request: it settles it itself. */
  adopt(): void {
    this.#handler = ADOPTED;
  }

  /** onSend ran: the end of a callback handler, or of a request answered before any handler. */
  replied(): void {
    this.#replied = true;
    if (this.#handler === NOT_STARTED || this.#handler === AWAITING_SEND) this.#done(undefined);
  }

  #done(error: unknown): void {
    this.#handler = DONE;
    this.settled(error);
  }

  /**
   * The response is over. A response answered through `reply.raw` without Fastify's reply (a
   * hijacked reply: proxies, event streams, upgrades) ends its request there: Fastify runs no
   * later hook or handler for it, nor follows the promise of the handler that hijacked it.
   */
  override over(finished: boolean): void {
    if (!this.#replied && this.#reply.sent && this.#handler !== ADOPTED && this.#handler !== DONE) this.#done(undefined);
    super.over(finished);
  }
}

/**
 * What Fastify (5.0 and later) publishes around each route handler, on
 * `tracing:fastify.request.handler:*`: `start` before the handler runs, `end` once it returned or
 * threw, and `asyncEnd` once the promise it returned settled — unless the reply was hijacked by
 * then (RequestState ends those with their response). One object per request (Fastify's store).
 */
interface HandlerMessage {
  request?: FastifyRequest;
  reply?: FastifyReply;
  /** The handler returned a promise: `asyncEnd` follows. */
  async: boolean;
  route?: { url: string; method: string };
  error?: unknown;
}

const channels = {
  start: 'tracing:fastify.request.handler:start',
  end: 'tracing:fastify.request.handler:end',
  asyncEnd: 'tracing:fastify.request.handler:asyncEnd',
} as const;

let followers = 0;

/**
 * Follows route handlers through Fastify's handler channel (not by wrapping `routeOptions.handler`,
 * which the app's own onRoute hooks must see as declared) while at least one instance asks to.
 * Every Fastify instance of the process publishes on it then; those without closeguard are skipped.
 * @returns what stops following, for the instance's onClose; calling it again does nothing.
 */
export function followHandlers(): () => void {
  if (followers++ === 0) {
    diagnostics.subscribe(channels.start, onStart);
    diagnostics.subscribe(channels.end, onEnd);
    diagnostics.subscribe(channels.asyncEnd, onAsyncEnd);
  }
  let following = true;
  return () => {
    if (!following) return;
    following = false;
    if (--followers > 0) return;
    diagnostics.unsubscribe(channels.start, onStart);
    diagnostics.unsubscribe(channels.end, onEnd);
    diagnostics.unsubscribe(channels.asyncEnd, onAsyncEnd);
  };
}

/**
 * The request's state, or none: a request of an instance without closeguard, or a message that
 * does not carry a native request (a subscriber's throw would be an uncaught exception).
 */
function stateOf(message: HandlerMessage): FastifyExchange | undefined {
  const raw = message.request?.raw;
  const exchange = raw === undefined ? undefined : Exchange.of(raw);
  return exchange instanceof FastifyExchange ? exchange : undefined;
}

function onStart(message: unknown): void {
  stateOf(message as HandlerMessage)?.handlerStarted((message as HandlerMessage).route?.url);
}

function onEnd(message: unknown): void {
  const { async, error } = message as HandlerMessage;
  if (!async) stateOf(message as HandlerMessage)?.handlerReturned(error);
}

function onAsyncEnd(message: unknown): void {
  stateOf(message as HandlerMessage)?.handlerSettled((message as HandlerMessage).error);
}
