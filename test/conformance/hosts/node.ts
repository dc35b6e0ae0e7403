import { createServer } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import type { Readable } from 'node:stream';
import { transaction, type GatewayApp } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { requestListener, type RequestListenerOptions } from '@closeguard/node';
import { guardedGatewayHost, listenOn, type ConformanceHost, type Db, type DbClient, type GuardedHost, type GuardedHostOptions, type GuardedRoute, type HostOptions } from '@closeguard/conformance';

/** `requestListener(app)` on `http.createServer`: HTTP/1.1. */
export const nodeHttp1Host: ConformanceHost = {
  name: 'node/http1',
  protocol: 'http1',
  listen: (app, options) => listenOn(createServer(requestListener(app, listenerOptions(options)))),
};

/** `requestListener(app)` on `http2.createServer`: HTTP/2 in cleartext (h2c), the compatibility API. */
export const nodeHttp2Host: ConformanceHost = {
  name: 'node/http2',
  protocol: 'http2',
  listen: (app, options) => listenOn(createH2cServer(requestListener(app, listenerOptions(options)))),
};

/** The standard routes as one gateway app behind `guard.wrap()`, on node:http2 (h2c). */
export const nodeGuardedHttp2Host: GuardedHost = guardedGatewayHost(nodeHttp2Host);

/** The standard routes as one gateway app behind `guard.wrap()`, on node:http. */
export const nodeGuardedHost: GuardedHost = {
  name: 'node',
  protocol: 'http1',
  listenGuarded: (options) => listenOn(createServer(requestListener(options.guard.wrap(routesApp(options)), { logger: options.logger, abortGrace: options.guard.abortGrace }))),
};

function routesApp({ routes, onError }: GuardedHostOptions): GatewayApp {
  return (env, start) => {
    const route = routes.find(({ method, path }) => method === env.method && path === env.path);
    if (!route) {
      start(404, { 'content-type': 'text/plain' });
      return ['not found'];
    }
    // A route's own transaction setting: core's transaction() around its app.
    const app = routeApp(route, onError);
    return route.transaction === undefined ? app(env, start) : transaction(route.transaction)(app)(env, start);
  };
}

function routeApp(route: GuardedRoute, onError: (error: unknown) => void): GatewayApp {
  return async (env, start) => {
    const db: Db = (alias) => leasesFor(env.scope)!.get<DbClient>(alias ?? 'default');
    try {
      const body = env.method === 'POST' ? await readJson(env.body) : undefined;
      const value = await route.run(db, { query: new URLSearchParams(env.query), body });
      if (route.kind === 'stream') {
        start(200, { 'content-type': route.contentType ?? 'application/octet-stream' });
        return value as Readable;
      }
      start(route.status ?? 200, { 'content-type': 'application/json' });
      return [JSON.stringify(value)];
    } catch (error) {
      onError(error); // the node host's "error handler": the app's own catch
      throw error;
    }
  };
}

async function readJson(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

function listenerOptions({ abortGrace, bodyLimit, logger }: HostOptions): RequestListenerOptions {
  return {
    ...(abortGrace !== undefined && { abortGrace }),
    ...(bodyLimit !== undefined && { bodyLimit }),
    ...(logger !== undefined && { logger }),
  };
}
