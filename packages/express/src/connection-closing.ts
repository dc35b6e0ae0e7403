import { IncomingMessage, STATUS_CODES } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CloseguardError, ConnectionClosingMiddleware, getErrorStatus } from '@closeguard/core';
import { checkLogger, leasesFor } from '@closeguard/core/host';
import type { ConnectionClosingOptions, Logger } from '@closeguard/core';
import type { HostScope } from '@closeguard/core/host';
import { ExpressRequest, GuardRequest, onResponseClose, requestSlot, watchLayers, type SlottedRequest } from './request.ts';

/** What `connectionClosing()` takes besides the guard's own options. */
export interface ExpressHostOptions {
  /** Where errors that must not reach the server (failed cleanups) are logged. Default: console. */
  logger?: Logger;
}

/** The guard's options, plus the adapter's `logger`. */
export type ExpressConnectionClosingOptions = ConnectionClosingOptions & ExpressHostOptions;

/** The Express middleware `connectionClosing()` returns; `.guard` is the guard it installs. */
export type ConnectionClosingHandler = RequestHandler & { readonly guard: ConnectionClosingMiddleware };

/**
 * Express middleware that gives every connection a request took back exactly once, on every path:
 * `req.db(alias?)` leases a connection on first use and the request gives it back when both its
 * handler chain settled and its response is over. Under overload the first `req.db()` rejects
 * with a 503 `CloseguardError`; once the guard is closing, a request is answered 503 with
 * `Retry-After` before any route runs. In a sub-app or router behind another guard, a request is
 * settled in every guard it passed; the same guard met twice steps aside.
 * @param options the guard's options (`pool` or `pools`, `backpressure`, `abortGrace`…), or an
 * existing `ConnectionClosingMiddleware` (to read its `stats()` and `close()` it).
 * @throws TypeError when an option is wrong, naming it.
 * @example
 * const app = express();
 * app.use(connectionClosing({ pool: createPool({ connectionString }) }));
 * app.get('/now', async (req, res) => {
 *   const { rows } = await (await req.db()).query('SELECT now()');
 *   res.json(rows[0]);
 * });
 */
export function connectionClosing(
  options: ExpressConnectionClosingOptions | ConnectionClosingMiddleware,
  hostOptions: ExpressHostOptions = {},
): ConnectionClosingHandler {
  const guard = options instanceof ConnectionClosingMiddleware ? options : new ConnectionClosingMiddleware(options);
  const logger = checkLogger('connectionClosing', hostOptions.logger ?? (options instanceof ConnectionClosingMiddleware ? undefined : options.logger));
  watchLayers();

  const aliases = new Set(Object.keys(guard.stats().pools));

  const handler = function closeguard(req: Request, res: Response, next: NextFunction): void {
    const outer = (req as SlottedRequest)[requestSlot];
    // The same guard mounted twice (on a path and again in a sub-app): the request is already its own.
    if (outer?.passed(guard)) {
      next();
      return;
    }
    const options = {
      method: req.method,
      url: req.originalUrl,
      logger,
      asyncContext: guard.asyncContext,
      abortGrace: guard.abortGrace,
      response: res, // cut if shutdown gives up waiting for the request
    };
    let request: GuardRequest;
    if (outer === undefined) {
      const first = new ExpressRequest(res, guard, aliases, options);
      (req as SlottedRequest)[requestSlot] = first;
      if (req.db !== db) provideDb(req);
      res.on('close', onResponseClose);
      // A response queued behind a pipelined one has no socket yet, and no 'close' if the socket goes first.
      if (!res.socket) watchQueued(req, first);
      request = first;
    } else {
      // A guard of a sub-app or router inside another guard's: the request settles in both, when
      // its whole chain settled and its response is over (the first guard's request tells them).
      request = new GuardRequest(guard, aliases, options);
      outer.join(request);
    }

    try {
      guard.tryEnter(request.scope); // refuses synchronously once closing; admission is the first req.db()'s
    } catch (error) {
      shed(res, error);
      request.settled(error);
      return;
    }
    proceed(req, request.scope, next, guard.asyncContext);
  } as ConnectionClosingHandler;
  Object.defineProperty(handler, 'guard', { value: guard, enumerable: true });
  return handler;
}

/** Runs the rest of the chain inside the request's scope (the innermost guard's), so `connection()` finds it. */
function proceed(req: Request, scope: HostScope, next: NextFunction, asyncContext: boolean): void {
  if (!asyncContext) {
    next();
    return;
  }
  // A body parser calls next() from the request's 'data'/'end' listeners, in the socket's async
  // context: emit those events inside the scope so the routes after it still see it.
  const request = (req as SlottedRequest)[requestSlot]!;
  request.eventScope = scope;
  if (req.emit !== emitInScope) {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to req in emitInScope
    request.emit = req.emit;
    req.emit = emitInScope as Request['emit'];
  }
  scope.run(next);
}

/** The request's `emit` behind a guard with `asyncContext`: Node's, run inside the innermost guard's scope. */
function emitInScope(this: SlottedRequest, ...args: Parameters<IncomingMessage['emit']>): boolean {
  const request = this[requestSlot]!;
  return request.eventScope!.run(() => request.emit!.apply(this, args));
}

/** The adapter's answer to a request a closing guard refuses: 503 and `Retry-After`, through Express's own reply, synchronously. */
function shed(res: Response, error: unknown): void {
  const status = getErrorStatus(error);
  const retryAfter = error instanceof CloseguardError && error.retryAfter !== undefined ? error.retryAfter : 1;
  res.status(status).set('Retry-After', String(Math.ceil(retryAfter))).type('text/plain').send(STATUS_CODES[status] ?? 'Error');
}

/**
 * Gives `req` our `db()`: once, on Express's own request prototype (`express.request`, the one
 * right above Node's `IncomingMessage.prototype`, which every app's `app.request` and every
 * sub-app's inherit from), so that no request pays for it. Node ≤ 22 makes adding a property to
 * a request whose prototype Express swapped cost about 1.5 µs. Where that prototype is not found,
 * or a `db` between it and the request shadows ours, the request gets its own property.
 */
function provideDb(req: Request): void {
  let prototype: unknown = Object.getPrototypeOf(req);
  while (prototype !== null && Object.getPrototypeOf(prototype) !== IncomingMessage.prototype) prototype = Object.getPrototypeOf(prototype);
  if (prototype !== null && !Object.hasOwn(prototype as object, 'db')) {
    Object.defineProperty(prototype, 'db', { value: db, writable: true, configurable: true });
  }
  if (req.db !== db) req.db = db;
}

/**
 * `req.db(alias?)`: shared by every request, it reaches the scope through the request. Behind
 * more than one guard (a sub-app's inside an app's), the innermost guard that has a pool `alias`.
 */
function db(this: Request, alias = 'default'): Promise<never> {
  const request = (this as SlottedRequest)[requestSlot];
  const leases = request && leasesFor(request.shareFor(alias).scope);
  if (!leases) {
    throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `req.db('${alias}') was called on a request connectionClosing() did not admit`);
  }
  return leases.get<never>(alias);
}

function watchQueued(req: Request, request: ExpressRequest): void {
  const { socket } = req;
  const onSocketClose = (): void => request.responseOver(request.res.writableFinished);
  socket.once('close', onSocketClose);
  request.res.once('close', () => socket.off('close', onSocketClose));
}
