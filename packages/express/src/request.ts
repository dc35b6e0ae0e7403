import { tracingChannel } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ConnectionClosingMiddleware } from '@closeguard/core';
import { HostRequest, type HostRequestOptions, type HostScope } from '@closeguard/core/host';

/** Where a request's closeguard state lives on Express's `req` (a slot, not a WeakMap: every request pays for it). */
export const requestSlot: unique symbol = Symbol('closeguard.express.request') as never;

/** A Node request that may carry closeguard's state. */
export type SlottedRequest = IncomingMessage & { [requestSlot]?: ExpressRequest };

/** One guard's share of a request: the guard's scope (its leases, its admission) and the pools it has. */
export class GuardRequest extends HostRequest {
  readonly guard: ConnectionClosingMiddleware;
  readonly aliases: ReadonlySet<string>;

  constructor(guard: ConnectionClosingMiddleware, aliases: ReadonlySet<string>, options: HostRequestOptions) {
    super(options);
    this.guard = guard;
    this.aliases = aliases;
  }
}

/**
 * A request served by Express routes behind `connectionClosing()`: the first guard it passed,
 * plus the guards of the sub-apps and routers it entered after (`inner`), which settle and end
 * with it. Express tells nobody when its handler chain settled, so this puts the signal together:
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
export class ExpressRequest extends GuardRequest {
  readonly res: ServerResponse;
  /** Guards mounted further in that the request passed too, innermost last. */
  inner: GuardRequest[] | undefined = undefined;
  /** Promise-returning layers of this request still running. */
  pending = 0;
  /** The tracing context of the layer that started last. */
  current: object | undefined = undefined;
  /** Whether the last layer to start returned a promise, and it settled. */
  lastSettled = false;
  /** Whether the handler chain settled. */
  done = false;
  /** With `asyncContext`: the scope the request's events are emitted in (the innermost guard's), and Node's `emit`. */
  eventScope: HostScope | undefined = undefined;
  emit: IncomingMessage['emit'] | undefined = undefined;

  constructor(res: ServerResponse, guard: ConnectionClosingMiddleware, aliases: ReadonlySet<string>, options: HostRequestOptions) {
    super(guard, aliases, options);
    this.res = res;
  }

  /** Whether the request already passed `guard` (the same guard mounted twice steps aside). */
  passed(guard: ConnectionClosingMiddleware): boolean {
    return this.guard === guard || this.inner?.some((part) => part.guard === guard) === true;
  }

  /** Adds the share of a guard mounted further in. */
  join(part: GuardRequest): void {
    (this.inner ??= []).push(part);
  }

  /** The share of the guard mounted furthest in: a gateway app behind the guards runs in its scope. */
  get innermost(): GuardRequest {
    return this.inner === undefined ? this : this.inner[this.inner.length - 1]!;
  }

  /** The share whose pools `req.db(alias)` uses: the innermost guard that has the alias (the innermost one if none has). */
  shareFor(alias: string): GuardRequest {
    const { inner } = this;
    if (inner === undefined) return this;
    for (let i = inner.length - 1; i >= 0; i--) if (inner[i]!.aliases.has(alias)) return inner[i]!;
    return this.aliases.has(alias) ? this : this.innermost;
  }

  override settled(error?: unknown): void {
    this.done = true;
    if (this.inner !== undefined) for (let i = this.inner.length - 1; i >= 0; i--) this.inner[i]!.settled(error);
    super.settled(error);
  }

  override failed(): void {
    if (this.inner !== undefined) for (const part of this.inner) part.failed();
    super.failed();
  }

  override over(finished: boolean): void {
    if (this.inner !== undefined) for (let i = this.inner.length - 1; i >= 0; i--) this.inner[i]!.over(finished);
    super.over(finished);
  }

  /** Settles the request once nothing of its handler chain can still run. */
  check(): void {
    if (this.pending === 0 && (this.lastSettled || this.res.writableEnded || ranOff(this.res.req))) this.settled();
  }

  /** The response is over (its 'close'): a chain that is not done yet may still end it later. */
  responseOver(finished: boolean): void {
    if (this.isOver) return;
    this.check();
    // After a hang-up a late send()/end() emits nothing but 'prefinish': only then is it worth a listener.
    if (!this.done) this.res.on('prefinish', onResponsePrefinish);
    this.over(finished);
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

/** What router 2.3 publishes for each layer (`lib/layer.js`, `lib/tracing.js`). */
interface LayerContext {
  req: SlottedRequest;
  result?: unknown;
  error?: unknown;
  /** The request that counted this layer as pending: a layer that began before the request had a guard is not counted. */
  [requestSlot]?: ExpressRequest;
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
  const request = ctx.req[requestSlot];
  if (request === undefined) return;
  request.current = ctx;
  request.lastSettled = false;
}

function onEnd(ctx: LayerContext): void {
  const request = ctx.req[requestSlot];
  // A synchronous layer leaves `result` (or `error`) on the context; a promise layer neither, until it settles.
  if (request === undefined || 'result' in ctx || 'error' in ctx) return;
  request.pending++;
  ctx[requestSlot] = request;
}

function onAsyncEnd(ctx: LayerContext): void {
  // A promise layer that returned before the request met its guard (an async middleware that
  // awaited, then called next() into connectionClosing()) was never counted.
  const request = ctx[requestSlot];
  if (request === undefined) return;
  request.pending--;
  if (ctx === request.current) request.lastSettled = true;
  request.check();
}

function onError(ctx: LayerContext): void {
  ctx.req[requestSlot]?.failed();
}

/** `res` 'close': the one terminal event of a response; unfinished at 'close' means the client left. */
export function onResponseClose(this: ServerResponse): void {
  (this.req as SlottedRequest)[requestSlot]?.responseOver(this.writableFinished);
}

/** `res` 'prefinish': a late handler ended the response after it was over (nothing else is emitted then). */
function onResponsePrefinish(this: ServerResponse): void {
  (this.req as SlottedRequest)[requestSlot]?.check();
}
