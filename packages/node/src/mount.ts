import { CloseguardTypeError, type GatewayApp } from '@closeguard/core';
import { createEnv, type EnvSource, type NodeRequest } from './env.ts';
import { Exchange } from './exchange.ts';
import { checkGatewayOptions, type GatewayOptions, type GatewaySettings } from './options.ts';
import type { NodeResponse } from './respond.ts';
import { serveGateway, type GatewayWriter } from './serve.ts';

/** Options of a framework's `gateway(app, options)`: every host's, and a prefix. Durations are milliseconds, sizes bytes. */
export interface MountOptions extends GatewayOptions {
  /** Serve only paths under this prefix (`/api` serves `/api` and `/api/…`), with the prefix stripped from `env.path`; other requests go on to `next()`. Default: every path. */
  prefix?: string | undefined;
}

/** The framework a gateway is mounted in: its name (`env.host.name`) and how it writes an answer. */
export interface MountHost<Target> {
  name: string;
  writer: GatewayWriter<Target>;
  /** The framework's own request body limit, the default of `bodyLimit` (Fastify's). Default 1 MiB. */
  bodyLimit?: number | undefined;
  /**
   * The framework does not follow the promise `serve` returns (a Fastify route handler): `serve`
   * settles the request's exchange itself also behind a guard, and reports a rejection on the
   * request's scope (`requestException`, the logger) instead of returning it. Default false.
   */
  settles?: boolean | undefined;
}

/**
 * Serves one request of the framework, or returns undefined when its URL is outside the prefix
 * (call the framework's `next()`). `native` becomes `env.host.native`; `target` is the writer's.
 */
export type MountedGateway<Target> = (req: NodeRequest, res: NodeResponse, native: unknown, target: Target) => Promise<void> | undefined;

/**
 * A gateway app mounted in a framework, its app and options checked once: what every adapter's
 * `gateway(app, options)` is made of. Per request, under the prefix, it serves the app with
 * `serveGateway()` on the URL relative to the mount point: behind `connectionClosing()` in the
 * request's exchange, in its innermost guard's scope (the returned promise is part of the guard's
 * chain, which settles the request); alone in an exchange of its own, which it settles itself
 * once the answer is handed over (see `MountHost.settles` for a framework that follows no promise).
 * Rejects with what `writer.fail` throws (Koa's, Hono's error path).
 * @throws CloseguardTypeError synchronously when `app` is not a function (`ERR_CLOSEGUARD_INVALID_ARGUMENT`) or an option is wrong (`ERR_CLOSEGUARD_INVALID_OPTION`), naming it.
 * @example
 * const serve = mountGateway(app, options, { name: 'koa', writer: koaWriter });
 * return (ctx, next) => serve(ctx.req, ctx.res, ctx, ctx) ?? next();
 */
export function mountGateway<Target>(app: GatewayApp, options: MountOptions | undefined, host: MountHost<Target>): MountedGateway<Target> {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `gateway(app) takes a gateway app function; received ${typeof app}`);
  const settings = checkGatewayOptions(options, host.bodyLimit);
  const prefix = checkPrefix(options?.prefix);
  return (req, res, native, target) => {
    const url = mountedUrl(req.url ?? '/', prefix);
    return url === undefined ? undefined : serve(app, req, res, { name: host.name, native, url }, host, target, settings);
  };
}

function serve<Target>(app: GatewayApp, req: NodeRequest, res: NodeResponse, source: EnvSource, host: MountHost<Target>, target: Target, settings: GatewaySettings): Promise<void> {
  // Behind connectionClosing(), its exchange (and the leases on its scope) is this request's.
  const shared = Exchange.of(req);
  const exchange = shared ?? Exchange.start(req, res, undefined, { logger: settings.logger, abortGrace: settings.abortGrace, driven: true }, Exchange);
  const env = createEnv(req, source, exchange.innermost.scope, settings.bodyLimit);
  const served = serveGateway(app, env, exchange, host.writer, target, settings);
  const settles = host.settles === true;
  if (shared !== undefined && !settles) return served;
  return served.then(
    () => exchange.settled(),
    (error: unknown) => {
      if (settles) exchange.scope.report(error, 'write');
      exchange.settled(error);
      if (!settles) throw error;
    },
  );
}

/** The URL the app sees: Node's request URL, or with the prefix stripped; undefined outside the prefix. */
function mountedUrl(url: string, prefix: string): string | undefined {
  if (prefix === '') return url;
  const rest = url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
  if (rest === undefined || (rest !== '' && rest[0] !== '/' && rest[0] !== '?')) return undefined;
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest;
}

/** The prefix without trailing slashes, '' for none. */
function checkPrefix(prefix: string | undefined): string {
  if (prefix === undefined) return '';
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `gateway option prefix must be a path starting with '/'; received ${String(prefix)}`);
  }
  return prefix.replace(/\/+$/, '');
}
