// One benchmark server: the same route — lease a connection, use it, answer `ok` — in one variant
// (report.ts: bare, guarded, async, fastify-postgres, floor) on one host (the node host serving a gateway
// app, or Express, Fastify, Koa or Hono with their own routes), on one of two pools: an in-process
// generic-pool of plain objects, or PostgreSQL (`SELECT 1`) through @closeguard/pg's createPool()
// (pg) or a pg.Pool through fromPgPool() (pg-pool) — or, with the drizzle workload, Drizzle's
// `db.execute(sql\`SELECT 1\`)` on a plain pg.Pool (bare) or on a GuardedPool given to the guard
// (guarded): the guarded pool's cost against the same ORM on a plain pool.
// Usage: server.ts <host/variant> <memory|pg|pg-pool|drizzle> [databaseUrl]
import { tracingChannel } from 'node:diagnostics_channel';
import http from 'node:http';
import fastifyPostgres from '@fastify/postgres';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import genericPool from 'generic-pool';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import Koa from 'koa';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { ConnectionClosingMiddleware, connection, type GatewayApp } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { connectionClosing as expressGuard } from '@closeguard/express';
import { connectionClosing as fastifyGuard } from '@closeguard/fastify';
import { connectionClosing as honoGuard } from '@closeguard/hono';
import { connectionClosing as koaGuard } from '@closeguard/koa';
import { requestListener } from '@closeguard/node';
import { createPool as createPgPool, fromPgPool, GuardedPool } from '@closeguard/pg';
import { HOSTS, hostOf, kindOf, WORKLOADS, type Variant, type Workload } from './report.ts';

const POOL_MAX = 10;
const HEADERS = { 'content-type': 'text/plain', 'content-length': '3' };
const OK = 'ok\n';

type Resource = { uses: number } | pg.Client;
type Pool = { acquire(): Promise<Resource>; release(resource: Resource): Promise<void>; destroy(resource: Resource): Promise<void> };
type Setup = {
  pool: Pool;
  work: (resource: Resource) => Promise<unknown> | void;
  databaseUrl: string | undefined;
  /** The drizzle workload's query: Drizzle checks a client out of its pool itself (no lease by the route). */
  orm?: () => Promise<unknown>;
};

/** The pool under test and what the route does with a connection. */
function createWorkload(workload: Workload, databaseUrl: string | undefined, guarded: boolean): Setup {
  if (workload === 'memory') {
    let created = 0;
    const factory = { create: () => Promise.resolve({ uses: 0, id: created++ }), destroy: () => Promise.resolve() };
    return {
      pool: genericPool.createPool<Resource>(factory, { max: POOL_MAX }),
      work: (resource) => void (resource as { uses: number }).uses++,
      databaseUrl,
    };
  }
  if (databaseUrl === undefined) throw new Error(`the ${workload} workload needs a database URL`);
  if (workload === 'drizzle') {
    const config = { connectionString: databaseUrl, max: POOL_MAX };
    const ormPool = guarded ? new GuardedPool(config) : new pg.Pool(config);
    const db = drizzle({ client: ormPool });
    return { pool: ormPool as unknown as Pool, work: () => undefined, databaseUrl, orm: () => db.execute(sql`SELECT 1`) };
  }
  const pool = workload === 'pg' ? createPgPool(databaseUrl, { max: POOL_MAX }) : fromPgPool(new pg.Pool({ connectionString: databaseUrl, max: POOL_MAX }));
  return {
    pool: pool as unknown as Pool,
    // The query's own promise, as @fastify/postgres's route awaits it (no async wrapper: one promise fewer).
    work: (resource) => (resource as pg.Client).query('SELECT 1'),
    databaseUrl,
  };
}

/** The bare route's work: the ORM's query (it checks out and releases itself), or a lease by hand. */
function bareWork(setup: Setup): Promise<unknown> {
  return setup.orm?.() ?? leaseByHand(setup);
}

