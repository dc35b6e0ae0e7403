import { tracingChannel } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Exchange } from '@closeguard/node';

/**
 * A request served by Express routes behind `connectionClosing()`. Express tells nobody when its
 * handler chain settled, so this puts the signal together:
 * - router ≥ 2.3's `express.router.request` TracingChannel: which layers returned a promise, when
 *   each settled, and which layer ran last (the one the request is in now);
 * - the response: ended when it is over, or, after a hang-up, its `'prefinish'`, the one event a
 *   late handler's `send`/`json`/`end` still emits;
 * - router's own bookkeeping: once the outermost router ran off the end of its stack (into
 *   finalhandler, which may destroy a response whose headers went out), `req.next` is restored to
 *   what it was before, nothing.
 * The chain is settled when no promise layer is pending and either the response was ended, the
 * chain ran off its end, or the last layer to run was a promise that settled (an async handler
 * that piped a stream and returned).
 */
export class ExpressExchange extends Exchange {
  /** Promise-returning layers of this request still running. */
  pending = 0;
  /** The tracing context of the layer that started last. */
  current: object | undefined = undefined;
  /** Whether the last layer to start returned a promise, and it settled. */
  lastSettled = false;
  /** The router route (`req.route`) last named in the scopes. */
  route: unknown = undefined;

  /** Settles the request once nothing of its handler chain can still run. */
  check(): void {
    if (this.chainSettled) return;
    const res = this.res as ServerResponse;
    if (this.pending === 0 && (this.lastSettled || res.writableEnded || ranOff(res.req))) this.settled();
  }

  /** The response is over (its 'close'): a chain that is not done yet may still end it later. */
  override over(finished: boolean): void {
    if (this.isOver) return;
    this.check();
    // After a hang-up a late send()/end() emits nothing but 'prefinish': only then is it worth a listener.
    if (!this.chainSettled) this.res.on('prefinish', onResponsePrefinish);
    super.over(finished);
  }
}

/**
 * Whether the outermost router ran off the end of its stack: router sets `req.next` when it
 * starts handling a request and restores the value it found (none, for a request straight from
 * the server) when it hands over to its final handler.
 */
function ranOff(req: IncomingMessage & { next?: unknown }): boolean {
  return req.next === undefined;
}

/** Where a layer's context remembers the request that counted it (a symbol: the context is router's, shared with other subscribers). */
const countedBy: unique symbol = Symbol('closeguard.express.countedBy') as never;

/** What router 2.3 publishes for each layer (`lib/layer.js`, `lib/tracing.js`). */
interface LayerContext {
  req: IncomingMessage & { next?: unknown; route?: { path: unknown }; baseUrl?: string };
  result?: unknown;
  error?: unknown;
  /** The request that counted this layer as pending: a layer that began before the request had a guard is not counted. */
  [countedBy]?: ExpressExchange;
}

function exchangeOf(req: IncomingMessage): ExpressExchange | undefined {
  const exchange = Exchange.of(req);
  return exchange instanceof ExpressExchange ? exchange : undefined;
}

let watching = false;

/**
 * Subscribes, once per process, to router's layer tracing. Subscribing makes router allocate a
 * context per layer. On router < 2.3 nothing is published: only an ended response settles a request.
 */
export function watchLayers(): void {
  if (watching) return;
  watching = true;
  const channel = tracingChannel<unknown, LayerContext>('express.router.request');
  channel.start.subscribe(onStart as (message: unknown) => void);
  channel.end.subscribe(onEnd as (message: unknown) => void);
  channel.asyncEnd.subscribe(onAsyncEnd as (message: unknown) => void);
  channel.error.subscribe(onError as (message: unknown) => void);
}

function onStart(ctx: LayerContext): void {
  const exchange = exchangeOf(ctx.req);
  if (exchange === undefined) return;
  exchange.current = ctx;
  exchange.lastSettled = false;
  // A route's layer: router set req.route (and req.baseUrl is its mount path, in a sub-app or router).
  const { route } = ctx.req;
  if (route !== undefined && route !== exchange.route) {
    exchange.route = route;
    exchange.routed(`${ctx.req.baseUrl ?? ''}${String(route.path)}`);
  }
}

function onEnd(ctx: LayerContext): void {
  // A synchronous layer leaves `result` (or `error`) on the context; a promise layer neither, until it settles.
  if ('result' in ctx || 'error' in ctx) return;
  const exchange = exchangeOf(ctx.req);
  if (exchange === undefined) return;
  exchange.pending++;
  ctx[countedBy] = exchange;
}

function onAsyncEnd(ctx: LayerContext): void {
  // A promise layer that returned before the request met its guard (an async middleware that
  // awaited, then called next() into connectionClosing()) was never counted.
  const exchange = ctx[countedBy];
  if (exchange === undefined) return;
  exchange.pending--;
  if (ctx === exchange.current) {
    // A layer that called next() as a router's last runs on, in the parent's next layer, only a
    // turn later (router hands over with setImmediate): unless it ended the response, wait for that.
    if ((exchange.res as ServerResponse).writableEnded) exchange.lastSettled = true;
    else setImmediate(lastLayerSettled, exchange, ctx, ctx.req.next);
  }
  exchange.check();
}

/** A turn after the last layer settled: no later layer started, so the chain is done — unless a router is still handing over. */
function lastLayerSettled(exchange: ExpressExchange, ctx: LayerContext, next: unknown): void {
  if (exchange.chainSettled || exchange.current !== ctx) return;
  const now = ctx.req.next;
  if (now !== next) {
    setImmediate(lastLayerSettled, exchange, ctx, now); // handed to a parent router that may run off its end too
    return;
  }
  exchange.lastSettled = true;
  exchange.check();
}

function onError(ctx: LayerContext): void {
  exchangeOf(ctx.req)?.failed();
}

/** `res` 'prefinish': a late handler ended the response after it was over (nothing else is emitted then). */
function onResponsePrefinish(this: ServerResponse): void {
  exchangeOf(this.req)?.check();
}
