import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CloseguardTypeError, type GatewayApp } from '@closeguard/core';
import { Exchange, headerRecord, mountGateway, type GatewayOptions, type GatewayWriter, type MountedGateway, type MountHost } from '@closeguard/node';
import { FastifyExchange } from './settle.ts';

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
  const host: MountHost<FastifyReply> = { name: 'fastify', writer: fastifyWriter, bodyLimit: fastify.initialConfig.bodyLimit, settles: true };
  let mounted: MountedGateway<FastifyReply>;
  let unmounted: MountedGateway<FastifyReply>;
  try {
    if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `gateway takes option app, a gateway app function; received ${typeof app}`);
    mounted = mountGateway(app, { ...options, prefix: fastify.prefix || undefined }, host);
    // A URL Fastify routed here that does not start with the prefix (caseSensitive: false, duplicate slashes) is served as it is.
    unmounted = mountGateway(app, { ...options, prefix: undefined }, host);
  } catch (error) {
    done(error as Error); // a TypeError naming the option, from register()/ready()
    return;
  }
  // The app reads the raw body itself: no parser of this context may consume it.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', passThrough);
  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    const { raw } = request;
    const shared = Exchange.of(raw);
    // Behind connectionClosing: the gateway settles the request itself, once the app's answer is handed over.
    if (shared instanceof FastifyExchange) shared.adopt();
    void (mounted(raw, reply.raw, { request, reply }, reply) ?? unmounted(raw, reply.raw, { request, reply }, reply));
  };
  fastify.all('/', handler);
  fastify.all('/*', handler);
  done();
}

function passThrough(_request: FastifyRequest, _payload: unknown, done: (error: Error | null, body?: unknown) => void): void {
  done(null);
}

/**
 * Writes through Fastify's reply: the body is a byte Readable given to `reply.send` (Fastify
 * destroys it on a hang-up, which closes the app's body; on an error after the headers it cuts the
 * connection), so @fastify/compress and Fastify's logging see it.
 */
const fastifyWriter: GatewayWriter<FastifyReply> = {
  send(reply, status, headers, body) {
    const record = headerRecord(headers);
    reply.code(status).headers(record);
    try {
      reply.send(body);
    } catch (error) {
      // Node refused a header (writeHead throws inside send): the error is answered without them.
      for (const name of Object.keys(record)) reply.removeHeader(name);
      reply.code(500);
      throw error;
    }
  },
  fail(reply, error) {
    // Fastify's error path: onError hooks, setErrorHandler.
    reply.send(error instanceof Error ? error : new Error(String(error), { cause: error }));
  },
};
