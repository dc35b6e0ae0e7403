import { IncomingMessage, STATUS_CODES } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { checkLogger, CloseguardError, ConnectionClosingMiddleware, getErrorStatus, leasesFor } from '@closeguard/core';
import type { ConnectionClosingOptions, Logger } from '@closeguard/core';
import { ExpressRequest, onResponseClose, requestSlot, watchLayers, type SlottedRequest } from './request.ts';

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
 * handler chain settled and its response is over; overload is answered 503 with `Retry-After`
 * before any route runs.
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

  const handler = function closeguard(req: Request, res: Response, next: NextFunction): void {
    const request = new ExpressRequest(res, {
      method: req.method,
      url: req.originalUrl,
      logger,
      asyncContext: guard.asyncContext,
      abortGrace: guard.abortGrace,
    });
    (req as SlottedRequest)[requestSlot] = request;
    if (req.db !== db) provideDb(req);
    res.on('close', onResponseClose);
    // A response queued behind a pipelined one has no socket yet, and no 'close' if the socket goes first.
    if (!res.socket) watchQueued(req, request);

    let admitted: boolean;
    try {
      admitted = guard.tryEnter(request.scope); // sheds synchronously: deferred work under overload starves accept()
    } catch (error) {
      shed(res, error);
      request.settled(error);
      return;
    }
    if (admitted) {
      proceed(req, request, next, guard.asyncContext);
      return;
    }
    // Under load about every other request waits here: callbacks, not a promise and a turn of the loop.
    guard.queue(request.scope, {
      admitted: () => proceed(req, request, next, guard.asyncContext),
      refused: (error) => {
        // Queue timeout or shutdown: 503. A client that left while queued gets nothing.
        if (!res.headersSent && !res.destroyed) shed(res, error);
        request.settled(error);
      },
    });
  } as ConnectionClosingHandler;
  Object.defineProperty(handler, 'guard', { value: guard, enumerable: true });
  return handler;
}

/** Runs the rest of the chain inside the request's scope, so `connection()` finds it. */
function proceed(req: Request, request: ExpressRequest, next: NextFunction, asyncContext: boolean): void {
  if (!asyncContext) {
    next();
    return;
  }
  // A body parser calls next() from the request's 'data'/'end' listeners, in the socket's async
  // context: emit those events inside the scope so the routes after it still see it.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to req below
  const emit = req.emit;
  const { scope } = request;
  req.emit = function emitInScope(this: Request, ...args: Parameters<Request['emit']>) {
    return scope.run(() => emit.apply(this, args));
  } as Request['emit'];
  scope.run(next);
}

/** The adapter's answer to overload: 503 and `Retry-After`, through Express's own reply, synchronously. */
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

/** `req.db(alias?)`: shared by every request, it reaches the scope through the request. */
function db(this: Request, alias?: string): Promise<never> {
  const request = (this as SlottedRequest)[requestSlot];
  const leases = request && leasesFor(request.scope);
  if (!leases) {
    throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `req.db('${alias ?? 'default'}') was called on a request connectionClosing() did not admit`);
  }
  return leases.get<never>(alias ?? 'default');
}

function watchQueued(req: Request, request: ExpressRequest): void {
  const { socket } = req;
  const onSocketClose = (): void => request.responseOver(request.res.writableFinished);
  socket.once('close', onSocketClose);
  request.res.once('close', () => socket.off('close', onSocketClose));
}
