/**
 * The gateway contract: the Node analogue of WSGI. An app is called with the request's `env` and a
 * `start` function, and answers with an iterable body that may carry a `close()`; the host sends
 * the body and calls `close()` exactly once, whatever happens to the request.
 * See docs/contract.md for the normative text.
 */

/** One piece of a response body: bytes, or a string sent as UTF-8. */
export type Chunk = Uint8Array | string;

/** Response headers: an object (a value may be a list) or a list of `[name, value]` pairs. */
export type Headers =
  | Readonly<Record<string, string | readonly string[]>>
  | ReadonlyArray<readonly [string, string]>;

/**
 * Sets the response status and headers. Call it before the body yields its first non-empty chunk.
 * Until that chunk is sent, it may be called again with `error` to replace the response.
 */
export type StartResponse = (status: number, headers: Headers, error?: unknown) => void;

/** An app's answer: an iterable of chunks, with an optional `close()` the host calls exactly once. */
export type GatewayBody = (Iterable<Chunk> | AsyncIterable<Chunk>) & {
  close?(): void | Promise<void>;
};

/** A gateway application. */
export type GatewayApp = (env: GatewayEnv, start: StartResponse) => GatewayBody | Promise<GatewayBody>;

/** Wraps a gateway app in another (a gateway middleware). */
export type GatewayMiddleware = (app: GatewayApp) => GatewayApp;

/** Why a request's scope closed. */
export type CloseReason = 'complete' | 'error' | 'aborted' | 'timeout' | 'shutdown';

/** The reasons a request can be cut short; they abort the scope's signal. */
export type AbortReason = Exclude<CloseReason, 'complete' | 'error'>;

/** A cleanup registered with `scope.defer()`. */
export type Cleanup = () => void | Promise<void>;

/** Where errors that must not reach the server go (console and pino loggers fit). */
export interface Logger {
  error(...args: unknown[]): void;
}

/**
 * One request's resources: its AbortSignal, its deferred cleanups (and, with
 * ConnectionClosingMiddleware, its leases). Closed exactly once when the request is over.
 */
export interface RequestScope {
  /** A number unique within the process. */
  readonly id: number;
  /** The request's method and URL, for reports. */
  readonly method: string;
  readonly url: string;
  /** The route that served the request, when a framework adapter knows it. */
  route: string | undefined;
  /** `performance.now()` when the request entered. */
  readonly startedAt: number;
  /** Aborts when the client goes away, a timeout hits, or the server shuts down. */
  readonly signal: AbortSignal;
  /** The reason the scope closed, once it has. */
  readonly closeReason: CloseReason | undefined;
  /** Whether `close()` has been called. */
  readonly closed: boolean;
  /** Registers a cleanup; cleanups run last-in-first-out at close, each isolated from the others. */
  defer(cleanup: Cleanup): void;
  /** Aborts the signal with a coded reason (once; later calls do nothing). */
  abort(reason: AbortReason): void;
  /** Runs every cleanup once, then fires `requestFinished`. Later calls return the same promise. */
  close(reason: CloseReason): Promise<void>;
  /** Reports an error that must not reach the server: `requestException` and the logger. */
  report(error: unknown, phase: ErrorPhase): void;
}

/** Where an error reported through `requestException` happened. */
export type ErrorPhase = 'app' | 'iterate' | 'return' | 'close' | 'cleanup' | 'write' | 'subscriber' | 'hook';

/** The request as an app sees it. */
export interface GatewayEnv {
  method: string;
  /** The request target as received: path and query. */
  url: string;
  path: string;
  /** The query string without `?`, or ''. */
  query: string;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The request body, readable once. */
  body: AsyncIterable<Uint8Array>;
  /** Aborts when the client goes away, a timeout hits, or shutdown. */
  signal: AbortSignal;
  remoteAddress: string | undefined;
  scheme: 'http' | 'https';
  httpVersion: string;
  /** This request's resources. */
  scope: RequestScope;
  /** Escape hatch to the framework's own objects. */
  host: { name: string; native: unknown };
}

/**
 * Declare the type of your connections once, and `connection()`, `req.db()`, `request.db()` and
 * `ctx.db()` return it without a type argument. `@closeguard/pg` registers `pg.Client`.
 * @example
 * declare module '@closeguard/core' {
 *   interface Register { connection: MyClient }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by declaration merging
export interface Register {}

/** The connection type declared in `Register`, else `unknown`. */
export type RegisteredConnection = Register extends { connection: infer C } ? C : unknown;
