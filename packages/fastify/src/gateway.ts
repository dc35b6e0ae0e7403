import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createEnv } from '@closeguard/node';
import { CloseguardTypeError, type GatewayApp, type Logger } from '@closeguard/core';
import { drive, type HostEnv } from '@closeguard/core/host';
import { checkGatewayOptions, type GatewayOptions, type GatewaySettings } from './gateway-options.ts';
import { sendDriven, type Ending } from './gateway-reply.ts';
import { kState, RequestState, watchResponse, type Carrier } from './state.ts';

/** Options of `fastify.register(gateway, { app, prefix, ...options })`. */
export interface GatewayPluginOptions extends GatewayOptions {
  /** The gateway app to serve. */
  app: GatewayApp;
  /** Where to mount it (Fastify's own register option); `env.path` is relative to it. */
  prefix?: string;
}

/**
 * Mounts a gateway app in Fastify, as an encapsulated plugin: every method and path under its
 * prefix. The request body reaches the app untouched as `env.body` (this plugin's content-type
 * parser passes it through), the response body goes out through `reply.send(stream)` (so
 * @fastify/compress and Fastify's logging see it), and the app's `close()` runs exactly once on
 * every path. Behind `connectionClosing`, the app shares the request's scope: `leasesFor(env.scope)`
 * and `connection()` work in it.
 * @throws TypeError (when Fastify loads the plugin) when `app` is not a function or an option is wrong.
 * @example
 * await fastify.register(gateway, { app: myGatewayApp, prefix: '/legacy' });
 */
export function gateway(fastify: FastifyInstance, options: GatewayPluginOptions, done: (error?: Error) => void): void {
  const { app } = options;
  let settings: GatewaySettings;
  try {
    if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `gateway takes option app, a gateway app function; received ${typeof app}`);
    settings = checkGatewayOptions(options, fastify.initialConfig.bodyLimit ?? DEFAULT_BODY_LIMIT_BYTES);
  } catch (error) {
    done(error as Error); // a TypeError naming the option, from register()/ready()
    return;
  }
  // The app reads the raw body itself: no parser of this context may consume it.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', passThrough);
  const handler = createHandler(app, settings, fastify.prefix);
  fastify.all('/', handler);
  fastify.all('/*', handler);
  done();
}

function passThrough(_request: FastifyRequest, _payload: unknown, done: (error: Error | null, body?: unknown) => void): void {
  done(null);
}

/** Fastify's own default `bodyLimit`, should its config not say. */
const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

function createHandler(app: GatewayApp, settings: GatewaySettings, prefix: string): (request: FastifyRequest, reply: FastifyReply) => void {
  return function gatewayHandler(request: FastifyRequest, reply: FastifyReply): void {
    const raw = request.raw as Carrier;
    let state = raw[kState];
    if (state === undefined) {
      // No connectionClosing in front: the gateway follows the request itself.
      state = new RequestState({ method: raw.method ?? 'GET', url: raw.url ?? '/', logger: settings.logger, abortGrace: settings.abortGrace, driven: true, reply });
      raw[kState] = state;
      watchResponse(state, reply.raw);
    }
    state.adopt(); // the gateway reports the request's end itself, once the app's body closed
    const env = createEnv(raw, { name: 'fastify', native: { request, reply }, url: mounted(raw.url ?? '/', prefix) }, state.scope, settings.bodyLimit);
    const ended = state;
    serve(app, env, reply, settings).then(
      (ending) => end(ended, ending, reply, env, settings.logger),
      (error: unknown) => {
        ended.scope.report(error, 'write');
        ended.finished(error);
      },
    );
  };
}

/** Drives the app and hands its answer to Fastify; resolves with how the body ended. */
async function serve(app: GatewayApp, env: HostEnv, reply: FastifyReply, settings: GatewaySettings): Promise<Ending> {
  const driven = await drive(app, env, settings);
  if (driven.ok) return sendDriven(driven, env, reply);
  if (driven.outcome === 'error') {
    // Before the headers: Fastify's error path (onError, setErrorHandler) answers it.
    reply.send(driven.error instanceof Error ? driven.error : new Error(String(driven.error), { cause: driven.error }));
  } else if (!reply.raw.destroyed) {
    reply.raw.destroy(); // aborted or timed out: there is no one to answer
  }
  return { outcome: driven.outcome, error: driven.error, answered: driven.outcome === 'error' };
}

function end(state: RequestState, { outcome, error, answered }: Ending, reply: FastifyReply, env: HostEnv, logger: Logger): void {
  if (outcome === 'error') {
    state.failed();
    // After the headers Fastify cut the connection and has no one to tell: we log it. (Before
    // them, Fastify's error handler answered — and so sent headers — and logged it itself.)
    if (!answered && reply.raw.headersSent) logger.error(`closeguard: ${env.method} ${env.url} failed after the headers were sent`, error);
  }
  // A body stuck at an await past abortGrace: its connections are destroyed, not released.
  if (outcome === 'timeout') void state.scope.close('timeout');
  state.finished();
}

/** The URL as the app sees it: relative to the mount point. */
function mounted(url: string, prefix: string): string {
  if (prefix === '' || !url.startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  if (rest === '') return '/';
  return rest.startsWith('?') ? `/${rest}` : rest;
}
