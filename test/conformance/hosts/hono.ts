import { createServer as createH2cServer } from 'node:http2';
import { Readable } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { HTTPResponseError } from 'hono/types';
import type { GatewayApp } from '@closeguard/core';
import { connectionClosing, gateway, transaction, type ConnectionClosingEnv, type GatewayOptions } from '@closeguard/hono';
import { listenOn, type ConformanceHost, type DbClient, type GuardedHost, type GuardedHostOptions, type GuardedRoute, type HostOptions, type ListeningServer } from '@closeguard/conformance';

/**
 * `gateway(app)` mounted at the root of a Hono app on `@hono/node-server`, with Hono's own error
 * path: an `onError` that logs, then answers as Hono's default handler does (an error's
 * `getResponse()`, else a generic 500).
 */
export const honoHost: ConformanceHost = {
  name: 'hono',
  protocol: 'http1',
  listen: (app, options) => serve(gatewayHono(app, options), false),
};

/** The same app on `@hono/node-server` with `http2.createServer`: HTTP/2 in cleartext (h2c). */
export const honoHttp2Host: ConformanceHost = {
  name: 'hono/http2',
  protocol: 'http2',
  listen: (app, options) => serve(gatewayHono(app, options), true),
};

function gatewayHono(app: GatewayApp, options: HostOptions): Hono {
  const hono = new Hono();
  hono.onError(defaultAnswer((error) => options.logger?.error('hono: request failed', error)));
  hono.use(gateway(app, gatewayOptions(options)));
  return hono;
}

/**
 * The standard routes behind `connectionClosing(guard)`, in Hono's idiom: `c.json(value)` for JSON,
 * `c.body(Readable.toWeb(stream))` for a stream, thrown errors for failures (Hono has no callback
 * style), `c.req.text()` for a POST body.
 */
export const honoGuardedHost: GuardedHost = {
  name: 'hono',
  protocol: 'http1',
  listenGuarded: (options) => serve(guardedHono(options), false),
};

/** The same routes on `@hono/node-server` with `http2.createServer`: HTTP/2 in cleartext (h2c). */
export const honoGuardedHttp2Host: GuardedHost = {
  name: 'hono/http2',
  protocol: 'http2',
  listenGuarded: (options) => serve(guardedHono(options), true),
};

function guardedHono({ guard, routes, onError, logger }: GuardedHostOptions): App {
  const hono = new Hono().use(connectionClosing(guard, { logger }));
  hono.onError(defaultAnswer(onError));
  for (const route of routes) {
    // A route's own transaction setting: the adapter's route middleware before the handler.
    if (route.transaction === undefined) hono.on(route.method, route.path, (c) => answer(c, route));
    else hono.on(route.method, route.path, transaction(route.transaction), (c) => answer(c, route));
  }
  return hono;
}

async function answer(c: Context<ConnectionClosingEnv>, route: GuardedRoute): Promise<Response> {
  const text = c.req.method === 'POST' ? await c.req.text() : '';
  const input = { query: new URL(c.req.url).searchParams, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  const value = await route.run((alias) => c.var.db<DbClient>(alias), input);
  if (route.kind !== 'stream') return c.json(value, (route.status ?? 200) as 200);
  return c.body(Readable.toWeb(value as Readable) as never, 200, { 'content-type': route.contentType ?? 'application/octet-stream' });
}

/** An `onError` that tells `seen`, then answers as Hono's default handler does. */
function defaultAnswer(seen: (error: unknown) => void): (error: Error | HTTPResponseError, c: Context) => Response {
  return (error, c) => {
    seen(error);
    if ('getResponse' in error) {
      const res = error.getResponse();
      return c.newResponse(res.body, res);
    }
    return c.text('Internal Server Error', 500);
  };
}

function gatewayOptions({ abortGrace, bodyLimit, logger }: HostOptions): GatewayOptions {
  return {
    ...(abortGrace !== undefined && { abortGrace }),
    ...(bodyLimit !== undefined && { bodyLimit }),
    ...(logger !== undefined && { logger }),
  };
}

/** What `@hono/node-server` serves: an app's `fetch`. */
type App = { fetch: Parameters<typeof createAdaptorServer>[0]['fetch'] };

/** `@hono/node-server`'s server for the app (node:http, or node:http2 in cleartext), port 0. */
function serve(hono: App, http2: boolean): Promise<ListeningServer> {
  const server = http2 ? createAdaptorServer({ fetch: hono.fetch, createServer: createH2cServer }) : createAdaptorServer({ fetch: hono.fetch });
  return listenOn(server);
}
