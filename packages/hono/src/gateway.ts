import { Readable } from 'node:stream';
import type { Context, MiddlewareHandler } from 'hono';
import { CloseguardTypeError, type GatewayApp, type Headers as GatewayHeaders } from '@closeguard/core';
import { checkGatewayOptions, createEnv, Exchange, serveGateway, type GatewayOptions as HostGatewayOptions, type GatewaySettings, type GatewayWriter, type NodeRequest, type NodeResponse } from '@closeguard/node';
import { answerable, bindingsOf } from './connection-closing.ts';

/** Options of `gateway()`: every host's, and a prefix. Durations are milliseconds, sizes bytes. */
export interface GatewayOptions extends HostGatewayOptions {
  /** Serve only paths under this prefix (`/api` serves `/api` and `/api/…`), with the prefix stripped from `env.path`; other requests go on to `next()`. Default: every path. */
  prefix?: string;
}

type Settings = GatewaySettings & { prefix: string };

/**
 * Mounts a gateway app in Hono: `app.all('/legacy/*', gateway(legacyApp, { prefix: '/legacy' }))`.
 * The app's answer becomes `c.res`, a `Response` whose body is a web stream of the app's body, so
 * Hono's own response path (hono/compress, loggers) sends it; a hang-up cancels that stream, which
 * closes the body — its `close()` runs exactly once on every path. A failure before the headers is
 * thrown to Hono's error path (`app.onError`); one after them cuts the connection. Behind
 * `connectionClosing()`, the app shares the request's scope: `leasesFor(env.scope)` and
 * `connection()` work in it.
 * @throws CloseguardTypeError synchronously when `app` is not a function (`ERR_CLOSEGUARD_INVALID_ARGUMENT`) or an option is wrong (`ERR_CLOSEGUARD_INVALID_OPTION`), naming it.
 * @example
 * app.use(connectionClosing({ pool }));
 * app.all('/legacy/*', gateway(legacyApp, { prefix: '/legacy' }));
 */
export function gateway(app: GatewayApp, options?: GatewayOptions): MiddlewareHandler {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `gateway(app) takes a gateway app function; received ${typeof app}`);
  const settings = checkOptions(options);
  return (c, next) => {
    const { incoming, outgoing } = bindingsOf(c);
    const url = mountedUrl(incoming.url ?? '/', settings.prefix);
    return url === undefined ? next() : serve(app, c, incoming, outgoing, url, settings);
  };
}

async function serve(app: GatewayApp, c: Context, req: NodeRequest, res: NodeResponse, url: string, settings: Settings): Promise<void> {
  // Behind connectionClosing(), its exchange (and the leases on its scope) is this request's.
  const shared = Exchange.of(req);
  const exchange = shared ?? Exchange.start(req, res, undefined, { logger: settings.logger, abortGrace: settings.abortGrace, driven: true }, Exchange);
  const env = createEnv(req, { name: 'hono', native: c, url }, exchange.innermost.scope, settings.bodyLimit);
  if (shared !== undefined) return serveGateway(app, env, exchange, honoWriter, c, settings);
  try {
    await serveGateway(app, env, exchange, honoWriter, c, settings);
  } catch (error) {
    exchange.settled(error);
    throw error;
  }
  exchange.settled();
}

/** Writes through Hono: a `Response` as `c.res` (cancelling its web stream destroys the body); a failure is thrown to `onError`. */
const honoWriter: GatewayWriter<Context> = {
  send(c, status, headers, body) {
    c.res = new Response(body === undefined ? null : (Readable.toWeb(body) as never), { status, headers: webHeaders(headers) });
  },
  fail(_c, error) {
    answerable(error);
  },
};

/** The app's headers as web `Headers` (which refuse a value outside Latin-1 or with CR/LF: the answer is then a 500). */
function webHeaders(headers: GatewayHeaders): Headers {
  const web = new Headers();
  if (Array.isArray(headers)) for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) web.append(name, value);
  else for (const [name, value] of Object.entries(headers as Readonly<Record<string, string | readonly string[]>>)) for (const one of [value].flat()) web.append(name, one);
  return web;
}

/** The URL the app sees: Node's request URL, or with the prefix stripped; undefined outside the prefix. */
function mountedUrl(url: string, prefix: string): string | undefined {
  if (prefix === '') return url;
  const rest = url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
  if (rest === undefined || (rest !== '' && rest[0] !== '/' && rest[0] !== '?')) return undefined;
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest;
}

function checkOptions(options: GatewayOptions | undefined): Settings {
  const settings = checkGatewayOptions(options);
  const prefix = options?.prefix;
  if (prefix !== undefined && (typeof prefix !== 'string' || !prefix.startsWith('/'))) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `gateway option prefix must be a path starting with '/'; received ${String(prefix)}`);
  }
  return { ...settings, prefix: prefix === undefined ? '' : prefix.replace(/\/+$/, '') };
}
