// The fault route on each framework, through its closeguard adapter and in the framework's own
// idiom: an async handler, a stream sent the framework's way, the framework's error path.
import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { getErrorStatus, type ConnectionClosingMiddleware } from '@closeguard/core';
import { connectionClosing as expressClosing } from '@closeguard/express';
import { connectionClosing as fastifyClosing } from '@closeguard/fastify';
import { connectionClosing as koaClosing } from '@closeguard/koa';
import '@closeguard/pg';
import { quiet } from '@closeguard/conformance';
import { NDJSON, type HandlerIo, type Reply } from './plan-runner.ts';

export const FRAMEWORKS = ['express', 'fastify', 'koa'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/**
 * The app's one fault route: `GET /fault?id=N` runs request N's plan (it may throw synchronously).
 * `GET /alive` answers without the database, `GET /one` with it.
 */
export type FaultHandler = (id: number, io: HandlerIo) => Promise<Reply>;

export interface Served {
  port: number;
  /** Stops listening, cuts what is still connected, and closes the framework (Fastify closes its guard too). */
  close(): Promise<void>;
}


/** Serves `handler` behind `framework`'s `connectionClosing(guard)` on 127.0.0.1, port 0. */
export function serve(framework: Framework, guard: ConnectionClosingMiddleware, handler: FaultHandler): Promise<Served> {
  switch (framework) {
    case 'express':
      return serveExpress(guard, handler);
    case 'fastify':
      return serveFastify(guard, handler);
    case 'koa':
      return serveKoa(guard, handler);
  }
}

function idOf(query: unknown): number {
  return Number((query as { id?: unknown }).id);
}

async function serveExpress(guard: ConnectionClosingMiddleware, handler: FaultHandler): Promise<Served> {
  const app = express();
  app.use(expressClosing(guard, { logger: quiet }));
  app.get('/alive', (_req, res) => void res.type('text/plain').send('alive'));
  app.get('/one', async (req, res) => {
    res.json((await (await req.db()).query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one);
  });
  app.get('/fault', (req, res, next) => {
    const io: HandlerIo = { db: () => req.db(), onResponseClose: (listener) => void res.once('close', listener) };
    return handler(idOf(req.query), io).then((reply) => {
      if (reply.kind === 'json') {
        res.json(reply.value);
        return;
      }
      res.type(NDJSON);
      try {
        pipeline(reply.stream, res, (error) => {
          // A hang-up is not the route's failure; a stream error is (pipeline already cut the connection).
          if (error && error.code !== 'ERR_STREAM_PREMATURE_CLOSE') next(error);
        });
      } catch {
        // Node ≥ 23 throws ERR_STREAM_UNABLE_TO_PIPE when the client already left: the stream is still ours to end.
        reply.stream.destroy();
      }
    });
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = getErrorStatus(error);
    res.status(status).type('text/plain').send(STATUS_CODES[status] ?? 'Error');
  });
  return listen(createServer(app));
}

async function serveFastify(guard: ConnectionClosingMiddleware, handler: FaultHandler): Promise<Served> {
  const fastify = Fastify();
  await fastify.register(fastifyClosing, { guard, logger: quiet });
  fastify.setErrorHandler((error, _request, reply) => {
    const status = getErrorStatus(error);
    return reply.code(status).type('text/plain').send(STATUS_CODES[status] ?? 'Error');
  });
  fastify.get('/alive', () => Promise.resolve('alive'));
  fastify.get('/one', async (request) => (await (await request.db()).query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one);
  fastify.get('/fault', (request, reply) => {
    const io: HandlerIo = { db: () => request.db(), onResponseClose: (listener) => void reply.raw.once('close', listener) };
    return handler(idOf(request.query), io).then((answer) => {
      if (answer.kind === 'json') return answer.value;
      reply.type(NDJSON);
      return answer.stream;
    });
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return {
    port: (fastify.server.address() as AddressInfo).port,
    close: () => {
      fastify.server.closeAllConnections();
      return fastify.close();
    },
  };
}

async function serveKoa(guard: ConnectionClosingMiddleware, handler: FaultHandler): Promise<Served> {
  const koa = new Koa();
  koa.on('error', () => undefined); // Koa answers errors itself; this only keeps them off stderr
  koa.use(koaClosing(guard, { logger: quiet }));
  koa.use((ctx, next) => {
    switch (ctx.path) {
      case '/alive':
        ctx.body = 'alive';
        return undefined;
      case '/one':
        return ctx.db().then(async (client) => {
          ctx.body = (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
        });
      case '/fault': {
        const io: HandlerIo = { db: () => ctx.db(), onResponseClose: (listener) => void ctx.res.once('close', listener) };
        return handler(idOf(ctx.query), io).then((reply) => {
          if (reply.kind === 'json') {
            ctx.body = reply.value;
          } else {
            ctx.type = NDJSON;
            ctx.body = reply.stream;
          }
        });
      }
      default:
        return next();
    }
  });
  const handle = koa.callback();
  return listen(createServer((req, res) => void handle(req, res)));
}

async function listen(server: Server): Promise<Served> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
