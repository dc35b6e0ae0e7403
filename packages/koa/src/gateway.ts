import type { Context, Middleware, Next } from 'koa';
import type { GatewayApp, Headers } from '@closeguard/core';
import { mountGateway, type GatewayWriter, type MountOptions } from '@closeguard/node';

/** Options of `gateway()`: every host's, and a prefix. Durations are milliseconds, sizes bytes. */
export type GatewayOptions = MountOptions;

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
  const serve = mountGateway(app, options, { name: 'koa', writer: koaWriter });
  return (ctx: Context, next: Next): Promise<void> => serve(ctx.req, ctx.res, ctx, ctx) ?? next();
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
