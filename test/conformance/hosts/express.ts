import { createServer, STATUS_CODES } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { getErrorStatus } from '@closeguard/core';
import { connectionClosing, gateway, transaction, type GatewayOptions } from '@closeguard/express';
import { listenOn, type ConformanceHost, type Db, type GuardedHost, type GuardedRoute, type HostOptions, type RouteInput } from '@closeguard/conformance';

/** A typical Express error handler: logs the error, answers its status and headers (as finalhandler does) with a generic text body, never the message. */
function errorHandler(report: (error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    report(error);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = getErrorStatus(error);
    const { headers } = error as { headers?: Record<string, string> };
    if (typeof headers === 'object') res.set(headers);
    res.status(status).type('text/plain').send(STATUS_CODES[status] ?? 'Error');
  };
}

/** `gateway(app)` mounted at the root of an Express 5 app: HTTP/1.1. */
export const expressHost: ConformanceHost & GuardedHost = {
  name: 'express',
  protocol: 'http1',
  listen(app, options) {
    const server = express();
    server.use(gateway(app, gatewayOptions(options)));
    server.use(errorHandler((error) => options.logger?.error('express: request failed', error)));
    return listenOn(createServer(server));
  },
  listenGuarded({ guard, routes, onError, logger }) {
    const server = express();
    server.use(connectionClosing(guard, { logger }));
    server.use(express.json());
    for (const route of routes) {
      // A route's own transaction setting: the adapter's route middleware before the handler.
      const handlers = route.transaction === undefined ? [handlerFor(route)] : [transaction(route.transaction), handlerFor(route)];
      server[route.method === 'GET' ? 'get' : 'post'](route.path, ...handlers);
    }
    server.use(errorHandler((error) => {
      onError(error);
      logger.error('express: request failed', error);
    }));
    return listenOn(createServer(server));
  },
};

/** Each route in the idiom of its kind: an Express 5 async handler, a streamed body, or an Express 4 callback. */
function handlerFor(route: GuardedRoute): RequestHandler {
  switch (route.kind) {
    case 'json':
      return async (req, res) => {
        res.status(route.status ?? 200).json(await route.run(dbOf(req), input(req)));
      };
    case 'stream':
      return async (req, res, next) => {
        const stream = (await route.run(dbOf(req), input(req))) as Readable;
        if (route.contentType !== undefined) res.type(route.contentType);
        try {
          pipeline(stream, res, (error) => {
            // A hang-up is not the route's failure; a stream error is (pipeline already cut the connection).
            if (error && error.code !== 'ERR_STREAM_PREMATURE_CLOSE') next(error);
          });
        } catch {
          // Node ≥ 23 throws ERR_STREAM_UNABLE_TO_PIPE when the client already left: the source is still ours to destroy.
          stream.destroy();
        }
      };
    case 'callback':
      return (req, res, next) => {
        route.run(dbOf(req), input(req)).then(
          (value) => setTimeout(() => res.status(route.status ?? 200).json(value)),
          (error: unknown) => setTimeout(() => next(error)),
        );
      };
  }
}

/** `req.db` reads its request through `this`: the routes get it bound. */
function dbOf(req: Request): Db {
  return (alias) => req.db(alias);
}

function input(req: Request): RouteInput {
  const mark = req.originalUrl.indexOf('?');
  return {
    query: new URLSearchParams(mark === -1 ? '' : req.originalUrl.slice(mark + 1)),
    body: req.method === 'POST' ? (req.body as unknown) : undefined,
  };
}

function gatewayOptions({ abortGrace, bodyLimit, logger }: HostOptions): GatewayOptions {
  return {
    ...(abortGrace !== undefined && { abortGrace }),
    ...(bodyLimit !== undefined && { bodyLimit }),
    ...(logger !== undefined && { logger }),
  };
}
