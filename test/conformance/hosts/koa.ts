import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import Koa, { type Context } from 'koa';
import type { GatewayApp } from '@closeguard/core';
import { gateway, connectionClosing, transaction, type GatewayOptions } from '@closeguard/koa';
import { listenOn, type ConformanceHost, type DbClient, type GuardedHost, type GuardedHostOptions, type GuardedRoute, type HostOptions, type ListeningServer, type RouteInput } from '@closeguard/conformance';

/**
 * `gateway(app)` mounted at the root of a Koa app, with Koa's own error path: an app 'error'
 * listener that logs (it replaces Koa's default stderr logging), and Koa's error response (the
 * error's status, a generic text body, never the message, since closeguard's errors are not `expose`).
 */
export const koaHost: ConformanceHost = {
  name: 'koa',
  protocol: 'http1',
  listen: (app, options) => serve(gatewayKoa(app, options)),
};

/** The same app on `http2.createServer(koa.callback())`: HTTP/2 in cleartext (h2c), `ctx.req`/`ctx.res` from the compatibility API. */
export const koaHttp2Host: ConformanceHost = {
  name: 'koa/http2',
  protocol: 'http2',
  listen: (app, options) => serveHttp2(gatewayKoa(app, options)),
};

function gatewayKoa(app: GatewayApp, options: HostOptions): Koa {
  const koa = new Koa();
  koa.on('error', (error: unknown) => options.logger?.error('koa: request failed', error));
  koa.use(gateway(app, gatewayOptions(options)));
  return koa;
}

/**
 * The standard routes behind `connectionClosing(guard)`, in Koa's idiom: `ctx.body = value` for
 * JSON, `ctx.body = stream` for streams, thrown errors for failures (Koa has no callback style).
 */
export const koaGuardedHost: GuardedHost = {
  name: 'koa',
  protocol: 'http1',
  listenGuarded: (options) => serve(guardedKoa(options)),
};

/** The same routes on `http2.createServer(koa.callback())`: HTTP/2 in cleartext (h2c). */
export const koaGuardedHttp2Host: GuardedHost = {
  name: 'koa/http2',
  protocol: 'http2',
  listenGuarded: (options) => serveHttp2(guardedKoa(options)),
};

function guardedKoa({ guard, routes, onError, logger }: GuardedHostOptions): Koa {
  const koa = new Koa();
  // Koa reports a stream error twice (the same object): the handler sees each error once.
  const seen = new WeakSet<object>();
  koa.on('error', (error: unknown) => {
    if (typeof error === 'object' && error !== null) {
      if (seen.has(error)) return;
      seen.add(error);
    }
    onError(error);
  });
  koa.use(connectionClosing(guard, { logger }));
  koa.use(routesMiddleware(routes));
  return koa;
}

function routesMiddleware(routes: readonly GuardedRoute[]): Koa.Middleware {
  const table = new Map(routes.map((route) => [`${route.method} ${route.path}`, route]));
  return async (ctx, next) => {
    const route = table.get(`${ctx.method} ${ctx.path}`);
    if (!route) {
      await next();
      return;
    }
    const serve = async (): Promise<void> => {
      const input: RouteInput = { query: new URLSearchParams(ctx.querystring), body: ctx.method === 'POST' ? await readJson(ctx.req) : undefined };
      const value = await route.run((alias) => ctx.db<DbClient>(alias), input);
      if (route.kind === 'stream') {
        ctx.type = route.contentType ?? 'application/octet-stream';
        ctx.body = value;
      } else {
        respondJson(ctx, value, route.status);
      }
    };
    // A route's own transaction setting: the adapter's route middleware in front of it.
    await (route.transaction === undefined ? serve() : transaction(route.transaction)(ctx, serve));
  };
}

function respondJson(ctx: Context, value: unknown, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(value);
}

/** A minimal JSON body parser (Koa has none built in). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

function gatewayOptions({ abortGrace, bodyLimit, logger }: HostOptions): GatewayOptions {
  return {
    ...(abortGrace !== undefined && { abortGrace }),
    ...(bodyLimit !== undefined && { bodyLimit }),
    ...(logger !== undefined && { logger }),
  };
}

/** Koa's request handler on `http.createServer`, port 0. */
function serve(koa: Koa): Promise<ListeningServer> {
  const handle = koa.callback();
  return listenOn(createServer((req, res) => void handle(req, res)));
}

/** Koa's request handler on `http2.createServer` (h2c), port 0, as Koa's docs show it. */
function serveHttp2(koa: Koa): Promise<ListeningServer> {
  const handle = koa.callback();
  return listenOn(createH2cServer((req, res) => void handle(req, res)));
}
