import { Stream, finished } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { CloseguardError, ConnectionClosingMiddleware, isCloseguardError, type ConnectionClosingOptions, type Logger } from '@closeguard/core';
import { checkLogger, GatewayReadable, leasesFor, type HostRequest } from '@closeguard/core/host';
import { checkObject } from './options.ts';
import { requestOf, startRequest } from './request.ts';

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
    // Mounted twice on one request's path (a koa-mount sub-app): the first one owns the request.
    if (requestOf(ctx.req)) return next();
    // asyncContext is read per request: track(pool) may turn it on after the middleware was made.
    const request = startRequest(ctx.req, ctx.res, { logger, asyncContext: guard.asyncContext, abortGrace: guard.abortGrace });
    if (ctx.db !== db) (ctx.app.context as { db?: unknown }).db = db; // once per app: ctx.db() lives on the app's context prototype
    try {
      guard.enter(request.scope); // admission itself waits for the first ctx.db()
    } catch (error) {
      // Closing: refused synchronously (deferred work under overload starves the accept loop, nodejs/node#57364).
      refuse(ctx, request, error);
      return undefined;
    }
    return run(ctx, next, request);
  };
  return Object.assign(middleware, { guard });
}

/** The rest of the chain, inside the request's scope; every error goes on to Koa untouched. */
async function run(ctx: Context, next: Next, request: HostRequest): Promise<void> {
  try {
    await request.scope.run(next);
  } catch (error) {
    request.settled(error);
    throw error;
  }
  settleAfterBody(ctx, request);
}

/**
 * `await next()` settles before Koa sends the body: a stream body (a cursor's rows) is still the
 * handler's work, so the request settles only once that stream has closed (its cleanup ran).
 */
function settleAfterBody(ctx: Context, request: HostRequest): void {
  const body: unknown = ctx.body;
  if (body instanceof GatewayReadable) {
    // A gateway body closes its app's body (close()) after the stream itself closes: wait for that.
    void body.outcome.then(() => request.settled());
  } else if (body instanceof Stream) {
    finished(body as unknown as NodeJS.ReadableStream, () => request.settled());
  } else {
    request.settled();
    return;
  }
  // A queued (pipelined) response whose socket went first never drains: stop the body on abort.
  if (!ctx.res.socket) request.scope.whenAborted(() => (body as Stream & { destroy(): void }).destroy());
}

/** Answers a request refused at the door (shutdown): 503 with Retry-After through Koa, no throw, no app 'error'. */
function refuse(ctx: Context, request: HostRequest, error: unknown): void {
  request.settled(error);
  if (isCloseguardError(error) && error.status === 503) {
    ctx.status = 503;
    ctx.set('Retry-After', String(Math.ceil(error.retryAfter ?? 1)));
    ctx.body = 'Service Unavailable';
    return;
  }
  throw error;
}

/** `ctx.db(alias?)`: the request's connection for a pool alias, leased on first use. */
function db(this: Context, alias?: string): Promise<unknown> {
  const request = requestOf(this.req);
  const leases = request && leasesFor(request.scope);
  if (!leases) {
    throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `ctx.db(${alias === undefined ? '' : `'${alias}'`}) was called in a request connectionClosing() did not admit (mount it before this middleware)`);
  }
  return leases.get(alias ?? 'default');
}
