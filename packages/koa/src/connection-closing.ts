import { Stream, type Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { CloseguardTypeError, ConnectionClosingMiddleware, isCloseguardError, type ConnectionClosingOptions, type Logger } from '@closeguard/core';
import { checkLogger, type HostRequest } from '@closeguard/core/host';
import { dbOf, Exchange, refusal } from '@closeguard/node';

/** What the Koa adapter adds to core's options. */
export interface KoaAdapterOptions {
  /** Where errors that must not reach the server (cleanup, close()) are logged. Default: console. */
  logger?: Logger;
}

/** The Koa middleware `connectionClosing()` returns; `.guard` is its ConnectionClosingMiddleware. */
export interface ConnectionClosing extends Middleware {
  /** The guard: read `stats()`, `track(pool)` a pool, `close()` it at shutdown. */
  readonly guard: ConnectionClosingMiddleware;
}

/**
 * Koa 3 middleware: gives each request `ctx.db(alias?)` — its first call takes an admission place
 * (under overload it rejects with a 503 error carrying `Retry-After`, which Koa answers as it is) —
 * and gives back every
 * connection it leased exactly once — when the rest of the chain settled, its stream body (if any)
 * closed, and the response is over. Mount it before the routes that use `ctx.db()`.
 * @param options core's options (`pool` or `pools`, `backpressure`, `abortGrace`, …) or an existing
 * `ConnectionClosingMiddleware`
 * @throws TypeError synchronously when an option is wrong, naming it.
 * @example
 * const closing = connectionClosing({ pool: createPool(pgConfig) });
 * app.use(closing);
 * app.use(async (ctx) => {
 *   const { rows } = await (await ctx.db()).query('SELECT now()');
 *   ctx.body = rows;
 * });
 * // at shutdown: await closing.guard.close();
 */
export function connectionClosing(options: ConnectionClosingOptions | ConnectionClosingMiddleware, adapterOptions?: KoaAdapterOptions): ConnectionClosing {
  const guard = options instanceof ConnectionClosingMiddleware ? options : new ConnectionClosingMiddleware(options);
  checkObject('connectionClosing(options, adapterOptions)', adapterOptions);
  const logger = checkLogger('connectionClosing', adapterOptions?.logger);

  const middleware = (ctx: Context, next: Next): Promise<void> | undefined => {
    let share: HostRequest | undefined;
    try {
      // asyncContext is read per request: track(pool) may turn it on after the middleware was made.
      share = Exchange.enter(ctx.req, ctx.res, guard, { logger, asyncContext: guard.asyncContext, abortGrace: guard.abortGrace });
    } catch (error) {
      // Closing: refused synchronously (deferred work under overload starves the accept loop, nodejs/node#57364).
      if (!isCloseguardError(error)) throw error;
      const { status, headers, body } = refusal(error);
      ctx.status = status;
      ctx.set(headers);
      ctx.body = body;
      return undefined;
    }
    if (share === undefined) return next(); // this guard already let the request in (a koa-mount sub-app)
    if (ctx.db !== db) (ctx.app.context as { db?: unknown }).db = db; // once per app: ctx.db() lives on the app's context prototype
    return run(ctx, next, share);
  };
  return Object.assign(middleware, { guard });
}

/**
 * The rest of the chain, inside the request's scope; every error goes on to Koa untouched. `await
 * next()` settles before Koa sends the body: a stream body (a cursor's rows) is still the
 * handler's work, so the request is held until it closed. A guard further in (a sub-app's) leaves
 * settling to the first one: the request is settled in every guard when its whole chain is.
 */
async function run(ctx: Context, next: Next, share: HostRequest): Promise<void> {
  const exchange = share instanceof Exchange ? share : undefined;
  try {
    await share.scope.run(next);
  } catch (error) {
    if (exchange === undefined) {
      share.failed();
      throw error;
    }
    exchange.failed();
    await exchange.settleTransactions(500); // a request transaction rolls back before Koa answers the error
    exchange.settled(error);
    throw error;
  }
  if (exchange === undefined) return;
  // The status is known and Koa has sent nothing: a request transaction commits (or rolls back)
  // now; a COMMIT that fails goes to Koa's error path, which answers 500 in place of the response.
  const settling = exchange.settleTransactions(ctx.status);
  if (settling !== undefined) {
    try {
      await settling;
    } catch (error) {
      exchange.settled(error);
      throw error;
    }
  }
  const body: unknown = ctx.body;
  if (body instanceof Stream) exchange.holdBody(body as Readable);
  exchange.settled();
}

/** `ctx.db(alias?)`: the request's connection for a pool alias, leased on first use. */
function db(this: Context, alias?: string): Promise<unknown> {
  return dbOf(this.req, alias, 'ctx.db');
}

/** Checks an options argument: undefined or an object. */
function checkObject(where: string, options: unknown): asserts options is object | undefined {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${where} takes an options object; received ${options === null ? 'null' : typeof options}`);
  }
}
