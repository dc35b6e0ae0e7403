/**
 * Every error closeguard raises, declared once: its stable code, the HTTP status a host answers
 * with, and how to fix it. A thrown error's message is `<what happened>: <fix>`; a wrong option's
 * or argument's (`CloseguardTypeError`) names it and what it takes, the catalog's fix in its own words.
 */
const catalog = {
  // Setup: options and arguments (thrown as CloseguardTypeError, never a request's answer).
  ERR_CLOSEGUARD_INVALID_OPTION: {
    status: 500,
    fix: 'an option has the wrong type or value; the message names the option and what it takes',
  },
  ERR_CLOSEGUARD_INVALID_ARGUMENT: {
    status: 500,
    fix: 'a function was called with the wrong argument (an app that is not a function, say); the message names it and what it takes',
  },
  // The gateway contract, app side (docs/contract.md, rules 1 and 6).
  ERR_CLOSEGUARD_START_NOT_CALLED: {
    status: 500,
    fix: 'call start(status, headers) before the body yields its first non-empty chunk',
  },
  ERR_CLOSEGUARD_START_TWICE: {
    status: 500,
    fix: 'call start() once; call it again only with its third argument (error) to replace a response that has not been sent',
  },
  ERR_CLOSEGUARD_HEADERS_SENT: {
    status: 500,
    fix: 'the status and headers already went out; an error after the first chunk can only cut the connection',
  },
  ERR_CLOSEGUARD_INVALID_STATUS: { status: 500, fix: 'pass start() an integer status from 100 to 599' },
  ERR_CLOSEGUARD_INVALID_HEADER_NAME: {
    status: 500,
    fix: "header names must be HTTP tokens (letters, digits and !#$%&'*+-.^_`|~)",
  },
  ERR_CLOSEGUARD_INVALID_HEADER_VALUE: {
    status: 500,
    fix: 'header values must be strings of tab, space, visible ASCII or 0x80-0xFF characters (no CR, LF, NUL, other controls or characters above 0xFF); encode them (encodeURIComponent, RFC 8187) before calling start()',
  },
  ERR_CLOSEGUARD_CONTENT_TYPE_FORBIDDEN: {
    status: 500,
    fix: 'a 204 or 304 response has no body, so it must not carry Content-Type; drop the header',
  },
  ERR_CLOSEGUARD_INVALID_CHUNK: {
    status: 500,
    fix: 'yield Uint8Array (Buffer) or string chunks; serialize objects (JSON.stringify) first',
  },
  ERR_CLOSEGUARD_BODY_NOT_ITERABLE: {
    status: 500,
    fix: 'return an iterable or async iterable of chunks, such as an array ([text]) or a generator; a bare string or buffer must be wrapped in an array',
  },
  // The gateway contract, host side (rule 2).
  ERR_CLOSEGUARD_INVALID_ENV: { status: 500, fix: 'the host must pass a complete env; see GatewayEnv in docs/contract.md' },
  ERR_CLOSEGUARD_CLOSE_TWICE: { status: 500, fix: 'the host must call the body\'s close() exactly once' },
  ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE: {
    status: 500,
    fix: 'the host must not call next() after return() or close(); stop iterating first',
  },
  ERR_CLOSEGUARD_BODY_NOT_CLOSED: {
    status: 500,
    fix: "the host must call the body's close() on every path, including errors, hang-ups and HEAD",
  },
  // Requests.
  ERR_CLOSEGUARD_BODY_TOO_LARGE: {
    status: 413,
    fix: 'the request body is larger than the host accepts; raise the bodyLimit option (bytes) or send less',
  },
  ERR_CLOSEGUARD_BODY_CONSUMED: { status: 500, fix: 'env.body can be read once; keep what you read' },
  ERR_CLOSEGUARD_CLIENT_CLOSED: { status: 499, fix: 'the client went away; stop work for this request' },
  ERR_CLOSEGUARD_TIMEOUT: {
    status: 503,
    fix: 'the request ran past its time limit; make the handler faster or raise the timeout',
  },
  ERR_CLOSEGUARD_SHUTDOWN: { status: 503, fix: 'the server is shutting down; retry on another instance' },
  ERR_CLOSEGUARD_CLOSE_TIMEOUT: {
    status: 500,
    fix: 'the body was still awaiting when the request ended, so its cleanup could not run in time; honour env.signal in long awaits, or raise abortGrace (ms)',
  },
  ERR_CLOSEGUARD_NO_ASYNC_CONTEXT: {
    status: 500,
    fix: 'async context tracking is off; pass { asyncContext: true } to the host or middleware, or use env.scope (req.db(), ctx.db(), request.db() in frameworks)',
  },
  // ConnectionClosingMiddleware.
  ERR_CLOSEGUARD_OVERLOADED: {
    status: 503,
    fix: 'more requests arrived than backpressure admits and its queue holds; the client should retry after Retry-After, the operator raise backpressure (with the pool max) or queueLimit',
  },
  ERR_CLOSEGUARD_QUEUE_TIMEOUT: {
    status: 503,
    fix: 'the request waited longer than queueTimeout (ms) for a place; the client should retry after Retry-After, the operator make requests faster or size backpressure to the pool',
  },
  ERR_CLOSEGUARD_ACQUIRE_TIMEOUT: {
    status: 503,
    fix: 'the pool gave no connection in time; check that the database is up and the pool max matches backpressure',
  },
  ERR_CLOSEGUARD_HEALTH_CHECK_FAILED: {
    status: 503,
    fix: 'connection after connection from the pool was unusable or failed the health check, well past the pool max, although the pool could hand them out; check the healthCheck function (it must resolve true for a working connection) and what the database says (a server that accepts connections but fails every query, a proxy that cuts them)',
  },
  ERR_CLOSEGUARD_NO_REQUEST: {
    status: 500,
    fix: 'connection() works only inside a request served through ConnectionClosingMiddleware (wrap(app) or an adapter\'s connectionClosing)',
  },
  ERR_CLOSEGUARD_UNKNOWN_ALIAS: {
    status: 500,
    fix: 'use one of the aliases given in the pools option, or pass a single pool as pool (alias "default")',
  },
  ERR_CLOSEGUARD_REQUEST_ENDED: {
    status: 500,
    fix: 'the request is over, so its connections were given back; do not keep using the request after its response',
  },
  ERR_CLOSEGUARD_COMMIT_FAILED: {
    status: 500,
    fix: "the request's transaction could not be committed (a deferred constraint failed, a statement in it failed, the connection broke) and nothing of it was kept; the cause says what the database said. Fix what failed, or catch the error in your error handler",
  },
  ERR_CLOSEGUARD_TRANSACTION_BEGUN: {
    status: 500,
    fix: 'a route turned request transactions on or off after the request had leased a connection; put transaction() (or the route config) before any middleware that calls db() or queries a GuardedPool',
  },
  ERR_CLOSEGUARD_LEAK: {
    status: 500,
    fix: 'a connection acquired by hand was not released by the end of its request; release it in a finally, or use connection() and let the request give it back',
  },
} as const satisfies Record<string, { status: number; fix: string }>;

