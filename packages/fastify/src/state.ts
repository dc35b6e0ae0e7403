import type { FastifyReply } from 'fastify';
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
 * its response is over. What Fastify tells: its handler channel (handler-channel.ts) and hooks.
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
