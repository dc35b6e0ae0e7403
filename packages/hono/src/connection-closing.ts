import type { Http2Bindings, HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler, Next } from 'hono';
import { CloseguardError, CloseguardTypeError, ConnectionClosingMiddleware, getErrorStatus, isCloseguardError, type ConnectionClosingOptions, type Logger, type RegisteredConnection } from '@closeguard/core';
import { checkLogger, type HostRequest } from '@closeguard/core/host';
import { dbOf, Exchange, refusal } from '@closeguard/node';
import { settle } from './settle.ts';

/** What the Hono adapter adds to core's options. */
export interface HonoAdapterOptions {
  /** Where errors that must not reach the server (cleanup, close()) are logged. Default: console. */
  logger?: Logger;
}

/** `c.var.db(alias?)`: the request's connection for a pool alias, leased on first use. */
export type Db = <T = RegisteredConnection>(alias?: string) => Promise<T>;

/** The `Env` that `connectionClosing()` gives routes: `c.var.db` and `c.get('db')`. */
export interface ConnectionClosingEnv {
  Variables: { db: Db };
}

/** The Hono middleware `connectionClosing()` returns; `.guard` is its ConnectionClosingMiddleware. */
export interface ConnectionClosing extends MiddlewareHandler<ConnectionClosingEnv> {
  /** The guard: read `stats()`, `track(pool)` a pool, `close()` it at shutdown. */
  readonly guard: ConnectionClosingMiddleware;
}

/**
 * Hono middleware (on `@hono/node-server`): gives each request `c.var.db(alias?)` — its first call
 * takes an admission place; under overload it rejects with a 503 error that Hono's default error
 * handler answers with `Retry-After` — and gives back every connection it leased exactly once: when
 * the rest of the chain returned, its streamed body (`stream()`, `streamText()`, a `ReadableStream`)
 * is done, and the response is over. Mount it before the routes that use `c.var.db()`.
 * @param options core's options (`pool` or `pools`, `backpressure`, `abortGrace`, …) or an existing
 * `ConnectionClosingMiddleware`
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` synchronously when an option is wrong, naming it.
 * @example
 * const closing = connectionClosing({ pool: createPool(pgConfig) });
 * const app = new Hono().use(closing); // types c.var.db in the routes chained on it
 * app.get('/now', async (c) => c.json((await (await c.var.db()).query('SELECT now()')).rows));
 * // at shutdown: await closing.guard.close();
 */
export function connectionClosing(options: ConnectionClosingOptions | ConnectionClosingMiddleware, adapterOptions?: HonoAdapterOptions): ConnectionClosing {
  const guard = options instanceof ConnectionClosingMiddleware ? options : new ConnectionClosingMiddleware(options);
  if (adapterOptions !== undefined && (typeof adapterOptions !== 'object' || adapterOptions === null)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `connectionClosing(options, adapterOptions) takes an options object; received ${adapterOptions === null ? 'null' : typeof adapterOptions}`);
  }
  const logger = checkLogger('connectionClosing', adapterOptions?.logger);

  const middleware = (c: Context, next: Next): Promise<void> | Response => {
    const { incoming, outgoing } = bindingsOf(c);
    let share: HostRequest | undefined;
    try {
      // asyncContext is read per request: track(pool) may turn it on after the middleware was made.
      share = Exchange.enter(incoming, outgoing, guard, { logger, asyncContext: guard.asyncContext, abortGrace: guard.abortGrace });
    } catch (error) {
      // Closing: refused synchronously (deferred work under overload starves the accept loop, nodejs/node#57364).
      if (!isCloseguardError(error)) throw error;
      const { status, headers, body } = refusal(error);
      return c.text(body, status as 503, headers);
    }
    if (share === undefined) return next(); // this guard already let the request in (a sub-app mounted twice)
    // A closure per request: Hono calls c.get('db')() without a `this` to find the request by.
    c.set('db', (alias?: string) => dbOf(incoming, alias, 'c.var.db').catch(answerable));
    return run(c, next, share);
  };
  return Object.assign(middleware as MiddlewareHandler<ConnectionClosingEnv>, { guard });
}

/**
 * The rest of the chain, inside the request's scope. Hono's compose hands an `Error` to the app's
 * `onError` before it reaches here (`c.error` tells); anything else is rethrown untouched. A guard
 * further in leaves settling to the first one: the request is settled in every guard at once.
 */
async function run(c: Context, next: Next, share: HostRequest): Promise<void> {
  const exchange = share instanceof Exchange ? share : undefined;
  try {
    await share.scope.run(next);
  } catch (error) {
    if (exchange === undefined) {
      share.failed();
      throw error;
    }
    exchange.failed();
    await exchange.settleTransactions(500); // a request transaction rolls back before the error is answered
    exchange.settled(error);
    throw error;
  }
  if (exchange === undefined) {
    if (c.error !== undefined) share.failed();
    return;
  }
  if (c.error !== undefined) exchange.failed();
  // The status is known and nothing was sent: a request transaction commits (or rolls back) now; a
  // COMMIT that fails is thrown to Hono's compose, whose onError answers it in place of the response.
  const settling = exchange.settleTransactions(c.res.status);
  if (settling !== undefined) {
    try {
      await settling;
    } catch (error) {
      exchange.settled(error);
      throw error;
    }
  }
  settle(c, exchange);
}

/** Node's request and response, from `@hono/node-server`'s `c.env` (HttpBindings, Http2Bindings). */
export function bindingsOf(c: Context): HttpBindings | Http2Bindings {
  const env = c.env as Partial<HttpBindings> | undefined;
  if (env?.incoming === undefined || env.outgoing === undefined) {
    throw new CloseguardError('ERR_CLOSEGUARD_INVALID_ENV', 'closeguard runs Hono on @hono/node-server: c.env has no incoming/outgoing (serve the app with serve(), createAdaptorServer() or getRequestListener(), and pass c.env on to mounted apps)');
  }
  return env as HttpBindings;
}

/**
 * Lets Hono's default error handler answer an error meant for the client (a closeguard 503 with
 * `Retry-After`, a 413, a gateway app's error with a 4xx `status`) as every host does, with
 * `refusal()`: it answers an error that has `getResponse()` with it, as it does an `HTTPException`
 * (and does not log it). The error stays what it is for an `onError` of yours. Rethrows it.
 */
export function answerable(error: unknown): never {
  if (getErrorStatus(error) !== 500 && !('getResponse' in (error as object))) Reflect.defineProperty(error as object, 'getResponse', { value: getResponse, configurable: true });
  throw error;
}

function getResponse(this: Error): Response {
  const { status, headers, body } = refusal(this);
  return new Response(body, { status, headers });
}