/** A stable closeguard error code. */
export type ErrorCode = keyof typeof catalog;

/** The codes of a wrong option or argument, carried by `CloseguardTypeError`. */
type TypeErrorCode = 'ERR_CLOSEGUARD_INVALID_OPTION' | 'ERR_CLOSEGUARD_INVALID_ARGUMENT';

/**
 * A wrong option or argument, thrown synchronously at setup (or at the call): still a `TypeError`,
 * with a stable `code`. Its message names what is wrong and what it takes. It has no `status`: it is
 * a programmer error, not a request's answer, so `isCloseguardError` does not match it.
 */
export class CloseguardTypeError extends TypeError {
  readonly code: TypeErrorCode;

  constructor(code: TypeErrorCode, message: string) {
    super(message);
    this.name = 'CloseguardTypeError';
    this.code = code;
  }
}

/** An error raised by closeguard: `code` is stable, `status` is what a host answers with. */
export class CloseguardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (503s); hosts send it as `Retry-After`. */
  readonly retryAfter: number | undefined;

  /**
   * @param code a catalog code
   * @param what what happened, in a few words; the catalog adds how to fix it
   */
  constructor(code: ErrorCode, what: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(`${what}: ${catalog[code].fix}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CloseguardError';
    this.code = code;
    this.status = catalog[code].status;
    this.retryAfter = options?.retryAfter;
  }

  /** `status`, under the name Fastify's and Koa's error handlers (and most hand-written ones) read. */
  get statusCode(): number {
    return this.status;
  }

  /**
   * Headers a framework's error handler sends with the error (Express's finalhandler, Fastify's and
   * Koa's default handlers read `error.headers`): `Retry-After` when the error has one.
   */
  get headers(): Readonly<Record<string, string>> | undefined {
    return this.retryAfter === undefined ? undefined : { 'retry-after': String(Math.ceil(this.retryAfter)) };
  }
}

/** A breach of the gateway contract, by the app or by the host; `code` names the rule. */
export class ContractError extends CloseguardError {
  constructor(code: ErrorCode, what: string, options?: { cause?: unknown }) {
    super(code, what, options);
    this.name = 'ContractError';
  }
}

/** The HTTP status for an error: its own `status`/`statusCode` when valid (4xx/5xx), else 500. */
export function getErrorStatus(error: unknown): number {
  if (typeof error !== 'object' || error === null) return 500;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const candidate = typeof status === 'number' ? status : statusCode;
  return typeof candidate === 'number' && Number.isInteger(candidate) && candidate >= 400 && candidate <= 599
    ? candidate
    : 500;
}

/**
 * Whether `error` is a closeguard error (with this code): one a host answers with its `status`.
 * A wrong option or argument is a `CloseguardTypeError` instead (test `instanceof` or its `code`).
 */
export function isCloseguardError(error: unknown, code?: ErrorCode): error is CloseguardError {
  return error instanceof CloseguardError && (code === undefined || error.code === code);
}

/** Every code with its status and fix, for docs and tooling. */
export const errorCatalog: Readonly<Record<ErrorCode, { readonly status: number; readonly fix: string }>> = catalog;
