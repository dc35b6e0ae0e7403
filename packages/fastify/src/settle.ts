import { tracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ConnectionClosingMiddleware } from '@closeguard/core';
import { Exchange, type ExchangeOptions, type NodeRequest, type NodeResponse } from '@closeguard/node';

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
  /** Where the route's handler is; 'done' also for a request a gateway serves (it settles it itself). */
  #handler: 'not started' | 'running' | 'awaiting send' | 'done' = 'not started';
  #replied = false;

  constructor(req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware | undefined, options: FastifyExchangeOptions) {
    super(req, res, guard, options);
    this.#reply = options.reply;
  }

  /** Fastify is about to run the route's handler (its handler channel's `start`). */
  handlerStarted(route: string | undefined): void {
    if (this.#handler !== 'not started') return;
    this.scope.route = route;
    this.#handler = 'running';
  }

  /**
   * The handler returned something that is not a promise, or threw (pass its error). One that
   * returned nothing and has not replied is a callback handler: done at its `reply.send`.
   */
  handlerReturned(error: unknown): void {
    if (this.#handler !== 'running') return;
    if (error !== undefined || this.#reply.sent || this.#replied) this.#done(error);
    else this.#handler = 'awaiting send';
  }

  /** The promise the handler returned settled; pass its error if it rejected. */
  handlerSettled(error: unknown): void {
    if (this.#handler === 'running') this.#done(error);
  }

  /** A gateway serves the request: it settles it itself. */
  adopt(): void {
    this.#handler = 'done';
  }

  /** onSend ran: the end of a callback handler, or of a request answered before any handler. */
  replied(): void {
    this.#replied = true;
    if (this.#handler === 'not started' || this.#handler === 'awaiting send') this.#done(undefined);
  }

  #done(error: unknown): void {
    this.#handler = 'done';
    this.settled(error);
  }

  /**
   * The response is over. A response answered through `reply.raw` without Fastify's reply (a
   * hijacked reply: proxies, event streams, upgrades) ends its request there: Fastify runs no
   * later hook or handler for it, nor follows the promise of the handler that hijacked it.
   */
  override over(finished: boolean): void {
    if (!this.#replied && this.#reply.sent && this.#handler !== 'done') this.#done(undefined);
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

/** Fastify's handler channel, and what follows it. */
const handlerChannel = tracingChannel<unknown, HandlerMessage>('fastify.request.handler');
// Node subscribes only the events given (asyncStart and error are not followed); its types ask for all five.
const followers = { start: onStart, end: onEnd, asyncEnd: onAsyncEnd } as unknown as TracingChannelSubscribers<HandlerMessage>;
let following = 0;

/**
 * Follows route handlers through Fastify's handler channel (not by wrapping `routeOptions.handler`,
 * which the app's own onRoute hooks must see as declared) while at least one instance asks to.
 * Every Fastify instance of the process publishes on it then; those without closeguard are skipped.
 * @returns what stops following, for the instance's onClose (call it once).
 */
export function followHandlers(): () => void {
  if (following++ === 0) handlerChannel.subscribe(followers);
  return () => {
    if (--following === 0) handlerChannel.unsubscribe(followers);
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

function onStart(message: HandlerMessage): void {
  stateOf(message)?.handlerStarted(message.route?.url);
}

function onEnd(message: HandlerMessage): void {
  if (!message.async) stateOf(message)?.handlerReturned(message.error);
}

function onAsyncEnd(message: HandlerMessage): void {
  stateOf(message)?.handlerSettled(message.error);
}
