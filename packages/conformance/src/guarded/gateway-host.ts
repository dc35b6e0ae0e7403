import { transaction, type GatewayApp } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import type { ConformanceHost } from '../host.ts';
import type { GuardedHost, GuardedHostOptions, GuardedRoute } from './host.ts';

/**
 * A guarded host made of a gateway host: the standard routes as one gateway app behind
 * `guard.wrap()`, served by `host` in its protocol. For a driver's author, who needs a host and has
 * no framework to test: `guardedGatewayHost(nodeHost)` serves the routes the way `@closeguard/node` does.
 * @example
 * const nodeHost: ConformanceHost = { name: 'node', protocol: 'http1', listen: (app, options) => listenOn(createServer(requestListener(app, options))) };
 * runGuardedConformance([guardedGatewayHost(nodeHost)], [myDriver]);
 */
export function guardedGatewayHost(host: ConformanceHost): GuardedHost {
  return {
    name: host.name,
    protocol: host.protocol,
    listenGuarded: (options) => host.listen(options.guard.wrap(routesApp(options)), { logger: options.logger, abortGrace: options.guard.abortGrace }),
  };
}

/** Finds the route by method and path; its errors go to `onError` (the app's own "error handler"), then on to the host. */
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

/** One route as a gateway app: JSON with the route's status, or its stream. */
function routeApp(route: GuardedRoute<unknown>, onError: (error: unknown) => void): GatewayApp {
  return async (env, start) => {
    try {
      const body = env.method === 'POST' ? await readJson(env.body) : undefined;
      const value = await route.run((alias) => leasesFor(env.scope)!.get<unknown>(alias ?? 'default'), { query: new URLSearchParams(env.query), body });
      if (route.kind === 'stream') {
        start(200, { 'content-type': route.contentType ?? 'application/octet-stream' });
        return value as AsyncIterable<Uint8Array>;
      }
      start(route.status ?? 200, { 'content-type': 'application/json' });
      return [JSON.stringify(value)];
    } catch (error) {
      onError(error);
      throw error;
    }
  };
}

async function readJson(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}
