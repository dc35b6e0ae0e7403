import type { Context, Middleware, Next } from 'koa';
import { CloseguardTypeError, type GatewayApp, type Headers } from '@closeguard/core';
import { checkGatewayOptions, createEnv, Exchange, serveGateway, type GatewayOptions as HostGatewayOptions, type GatewaySettings, type GatewayWriter } from '@closeguard/node';

/** Options of `gateway()`: every host's, and a prefix. Durations are milliseconds, sizes bytes. */
export interface GatewayOptions extends HostGatewayOptions {
  /** Serve only paths under this prefix (`/api` serves `/api` and `/api/…`), with the prefix stripped from `env.path`; other requests go on to `next()`. Default: every path. */
  prefix?: string;
}

type Settings = GatewaySettings & { prefix: string };

/**
 * Mounts a gateway app in Koa: `app.use(gateway(gatewayApp))`. The app's body becomes `ctx.body`
 * as a byte `Readable`, so Koa's own response path (and koa-compress, loggers) sends it; its
 * `close()` runs exactly once on every path. A failure before the headers is thrown to Koa's
 * error path; one after them cuts the connection. Behind `connectionClosing()`, the app shares the
 * request's scope, so `leasesFor(env.scope)` and `connection()` work in it.
 * @throws TypeError synchronously when `app` is not a function or an option is wrong, naming it.
 * @example
 * app.use(connectionClosing({ pool }));
 * app.use(gateway(gatewayApp, { prefix: '/legacy' }));
 */
export function gateway(app: GatewayApp, options?: GatewayOptions): Middleware {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `gateway(app) takes a gateway app function; received ${typeof app}`);
  const settings = checkOptions(options);
  return (ctx: Context, next: Next): Promise<void> => {
    const url = mountedUrl(ctx, settings.prefix);
    if (url === undefined) return next();
    return serve(app, ctx, url, settings);
  };
}

async function serve(app: GatewayApp, ctx: Context, url: string, settings: Settings): Promise<void> {
  const { req, res } = ctx;
  // Behind connectionClosing(), its exchange (and the leases on its scope) is this request's.
  const shared = Exchange.of(req);
  const exchange = shared ?? Exchange.start(req, res, undefined, { logger: settings.logger, abortGrace: settings.abortGrace, driven: true }, Exchange);
  const env = createEnv(req, { name: 'koa', native: ctx, url }, exchange.innermost.scope, settings.bodyLimit);
  if (shared !== undefined) return serveGateway(app, env, exchange, koaWriter, ctx, settings);
  try {
    await serveGateway(app, env, exchange, koaWriter, ctx, settings);
  } catch (error) {
    exchange.settled(error);
    throw error;
  }
  exchange.settled();
}

/** Writes through Koa: the body becomes `ctx.body`, so Koa's own response path (and koa-compress, loggers) sends it. */
const koaWriter: GatewayWriter<Context> = {
  send(ctx, status, headers, body) {
    ctx.status = status;
    setHeaders(ctx, headers); // Node refuses a header value outside Latin-1 here: Koa clears what was set and answers 500
    if (body !== undefined) ctx.body = body;
  },
  fail(_ctx, error) {
    throw error; // Koa's error path: app 'error', then its error response
  },
};

/** Sets the app's status headers through Koa; a name given twice (pairs) keeps every value. */
function setHeaders(ctx: Context, headers: Headers): void {
  if (!Array.isArray(headers)) {
    const object = headers as Readonly<Record<string, string | readonly string[]>>;
    for (const name in object) ctx.set(name, object[name] as string | string[]);
    return;
  }
  const merged = new Map<string, string[]>();
  for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
    const key = name.toLowerCase();
    const values = merged.get(key);
    if (values) values.push(value);
    else merged.set(key, [value]);
  }
  for (const [name, values] of merged) ctx.set(name, values.length === 1 ? values[0]! : values);
}

/** The URL the app sees: the request's, or with the prefix stripped; undefined outside the prefix. */
function mountedUrl(ctx: Context, prefix: string): string | undefined {
  if (prefix === '') return ctx.url;
  const path = ctx.path;
  if (!path.startsWith(prefix) || (path.length > prefix.length && path[prefix.length] !== '/')) return undefined;
  return (path.slice(prefix.length) || '/') + ctx.search;
}

function checkOptions(options: GatewayOptions | undefined): Settings {
  const settings = checkGatewayOptions(options);
  const prefix = options?.prefix;
  if (prefix !== undefined && (typeof prefix !== 'string' || !prefix.startsWith('/'))) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `gateway option prefix must be a path starting with '/'; received ${String(prefix)}`);
  }
  return { ...settings, prefix: prefix === undefined ? '' : prefix.replace(/\/+$/, '') };
}
