import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { CloseguardTypeError, ConnectionClosingMiddleware, isCloseguardError, type ConnectionClosingOptions, type Logger } from '@closeguard/core';
import { checkLogger, type HostRequest } from '@closeguard/core/host';
import { dbOf, Exchange, refusal } from '@closeguard/node';
import { FastifyExchange, followHandlers } from './settle.ts';
import { routeTransaction } from './transaction.ts';

/**
 * Options of `connectionClosing`: core's `ConnectionClosingOptions` (a new guard is made from them),
 * or `{ guard }`, an existing `ConnectionClosingMiddleware`; and the adapter's own.
 */
export type ConnectionClosingPluginOptions = (ConnectionClosingOptions | { guard: ConnectionClosingMiddleware }) & {
  /** Where cleanup errors are logged (`logger.error(message, error)`). Default: console. */
  logger?: Logger;
  /**
   * How long `fastify.close()` waits for requests in flight (ms) before it aborts them: their
   * responses are cut and their connections destroyed, then the pools drain. Default 10000.
   */
  closeTimeout?: number;
};

function connectionClosingPlugin(fastify: FastifyInstance, options: ConnectionClosingPluginOptions, done: (error?: Error) => void): void {
  let guard: ConnectionClosingMiddleware;
  let logger: Logger;
  try {
    guard = guardFrom(options);
    logger = checkLogger('connectionClosing', options.logger);
    closeWithFastify(fastify, guard, checkCloseTimeout(options.closeTimeout));
  } catch (error) {
    done(error as Error); // a TypeError naming the option, from register()/ready()
    return;
  }
  fastify.decorate('closeguard', guard);
  fastify.decorateRequest('db', db as FastifyRequest['db']);
  fastify.addHook('onRequest', createOnRequest(guard, logger));
  fastify.addHook('preHandler', reenter);
  fastify.addHook('onSend', onSend);
  fastify.addHook('onError', onError);
  fastify.addHook('onRoute', routeTransaction); // a route's config.closeguard.transaction
  done();
}

/**
 * `fastify.close()` closes the guard, bounded by `closeTimeout` + `abortGrace`. Fastify's server
 * close comes first and waits for every request in flight, also one that never ends: from
 * preClose on, a timer aborts what is left after `closeTimeout` (the guard cuts their responses),
 * which ends it. Until then the guard admits as before, so Fastify answers requests that arrive
 * while it closes as it would without closeguard (`return503OnClosing`).
 */
function closeWithFastify(fastify: FastifyInstance, guard: ConnectionClosingMiddleware, closeTimeoutMs: number): void {
  const unfollow = followHandlers();
  let deadline: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  fastify.addHook('preClose', (closing) => {
    deadline = Date.now() + closeTimeoutMs;
    // Its error, if any, reaches onClose: close() returns the same promise there.
    timer = setTimeout(() => void guard.close({ timeout: 0 }).catch(() => undefined), closeTimeoutMs).unref();
    closing();
  });
  fastify.addHook('onClose', (_instance, closed) => {
    clearTimeout(timer);
    const timeout = deadline === undefined ? closeTimeoutMs : Math.max(0, deadline - Date.now());
    // Handlers are followed until no request can still end by one settling: close() waits only for
    // those that lease, and every response is over by now (the server closed), so a request that
    // leased nothing ends within abortGrace — one that settles meanwhile ends 'aborted' or
    // 'complete' as on every host, not 'timeout'.
    const done = (error?: Error): void => {
      setTimeout(unfollow, guard.abortGrace).unref();
      closed(error);
    };
    guard.close({ timeout }).then(() => done(), done);
  });
}

/**
 * The Fastify plugin: every request of the instance (fastify-plugin, so not encapsulated) is
 * admitted by the guard (503 + Retry-After when overloaded), gets `request.db(alias?)`, and gives
 * back its connections exactly once when both its handler has settled and its response is over.
 * `fastify.closeguard` is the guard (`stats()`, `track()`); it is closed by `fastify.close()`.
 * @throws TypeError (when Fastify loads the plugin) naming an option that is wrong.
 * @example
 * await fastify.register(connectionClosing, { pool: createPool({ connectionString }) });
 * fastify.get('/now', async (request) => (await (await request.db()).query('SELECT now()')).rows[0]);
 */