/** A hand-written acquire … finally release. */
async function leaseByHand({ pool, work }: Setup): Promise<void> {
  const resource = await pool.acquire();
  try {
    await work(resource);
  } finally {
    await pool.release(resource);
  }
}

/**
 * The hold route's work: as bare, but the connection goes back only when the response is over (its
 * 'close'), as the guarantee keeps it: guarded ÷ hold is closeguard's cost beyond holding.
 */
async function leaseUntilClosed({ pool, work }: Setup, res: http.ServerResponse): Promise<void> {
  const resource = await pool.acquire();
  res.on('close', () => void pool.release(resource));
  await work(resource);
}

function nodeServer(variant: Variant, setup: Setup): http.Server {
  const { pool, work } = setup;
  const kind = kindOf(variant);
  if (kind === 'floor' || kind === 'hold') throw new Error(`node/${kind}: the node host has no framework hooks (its bare route already has a scope), nor a response for the app to watch`);
  if (kind === 'bare') {
    return http.createServer(requestListener(async (_env, start) => {
      await leaseByHand(setup);
      start(200, HEADERS);
      return [OK];
    }));
  }
  const async = kind === 'async';
  const guard = new ConnectionClosingMiddleware({ pool, asyncContext: async });
  const app: GatewayApp = async (env, start) => {
    // guarded: through the request object, as req.db() does; async: through AsyncLocalStorage.
    const resource = async ? await connection<Resource>() : (await leasesFor(env.scope)!.get<Resource>('default'));
    await work(resource);
    start(200, HEADERS);
    return [OK];
  };
  return http.createServer(requestListener(guard.wrap(app)));
}

/** What the floor variants' hooks and listeners do: nothing. */
const nothing = (): void => undefined;

function expressServer(variant: Variant, setup: Setup): http.Server {
  const app = express();
  const kind = kindOf(variant);
  if (kind === 'floor' || kind === 'untraced') {
    // As connectionClosing(): router's layer tracing subscribed (how an async handler's end is
    // known; not for `untraced`), one more layer, a 'close' listener on the response.
    if (kind === 'floor') tracingChannel('express.router.request').subscribe({ start: nothing, end: nothing, asyncStart: nothing, asyncEnd: nothing, error: nothing });
    app.use((_req, res, next) => {
      res.on('close', nothing);
      next();
    });
  }
  if (kind === 'bare' || kind === 'floor' || kind === 'untraced' || kind === 'hold') {
    app.get('/', async (_req, res) => {
      await (kind === 'hold' ? leaseUntilClosed(setup, res) : bareWork(setup));
      res.type('text/plain').send(OK);
    });
  } else {
    app.use(expressGuard({ pool: setup.pool }));
    app.get('/', async (req, res) => {
      await (setup.orm?.() ?? setup.work(await req.db<Resource>()));
      res.type('text/plain').send(OK);
    });
  }
  return http.createServer(app);
}

async function fastifyServer(variant: Variant, setup: Setup): Promise<http.Server> {
  const app = Fastify();
  const kind = kindOf(variant);
  if (kind === 'floor') {
    // As the plugin: each handler wrapped to see its promise settle, onRequest with a 'close'
    // listener, onSend and onError.
    app.addHook('onRoute', (route) => {
      const handler = route.handler;
      route.handler = function wrapped(this: FastifyInstance, request, reply) {
        const result: unknown = handler.call(this, request, reply);
        if (result instanceof Promise) result.then(nothing, nothing);
        return result;
      };
    });
    app.addHook('onRequest', (_request, reply, done) => {
      reply.raw.on('close', nothing);
      done();
    });
    app.addHook('onSend', (_request, _reply, payload, done) => done(null, payload));
    app.addHook('onError', (_request, _reply, _error, done) => done());
  }
  if (kind === 'bare' || kind === 'floor' || kind === 'hold') {
    app.get('/', async (_request, reply) => {
      await (kind === 'hold' ? leaseUntilClosed(setup, reply.raw) : bareWork(setup));
      return reply.type('text/plain').send(OK);
    });
  } else if (kind === 'fastify-postgres') {
    await app.register(fastifyPostgres, { connectionString: setup.databaseUrl, max: POOL_MAX });
    app.get('/', async (_request, reply) => {
      const client = await app.pg.connect();
      try {
        await client.query('SELECT 1');
      } finally {
        client.release();
      }
      return reply.type('text/plain').send(OK);
    });
  } else {
    await app.register(fastifyGuard, { pool: setup.pool });
    app.get('/', async (request, reply) => {
      await (setup.orm?.() ?? setup.work(await request.db<Resource>()));
      return reply.type('text/plain').send(OK);
    });
  }
  await app.ready();
  return app.server;
}

