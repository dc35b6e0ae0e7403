import { Readable } from 'node:stream';
import type { Context, MiddlewareHandler } from 'hono';
import type { GatewayApp, Headers as GatewayHeaders } from '@closeguard/core';
import { mountGateway, type GatewayWriter, type MountOptions } from '@closeguard/node';
import { answerable, bindingsOf } from './connection-closing.ts';

/** Options of `gateway()`: every host's, and a prefix. Durations are milliseconds, sizes bytes. */
export type GatewayOptions = MountOptions;

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
  const serve = mountGateway(app, options, { name: 'hono', writer: honoWriter });
  return (c, next) => {
    const { incoming, outgoing } = bindingsOf(c);
    return serve(incoming, outgoing, c, c) ?? next();
  };
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