export const connectionClosing = fp(connectionClosingPlugin, { fastify: '5.x', name: '@closeguard/fastify' });

function guardFrom(options: ConnectionClosingPluginOptions): ConnectionClosingMiddleware {
  if (typeof options !== 'object' || options === null) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `connectionClosing takes an options object (pool or pools, or guard); received ${options === null ? 'null' : typeof options}`);
  }
  // The guard reads its own options only (logger and closeTimeout are the plugin's).
  if (!('guard' in options)) return new ConnectionClosingMiddleware(options);
  if (!(options.guard instanceof ConnectionClosingMiddleware)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option guard must be a ConnectionClosingMiddleware; received ${describe(options.guard)}`);
  }
  return options.guard;
}

/** `closeTimeout` when none is given: the guard's own `close()` default. */
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

function checkCloseTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  // NaN fails `>= 0` too.
  if (typeof value === 'number' && value >= 0) return value;
  throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option closeTimeout must be a number of milliseconds ≥ 0; received ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

/** `request.db(alias?)`: on the prototype, so a request pays nothing until it asks. */
function db(this: FastifyRequest, alias?: string): Promise<unknown> {
  return dbOf(this.raw, alias, 'request.db');
}

function createOnRequest(guard: ConnectionClosingMiddleware, logger: Logger) {
  // Callback style, so a refused request stops the chain synchronously: no done(), a reply instead.
  return function onRequest(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    let share: HostRequest | undefined;
    try {
      share = Exchange.enter(request.raw, reply.raw, guard, { logger, asyncContext: guard.asyncContext, abortGrace: guard.abortGrace, reply }, FastifyExchange);
    } catch (error) {
      // Closing: refused at the door through Fastify's reply (onSend runs, the error handler does not).
      if (!isCloseguardError(error)) throw error; // not ours: Fastify's hook runner hands it to its error path
      if (reply.raw.destroyed) return;
      const { status, headers, body } = refusal(error);
      reply.code(status).headers(headers).send(body);
      return;
    }
    if (share === undefined) done(); // this guard already let the request in
    else share.scope.run(done);
  };
}

/**
 * A POST's handler runs from the body parser's async context: with `asyncContext`, the rest of
 * the chain (later preHandler hooks, the handler) re-enters the request's, as onRequest entered it.
 */
function reenter(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const exchange = Exchange.of(request.raw);
  if (exchange === undefined) done();
  else exchange.innermost.scope.run(done); // runs done() as it is without asyncContext
}

type OnSendDone = (error: Error | null, payload?: unknown) => void;

function onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: OnSendDone): void {
  const exchange = Exchange.of(request.raw);
  if (!(exchange instanceof FastifyExchange)) {
    done(null, payload);
    return;
  }
  // The status is known and nothing was sent: a request transaction commits (or rolls back) now; a
  // COMMIT that fails goes to Fastify's error path, whose handler answers 500 in place of the reply.
  const settling = exchange.settleTransactions(reply.statusCode);
  if (settling === undefined) {
    replied(exchange, payload, done);
    return;
  }
  settling.then(() => replied(exchange, payload, done), (error: unknown) => {
    if (isOpenStream(payload)) payload.destroy(); // the reply it was to carry is dropped
    done(error as Error);
  });
}

function replied(exchange: FastifyExchange, payload: unknown, done: OnSendDone): void {
  // A stream (a cursor) may use the connection until it closes, after the handler returned.
  if (isOpenStream(payload)) exchange.holdBody(payload);
  exchange.replied();
  done(null, payload);
}

function onError(request: FastifyRequest, _reply: FastifyReply, _error: unknown, done: () => void): void {
  Exchange.of(request.raw)?.failed();
  done();
}

function isOpenStream(payload: unknown): payload is Readable {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function' && !(payload as Readable).closed && typeof (payload as Readable).once === 'function';
}