function koaServer(variant: Variant, setup: Setup): http.Server {
  const app = new Koa();
  const kind = kindOf(variant);
  if (kind === 'floor') {
    // As connectionClosing(): one more middleware frame awaiting the rest, a 'close' listener.
    app.use(async (ctx, next) => {
      ctx.res.on('close', nothing);
      await next();
    });
  }
  if (kind === 'bare' || kind === 'floor' || kind === 'hold') {
    app.use(async (ctx) => {
      await (kind === 'hold' ? leaseUntilClosed(setup, ctx.res) : bareWork(setup));
      ctx.type = 'text/plain';
      ctx.body = OK;
    });
  } else {
    app.use(koaGuard({ pool: setup.pool }));
    app.use(async (ctx) => {
      await (setup.orm?.() ?? setup.work(await ctx.db<Resource>()));
      ctx.type = 'text/plain';
      ctx.body = OK;
    });
  }
  const handle = app.callback();
  return http.createServer((req, res) => void handle(req, res));
}

function honoServer(variant: Variant, setup: Setup): http.Server {
  const kind = kindOf(variant);
  if (kind === 'bare' || kind === 'floor' || kind === 'hold') {
    const app = new Hono<{ Bindings: HttpBindings }>();
    if (kind === 'floor') {
      // As connectionClosing(): one more middleware awaiting the rest, a 'close' listener.
      app.use(async (c, next) => {
        c.env.outgoing.on('close', nothing);
        await next();
      });
    }
    app.get('/', async (c) => {
      await (kind === 'hold' ? leaseUntilClosed(setup, c.env.outgoing) : bareWork(setup));
      return c.text(OK);
    });
    return honoListener(app.fetch);
  }
  const app = new Hono().use(honoGuard({ pool: setup.pool }));
  app.get('/', async (c) => {
    await (setup.orm?.() ?? setup.work(await c.var.db<Resource>()));
    return c.text(OK);
  });
  return honoListener(app.fetch);
}

/** Hono's app on node:http, as @hono/node-server's serve() does it. */
function honoListener(fetch: Parameters<typeof getRequestListener>[0]): http.Server {
  const listener = getRequestListener(fetch);
  return http.createServer((req, res) => void listener(req, res));
}

const [variant, workload, databaseUrl] = process.argv.slice(2) as [Variant, Workload, string | undefined];
if (!HOSTS.includes(hostOf(variant)) || !WORKLOADS.includes(workload)) {
  throw new Error('usage: server.ts <node|express|fastify|koa|hono>/<bare|guarded|async|fastify-postgres|floor|untraced|hold> <memory|pg|pg-pool|drizzle> [databaseUrl]');
}
if (kindOf(variant) === 'untraced' && hostOf(variant) !== 'express') throw new Error(`${variant}: only Express has router tracing to leave out`);
if (workload === 'drizzle' && (hostOf(variant) === 'node' || !['bare', 'guarded'].includes(kindOf(variant)))) {
  throw new Error(`${variant}: the drizzle workload has a bare and a guarded route on the frameworks only`);
}
const setup = createWorkload(workload, databaseUrl, kindOf(variant) === 'guarded');
const servers = { node: nodeServer, express: expressServer, fastify: fastifyServer, koa: koaServer, hono: honoServer };
const server = await servers[hostOf(variant)](variant, setup);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log(`listening ${address.port}`);
});
process.once('SIGTERM', () => process.exit(0));
