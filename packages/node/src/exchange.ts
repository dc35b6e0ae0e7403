import type { ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerResponse } from 'node:http2';
import { finished as streamFinished, type Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { CloseguardError, type ConnectionClosingMiddleware, type Logger } from '@closeguard/core';
import { enterGuard, GatewayReadable, HostRequest, leasesFor, type TransactionMode } from '@closeguard/core/host';
import type { NodeRequest } from './env.ts';
import type { NodeResponse } from './respond.ts';
import { passWebBody } from './web-body.ts';

/** Where a request's exchange lives on Node's request: one module-level slot, for every adapter. */
const exchangeSlot: unique symbol = Symbol('closeguard.exchange') as never;

type Slotted = { [exchangeSlot]?: Exchange };

/** An adapter's subclass of `Exchange`, and the options it is made with. */
export type ExchangeKind<O extends ExchangeOptions, E extends Exchange> = new (req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware | undefined, options: O) => E;

/** What a request needs when it enters. Durations in ms. */
export interface ExchangeOptions {
  /** The URL the request is known by in signals and logs (Express's `originalUrl`). Default `req.url`. */
  url?: string | undefined;
  /** Where errors that must not reach the server (failed cleanups) are logged. Default: console. */
  logger?: Logger | undefined;
  /** Make `currentScope()` and `connection()` work (the guard's `asyncContext`). */
  asyncContext?: boolean | undefined;
  /** After the response is over, how long a handler still running is waited for. Default 5000. */
  abortGrace?: number | undefined;
  /** A gateway app's body serves the request, bounded by `drive()` (see `HostRequestOptions.driven`). */
  driven?: boolean | undefined;
}

/** One guard's share of a request: its scope (its leases, its admission). */
class GuardShare extends HostRequest {
  readonly guard: ConnectionClosingMiddleware | undefined;

  constructor(guard: ConnectionClosingMiddleware | undefined, req: NodeRequest, res: NodeResponse, options: ExchangeOptions) {
    super({
      method: req.method ?? 'GET',
      url: options.url ?? req.url ?? '/',
      logger: options.logger,
      asyncContext: options.asyncContext,
      abortGrace: options.abortGrace,
      driven: options.driven,
      response: 'stream' in res ? streamCut(res) : res, // cut if shutdown gives up waiting for the request
    });
    this.guard = guard;
  }
}

/**
 * One Node request/response pair as closeguard follows it, the same for every framework: the
 * guards it passed (each with its own scope and leases; the first is the exchange itself, those of
 * sub-apps further in join it), `db()`, and its end. A request ends once both
 * - its handler chain settled (`settled()`, told by the adapter) and every body it handed to the
 *   response (a cursor's stream, a gateway body: `holdBody()`) has closed, and
 * - its response is over: its one `'close'`, or, for a response queued behind a pipelined one
 *   whose socket closed first, the socket's.
 * Then each guard's scope closes ('complete', 'aborted' when the client left, 'error' when it failed).
 * @example
 * const share = Exchange.enter(req, res, guard, { logger }); // throws the refusal once closing
 * handler().then(() => Exchange.of(req)!.settled(), (error) => Exchange.of(req)!.settled(error));
 */
export class Exchange extends GuardShare {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  /** Guards further in (a sub-app's, a router's) the request passed too, innermost last. */
  #inner: GuardShare[] | undefined = undefined;
  /** Bodies handed to the response that have not closed yet. */
  #holds = 0;
  #chainSettled = false;

  /** Use `Exchange.start()` or `Exchange.enter()`: they also slot it on `req` and watch `res`. */
  constructor(req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware | undefined, options: ExchangeOptions) {
    super(guard, req, res, options);
    this.req = req;
    this.res = res;
  }

  /**
   * Starts the exchange of a request (an instance of `Kind`, an adapter's own subclass, made whole
   * before its response is watched): a gateway's own, when no guard let the request in.
   */
  static start<O extends ExchangeOptions, E extends Exchange>(req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware | undefined, options: O, Kind: ExchangeKind<O, E>): E {
    const exchange = new Kind(req, res, guard, options);
    (req as Slotted)[exchangeSlot] = exchange;
    watch(exchange, req, res);
    return exchange;
  }

  /** The request's exchange, if a guard or a gateway started one. */
  static of(req: NodeRequest): Exchange | undefined {
    return (req as Slotted)[exchangeSlot];
  }

  /**
   * Lets a request in through `guard`: starts its exchange (an instance of `Kind`, an adapter's
   * own subclass) on the first guard, joins it on a guard further in.
   * @returns the share of `guard` (run the rest of the chain in its scope), or undefined when
   * this guard already let the request in (mounted twice: step aside).
   * @throws CloseguardError `ERR_CLOSEGUARD_SHUTDOWN` (503) synchronously once the guard is
   * closing; the request is settled as failed: answer it with `refusal(error)` through the framework.
   */
  static enter<O extends ExchangeOptions>(req: NodeRequest, res: NodeResponse, guard: ConnectionClosingMiddleware, options: O, Kind: ExchangeKind<O, Exchange> = Exchange): HostRequest | undefined {
    const exchange = (req as Slotted)[exchangeSlot];
    let share: GuardShare;
    if (exchange === undefined) {
      share = Exchange.start(req, res, guard, options, Kind);
    } else {
      if (exchange.passed(guard)) return undefined;
      share = exchange.#join(guard, options);
    }
    try {
      enterGuard(guard, share.scope); // refuses synchronously once closing; admission is the first db()'s
    } catch (error) {
      share.settled(error);
      throw error;
    }
    return share;
  }

  /** Whether the request already passed `guard`. */
  passed(guard: ConnectionClosingMiddleware): boolean {
    return this.guard === guard || this.#inner?.some((share) => share.guard === guard) === true;
  }

  #join(guard: ConnectionClosingMiddleware, options: ExchangeOptions): GuardShare {
    const share = new GuardShare(guard, this.req, this.res, options);
    (this.#inner ??= []).push(share);
    if (this.isOver) share.over(finishedOf(this.res));
    return share;
  }

  /** Names the route that serves the request (for leak reports) in the scope of every guard it passed. */
  routed(route: string): void {
    this.scope.route = route;
    if (this.#inner !== undefined) for (const share of this.#inner) share.scope.route = route;
  }

  /** The share of the guard furthest in: a gateway app behind the guards runs in its scope. */
  get innermost(): HostRequest {
    const inner = this.#inner;
    return inner === undefined ? this : inner[inner.length - 1]!;
  }

  /**
   * The request's connection for a pool alias, leased on first use: from the innermost guard that
   * has a pool of that name (the innermost guard if none has, which then names the known ones).
   */
  db<T>(alias: string): Promise<T> {
    const leases = leasesFor(this.#shareFor(alias).scope);
    if (leases === undefined) throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `db('${alias}') was called on a request no guard let in`);
    return leases.get<T>(alias);
  }

  /**
   * The response's status is known and nothing of it went out yet (Koa and Hono after `await
   * next()`, Fastify's onSend, Express's first write, a gateway app's first chunk): ends the
   * request transaction of every guard the request passed — committed when the chain did not
   * fail, the status commits and the client is still there, else rolled back. Once.
   * @returns undefined when nothing is to be done (no transaction, or nothing leased); else a
   * promise that rejects with `ERR_CLOSEGUARD_COMMIT_FAILED` when a COMMIT failed: answer that
   * error (500) through the framework's error path instead of the response.
   */
  settleTransactions(status: number): Promise<void> | undefined {
    const failed = this.hasFailed;
    const outer = leasesFor(this.scope)?.settleTransaction(status, failed);
    if (this.#inner === undefined) return outer;
    const settling = [outer, ...this.#inner.map((share) => leasesFor(share.scope)?.settleTransaction(status, failed))].filter((each) => each !== undefined);
    return settling.length === 0 ? undefined : Promise.all(settling).then(() => undefined);
  }

  /** A route's own transaction setting (the adapters' `transaction()`), in every guard the request passed; throws as `useTransaction()` does. */
  useTransaction(mode: TransactionMode): void {
    leasesFor(this.scope)?.useTransaction(mode);
    if (this.#inner !== undefined) for (const share of this.#inner) leasesFor(share.scope)?.useTransaction(mode);
  }

  /** Whether a request transaction is on (the guard's option, or a route's) in a guard the request passed. */
  get transactionOn(): boolean {
    if (leasesFor(this.scope)?.transactionMode) return true;
    return this.#inner?.some((share) => leasesFor(share.scope)?.transactionMode) === true;
  }

  #shareFor(alias: string): GuardShare {
    const inner = this.#inner;
    if (inner === undefined) return this;
    for (let i = inner.length - 1; i >= 0; i--) if (aliasesOf(inner[i]!.guard).has(alias)) return inner[i]!;
    return aliasesOf(this.guard).has(alias) ? this : inner[inner.length - 1]!;
  }

  /**
   * The request goes on until `body` has closed: a stream handed to the response that a cursor
   * still feeds, or a gateway body (until its `close()` ran). Queued behind a pipelined response
   * whose socket went first, it would never be read: it is destroyed when the request aborts.
   */
  holdBody(body: Readable): void {
    this.#holds++;
    if (body instanceof GatewayReadable) void body.outcome.then(() => this.#release());
    else streamFinished(body, () => this.#release());
    if (isQueued(this.res)) this.innermost.scope.whenAborted(() => body.destroy());
    else if ('stream' in this.res) body.prependOnceListener('error', cutOnError.bind(this.res));
  }

  /**
   * `holdBody()` for a web body (a `Response`'s `ReadableStream`, as Hono sends): the request goes
   * on until it was read to its end, errored, or cancelled and its source's `cancel()` settled.
   * The framework sends the returned stream in its place. Once the response is over, a body nobody
   * read to its end (a hang-up, a HEAD, a response replaced) is cancelled.
   */
  holdWebBody(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    this.#holds++;
    const passed = passWebBody(body, () => this.#release());
    if (this.isOver) passed.stop();
    else if (isQueued(this.res)) this.innermost.scope.whenAborted(passed.stop);
    else this.res.once('close', passed.stop);
    return passed.stream;
  }

  #release(): void {
    if (--this.#holds === 0 && this.#chainSettled) this.#settleAll();
  }

  /** The handler chain settled (pass its error if it failed); the request ends once its bodies closed too. */
  override settled(error?: unknown): void {
    if (error !== undefined) this.failed();
    this.#chainSettled = true;
    if (this.#holds === 0) this.#settleAll();
  }

  /** Whether the handler chain settled (bodies it handed over may still be open). */
  get chainSettled(): boolean {
    return this.#chainSettled;
  }

  #settleAll(): void {
    const inner = this.#inner;
    if (inner !== undefined) for (let i = inner.length - 1; i >= 0; i--) inner[i]!.settled();
    super.settled();
  }

  override failed(): void {
    if (this.#inner !== undefined) for (const share of this.#inner) share.failed();
    super.failed();
  }

  override over(finished: boolean): void {
    if (this.isOver) return;
    const inner = this.#inner;
    if (inner !== undefined) for (let i = inner.length - 1; i >= 0; i--) inner[i]!.over(finished);
    super.over(finished);
  }
}

/**
 * `req.db()`, `request.db()`, `ctx.db()`: the connection of the request `req` for `alias`.
 * @param calledAs how the app called it, for the error message (`req.db`)
 * @throws CloseguardError `ERR_CLOSEGUARD_NO_REQUEST` synchronously when no guard let `req` in.
 */
export function dbOf<T>(req: NodeRequest, alias: string | undefined, calledAs: string): Promise<T> {
  const exchange = (req as Slotted)[exchangeSlot];
  if (exchange === undefined || exchange.guard === undefined) {
    const argument = alias === undefined ? '' : `'${alias}'`;
    throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `${calledAs}(${argument}) was called on a request connectionClosing() did not let in (mount it before the routes that use it)`);
  }
  return exchange.db<T>(alias ?? 'default');
}

const aliasCache = new WeakMap<ConnectionClosingMiddleware, ReadonlySet<string>>();

/** The pool aliases of a guard (read once per guard: only requests behind nested guards ask). */
function aliasesOf(guard: ConnectionClosingMiddleware | undefined): ReadonlySet<string> {
  if (guard === undefined) return new Set();
  let aliases = aliasCache.get(guard);
  if (aliases === undefined) aliasCache.set(guard, (aliases = new Set(Object.keys(guard.stats().pools))));
  return aliases;
}

/**
 * Ends the exchange with its response: the one `'close'` of a response (a shared listener, no
 * closure per request), read with `finishedOf()`. A response already closed (a hook that awaited)
 * is over now. A response queued behind a pipelined one has no socket yet and gets no `'close'`
 * if the socket goes first: for those only, the socket's `'close'` ends it too.
 */
function watch(exchange: Exchange, req: NodeRequest, res: NodeResponse): void {
  if ((res as ServerResponse).closed === true) {
    exchange.over(finishedOf(res));
    return;
  }
  res.on('close', onResponseClose);
  if (!isQueued(res)) return;
  const socket = req.socket;
  const onSocketClose = (): void => exchange.over(false);
  socket.once('close', onSocketClose);
  res.once('close', () => socket.off('close', onSocketClose));
}

function onResponseClose(this: NodeResponse): void {
  (this.req as Slotted)[exchangeSlot]?.over(finishedOf(this));
}

/** An HTTP/1 response waiting behind a pipelined one: it has no socket yet. */
export function isQueued(res: NodeResponse): boolean {
  return !('stream' in res) && !res.socket;
}

/**
 * A body that fails after the headers must reach the client as a cut response. On HTTP/2 a bare
 * `res.destroy()` (Fastify's, reply.js `sendStream`) resets the stream with NO_ERROR, which
 * clients (Node's, curl) take for a clean end: reset it with INTERNAL_ERROR first, as `pipeline`
 * does. Prepended, it runs before the framework's own 'error' listener; before the headers the
 * framework still answers the error itself.
 */
function cutOnError(this: Http2ServerResponse): void {
  if (this.headersSent) resetStream(this);
}

/** An HTTP/2 response as shutdown cuts it: reset with INTERNAL_ERROR, not the bare `destroy()` a clean end looks like. */
function streamCut(res: Http2ServerResponse): { readonly destroyed: boolean; destroy(): void } {
  return {
    get destroyed() {
      return res.destroyed;
    },
    destroy: () => resetStream(res),
  };
}

function resetStream(res: Http2ServerResponse): void {
  if (!res.stream.closed) res.stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
}

/**
 * Whether the response went out in full. On HTTP/2, Node's compatibility API reports
 * `writableFinished` (and emits 'finish') also when the client reset the stream, because closing
 * an aborted stream ends its writable side: the stream's own abort flag tells them apart.
 */
export function finishedOf(res: NodeResponse): boolean {
  if (!res.writableFinished) return false;
  return !('stream' in res) || (!res.stream.aborted && res.stream.rstCode === http2Constants.NGHTTP2_NO_ERROR);
}
