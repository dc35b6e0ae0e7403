import type { ConnectionClosingMiddleware, Logger } from '@closeguard/core';
import type { ListeningServer } from '../host.ts';
import type { Protocol } from '../support/http.ts';

/**
 * The request-owned connection sugar of a framework (`req.db`, `request.db`, `ctx.db`), as the
 * routes call it: the connection of a pool alias, leased on first use. `C` is the driver's
 * connection; the standard routes hand it to their driver fixture and never look inside.
 */
export type Db<C = DbClient> = (alias?: string) => Promise<C>;

/** A pg-style connection (`pg.Client`, `pg.PoolClient`): the default `C` of `Db` and `GuardedRoute`. */
export interface DbClient {
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: T[] }>;
}

/** What a route gets from its request, in the framework's terms turned neutral. */
export interface RouteInput {
  /** The query string's parameters. */
  readonly query: URLSearchParams;
  /** The parsed JSON body of a POST (the framework's own body parser), else undefined. */
  readonly body: unknown;
}

/**
 * How a host must write the route in its framework's own idiom:
 * - `json`: an async handler that awaits `run()` and replies with its value as JSON through the
 *   framework's reply (`res.json(v)`, `return v`, `ctx.body = v`); a rejection goes to the
 *   framework's error path (Express 5 promise rejection, Fastify async throw, Koa throw).
 * - `stream`: an async handler whose `run()` resolves to a byte `Readable`, streamed through the
 *   framework's own response path (Express `pipeline(stream, res)`, Fastify `reply.send(stream)`,
 *   Koa `ctx.body = stream`), with the `content-type` given by the route.
 * - `callback`: a callback-style handler (Express 4 style `next(error)`, Fastify
 *   `reply.send(value)` from a non-async handler); Koa has no callback style: write it as `json`.
 */
export type RouteKind = 'json' | 'stream' | 'callback';

/**
 * One route of the standard set every framework host serves behind its `connectionClosing()`.
 * A host serves any `C`: it passes its framework's `db` through (`(alias) => req.db(alias)`).
 */
export interface GuardedRoute<C = DbClient> {
  readonly method: 'GET' | 'POST';
  /** A literal path, no parameters: `/rows`. */
  readonly path: string;
  readonly kind: RouteKind;
  /** For `stream` routes: the content type to send. */
  readonly contentType?: string;
  /** The route's work: `db` is the framework's sugar for this request (`req.db` …). */
  run(db: Db<C>, input: RouteInput): Promise<unknown>;
  /** The status a `json` or `callback` route answers its value with, through the framework's reply. Default 200. */
  readonly status?: number;
  /**
   * The route's own request-transaction setting, written in the framework's idiom: Fastify's route
   * `config: { closeguard: { transaction } }`; the adapter's `transaction(setting)` route middleware
   * before the handler (Express, Koa, Hono); core's `transaction(setting)(app)` around the route in
   * a gateway app. Undefined: the guard's `transaction` option.
   */
  readonly transaction?: boolean;
}

/** What `listenGuarded` is given. */
export interface GuardedHostOptions {
  /**
   * The guard to install: pass it to the adapter's `connectionClosing()` (which accepts an
   * existing `ConnectionClosingMiddleware` in place of options), so the suite can read its
   * `stats()` and `close()` it.
   */
  readonly guard: ConnectionClosingMiddleware;
  /** The routes to serve, each in the framework's idiom for its `kind`. */
  readonly routes: readonly GuardedRoute<unknown>[];
  /**
   * The framework's own error handler (Express error middleware, Fastify `setErrorHandler`, Koa
   * `app.on('error')`) calls this once for each error it sees, and the error response is the
   * error's status (`getErrorStatus(error)`), else 500, with the error's `headers` (a 503's
   * `Retry-After`, as the frameworks' default handlers send them). Hosts must not swallow or add errors.
   */
  readonly onError: (error: unknown) => void;
  /** Where the adapter and framework log. */
  readonly logger: Logger;
}

/** A host that also serves framework routes behind its `connectionClosing()`. */
export interface GuardedHost {
  /** Shown as the outer `describe`. */
  readonly name: string;
  /** The protocol its clients speak: HTTP/1.1 (the default), or HTTP/2 in cleartext (h2c). */
  readonly protocol?: Protocol;
  /** Serves `routes` behind `connectionClosing(guard)` on 127.0.0.1, port 0, in its `protocol`. */
  listenGuarded(options: GuardedHostOptions): Promise<ListeningServer>;
}
