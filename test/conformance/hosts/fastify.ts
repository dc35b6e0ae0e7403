import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteHandlerMethod } from 'fastify';
import { getErrorStatus, type GatewayApp, type Logger } from '@closeguard/core';
import { connectionClosing, gateway } from '@closeguard/fastify';
import { listenOn, type ConformanceHost, type Db, type DbClient, type GuardedHost, type GuardedHostOptions, type GuardedRoute, type HostOptions, type ListeningServer, type RouteInput } from '@closeguard/conformance';

/** A typical Fastify error handler: logs, then answers the error's status and headers (as Fastify's default does) with a generic text (never the message). */
function errorHandler(report: (error: unknown) => void) {
  return (error: unknown, _request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    report(error);
    const status = getErrorStatus(error);
    const { headers } = error as { headers?: Record<string, string> };
    if (typeof headers === 'object') reply.headers(headers);
    return reply.code(status).type('text/plain; charset=utf-8').send(`${STATUS_CODES[status] ?? 'Error'}\n`);
  };
}

/** `fastify.register(gateway, { app })` at the root: HTTP/1.1. */
export const fastifyHost: ConformanceHost = {
  name: 'fastify',
  protocol: 'http1',
  listen: (app, options) => listenGateway(Fastify(), app, options),
};

/** The same on `Fastify({ http2: true })`: HTTP/2 in cleartext (h2c), `reply.raw` an Http2ServerResponse. */
export const fastifyHttp2Host: ConformanceHost = {
  name: 'fastify/http2',
  protocol: 'http2',
  listen: (app, options) => listenGateway(Fastify({ http2: true }) as unknown as FastifyInstance, app, options),
};

async function listenGateway(fastify: FastifyInstance, app: GatewayApp, { abortGrace, bodyLimit, logger }: HostOptions): Promise<ListeningServer> {
  const log: Logger = logger ?? console;
  fastify.setErrorHandler(errorHandler((error) => log.error('fastify: request failed', error)));
  await fastify.register(gateway, {
    app,
    ...(abortGrace !== undefined && { abortGrace }),
    ...(bodyLimit !== undefined && { bodyLimit }),
    ...(logger !== undefined && { logger }),
  });
  await fastify.ready();
  return listenOn(fastify.server);
}

/** The standard routes behind `register(connectionClosing, { guard })`, each in Fastify's idiom. */
export const fastifyGuardedHost: GuardedHost = {
  name: 'fastify',
  protocol: 'http1',
  listenGuarded: (options) => listenGuarded(Fastify(), options),
};

/** The same routes on `Fastify({ http2: true })`: HTTP/2 in cleartext (h2c). */
export const fastifyGuardedHttp2Host: GuardedHost = {
  name: 'fastify/http2',
  protocol: 'http2',
  listenGuarded: (options) => listenGuarded(Fastify({ http2: true }) as unknown as FastifyInstance, options),
};

async function listenGuarded(fastify: FastifyInstance, { guard, routes, onError, logger }: GuardedHostOptions): Promise<ListeningServer> {
  await fastify.register(connectionClosing, { guard, logger });
  fastify.setErrorHandler(errorHandler(onError));
  for (const route of routes) {
    // A route's own transaction setting: Fastify's route config.
    const config = route.transaction === undefined ? {} : { config: { closeguard: { transaction: route.transaction } } };
    fastify.route({ method: route.method, url: route.path, handler: handlerFor(route), ...config });
  }
  await fastify.ready();
  return listenOn(fastify.server);
}

function handlerFor(route: GuardedRoute): RouteHandlerMethod {
  switch (route.kind) {
    case 'json':
      return async (request, reply) => {
        const value = await route.run(dbOf(request), inputOf(request));
        reply.code(route.status ?? 200).type('application/json');
        return JSON.stringify(value);
      };
    case 'stream':
      return async (request, reply) => {
        const stream = await route.run(dbOf(request), inputOf(request));
        reply.type(route.contentType ?? 'application/octet-stream');
        return stream;
      };
    case 'callback':
      return (request, reply) => {
        route.run(dbOf(request), inputOf(request)).then(
          (value) => reply.code(route.status ?? 200).type('application/json').send(JSON.stringify(value)),
          (error: unknown) => reply.send(error),
        );
      };
  }
}

function dbOf(request: FastifyRequest): Db {
  return (alias) => request.db<DbClient>(alias);
}

function inputOf(request: FastifyRequest): RouteInput {
  const url = request.raw.url ?? '/';
  const mark = url.indexOf('?');
  return { query: new URLSearchParams(mark === -1 ? '' : url.slice(mark + 1)), body: request.body };
}
