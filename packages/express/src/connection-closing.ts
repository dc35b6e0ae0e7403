import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ConnectionClosingMiddleware, type ConnectionClosingOptions, type Logger } from '@closeguard/core';
import { checkLogger, type HostRequest } from '@closeguard/core/host';
import { dbOf, Exchange, refusal } from '@closeguard/node';
import { ExpressExchange, watchLayers } from './settle.ts';
import { holdResponse } from './transaction.ts';

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
 * settled in every guard it passed. The same guard met again (mounted after a body parser, for
 * `connection()` with `asyncContext`) runs the rest of the chain in the request's scope.
 * @param options the guard's options (`pool` or `pools`, `backpressure`, `abortGrace`…), or an
 * existing `ConnectionClosingMiddleware` (to read its `stats()` and `close()` it).
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` when an option is wrong, naming it.
 * @example
 * const app = express();
 * app.use(connectionClosing({ pool: createPool({ connectionString }) }));
 * app.get('/now', async (req, res) => {
 *   const { rows } = await (await req.db()).query('SELECT now()');
 *   res.json(rows[0]);
 * });
 */
export function connectionClosing(options: ExpressConnectionClosingOptions | ConnectionClosingMiddleware, hostOptions: ExpressHostOptions = {}): ConnectionClosingHandler {
  const guard = options instanceof ConnectionClosingMiddleware ? options : new ConnectionClosingMiddleware(options);
  const logger = checkLogger('connectionClosing', hostOptions.logger ?? (options instanceof ConnectionClosingMiddleware ? undefined : options.logger));
  watchLayers();

  const handler = function closeguard(req: Request, res: Response, next: NextFunction): void {
    let share: HostRequest | undefined;
    try {
      share = Exchange.enter(req, res, guard, { url: req.originalUrl, logger, asyncContext: guard.asyncContext, abortGrace: guard.abortGrace }, ExpressExchange);
    } catch (error) {
      // Closing: refused synchronously, through Express's own reply.
      const { status, headers, body } = refusal(error);
      res.status(status).set(headers).send(body);
      return;
    }
    const exchange = Exchange.of(req)!;
    // Met again (after a body parser, whose next() runs in the socket's async context): re-enter the request's scope.
    share ??= exchange.innermost;
    if (req.db !== db) req.db = db;
    // A request transaction commits before the head goes out: the response's first write waits for it.
    if (exchange.transactionOn) holdResponse(exchange);
    share.scope.run(next);
  } as ConnectionClosingHandler;
  Object.defineProperty(handler, 'guard', { value: guard, enumerable: true });
  return handler;
}

/** `req.db(alias?)`: one function for every request; behind nested guards, the innermost that has the alias. */
function db(this: Request, alias?: string): Promise<never> {
  return dbOf<never>(this, alias, 'req.db');
}
