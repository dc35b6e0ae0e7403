// The edges of request transactions that each adapter handles in its own idiom: a route's setting
// that comes after the request leased, Fastify's route config checked at registration, and a
// failed COMMIT handed to Express's error middleware.
import { createServer, type Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import express, { type ErrorRequestHandler } from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { getErrorStatus, isCloseguardError } from '@closeguard/core';
import { connectionClosing as expressGuard, transaction as expressTransaction } from '@closeguard/express';
import { connectionClosing as fastifyGuard } from '@closeguard/fastify';
import { connectionClosing as honoGuard, transaction as honoTransaction, type ConnectionClosingEnv } from '@closeguard/hono';
import { connectionClosing as koaGuard, transaction as koaTransaction } from '@closeguard/koa';
import { databaseUrl, PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';

const harness = usePoolHarness(new PoolHarness('tx-settings'));
const TABLE = 'closeguard_tx_settings';
let counter = 0;

beforeAll(async () => {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: 'closeguard-test-admin' });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [TABLE]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (key text UNIQUE DEFERRABLE INITIALLY DEFERRED)`);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
});

/** GETs `url`: its status. */
const statusOf = async (url: string): Promise<number> => (await fetch(url)).status;

/** An error handler that records what it sees and answers its status. */
function recorder(): { errors: unknown[]; express: ErrorRequestHandler } {
  const errors: unknown[] = [];
  return {
    errors,
    express: (error: unknown, _req, res, _next) => {
      errors.push(error);
      res.status(getErrorStatus(error)).send('failed');
    },
  };
}

async function listenFastify(fastify: FastifyInstance): Promise<string> {
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  harness.onDispose(async () => {
    fastify.server.closeAllConnections();
    await fastify.close();
  });
  return `http://127.0.0.1:${(fastify.server.address() as { port: number }).port}`;
}

describe("a route's transaction setting after the request leased a connection", () => {
  const isBegun = (error: unknown): boolean => isCloseguardError(error, 'ERR_CLOSEGUARD_TRANSACTION_BEGUN');

  it('Express: transaction(false) fails the request with ERR_CLOSEGUARD_TRANSACTION_BEGUN through the error middleware', async () => {
    const { pool } = harness.createPool(1);
    const seen = recorder();
    const app = express();
    app.use(expressGuard({ pool, transaction: true }, { logger: quiet }));
    app.use(async (req, _res, next) => {
      await req.db();
      next();
    });
    app.get('/', expressTransaction(false), (_req, res) => void res.send('not reached'));
    app.use(seen.express);
    const url = await harness.listen(createServer(app));
    expect(await statusOf(url)).toBe(500);
    expect(seen.errors.map(isBegun)).toEqual([true]);
  });

  it('Koa: transaction(false) fails the request with ERR_CLOSEGUARD_TRANSACTION_BEGUN through its error path', async () => {
    const { pool } = harness.createPool(1);
    const errors: unknown[] = [];
    const koa = new Koa();
    koa.on('error', (error: unknown) => void errors.push(error));
    koa.use(koaGuard({ pool, transaction: true }, { logger: quiet }));
    koa.use(async (ctx, next) => {
      await ctx.db();
      await next();
    });
    koa.use(koaTransaction(false));
    koa.use((ctx) => {
      ctx.body = 'not reached';
    });
    const handle = koa.callback();
    const url = await harness.listen(createServer((req, res) => void handle(req, res)));
    expect(await statusOf(url)).toBe(500);
    expect(errors.map(isBegun)).toEqual([true]);
  });

  it('Hono: transaction(false) fails the request with ERR_CLOSEGUARD_TRANSACTION_BEGUN through onError', async () => {
    const { pool } = harness.createPool(1);
    const errors: unknown[] = [];
    const hono = new Hono<ConnectionClosingEnv>();
    hono.use(honoGuard({ pool, transaction: true }, { logger: quiet }));
    hono.use(async (c, next) => {
      await c.var.db();
      await next();
    });
    hono.get('/', honoTransaction(false), (c) => c.text('not reached'));
    hono.onError((error, c) => {
      errors.push(error);
      return c.text('failed', 500);
    });
    const url = await harness.listen(createAdaptorServer({ fetch: hono.fetch }) as Server);
    expect(await statusOf(url)).toBe(500);
    expect(errors.map(isBegun)).toEqual([true]);
  });

  it("Fastify: the route's config fails the request with ERR_CLOSEGUARD_TRANSACTION_BEGUN through the error handler", async () => {
    const { pool } = harness.createPool(1);
    const errors: unknown[] = [];
    const fastify = Fastify();
    await fastify.register(fastifyGuard, { pool, transaction: true, logger: quiet });
    fastify.addHook('onRequest', async (request) => void (await request.db()));
    fastify.setErrorHandler((error, _request, reply) => {
      errors.push(error);
      return reply.code(500).send('failed');
    });
    fastify.get('/', { config: { closeguard: { transaction: false } } }, () => 'not reached');
    const url = await listenFastify(fastify);
    expect(await statusOf(url)).toBe(500);
    expect(errors.map(isBegun)).toEqual([true]);
  });
});

describe("Fastify's route config closeguard.transaction", () => {
  it.each([
    ['a wrong transaction', { transaction: 'yes' }, /config.closeguard.transaction must be a boolean/],
    ['an unknown setting', { transactions: false }, /config.closeguard has no setting transactions/],
  ])('%s fails the route registration with ERR_CLOSEGUARD_INVALID_OPTION naming it', async (_name, closeguard, message) => {
    const { pool } = harness.createPool(1);
    const fastify = Fastify();
    harness.onDispose(() => fastify.close());
    await fastify.register(fastifyGuard, { pool, logger: quiet });
    const registered = (async () => {
      fastify.get('/', { config: { closeguard } as never }, () => 'never');
      await fastify.ready();
    })();
    await expect(registered).rejects.toMatchObject({ code: 'ERR_CLOSEGUARD_INVALID_OPTION', message: expect.stringMatching(message) as unknown });
  });
});

describe('Express: a COMMIT that fails', () => {
  it('goes to the error middleware as ERR_CLOSEGUARD_COMMIT_FAILED with the database error as its cause; the held 200 never goes out', async () => {
    const { pool } = harness.createPool(1);
    const seen = recorder();
    const app = express();
    app.use(expressGuard({ pool, transaction: true }, { logger: quiet }));
    app.get('/', async (req, res) => {
      const key = `settings-${process.pid}-${++counter}`;
      await (await req.db<pg.Client>()).query(`INSERT INTO ${TABLE} (key) VALUES ($1), ($1)`, [key]);
      res.set('x-route', 'set before COMMIT').json({ inserted: 2 });
    });
    app.use(seen.express);
    const url = await harness.listen(createServer(app));
    const response = await fetch(url);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('failed');
    expect(response.headers.get('content-type')).toMatch(/^text\/html/); // the error's body, not the dropped JSON's
    expect(seen.errors).toHaveLength(1);
    expect(isCloseguardError(seen.errors[0], 'ERR_CLOSEGUARD_COMMIT_FAILED')).toBe(true);
    expect((seen.errors[0] as Error).cause).toMatchObject({ code: '23505' }); // unique_violation, at COMMIT
  });
});
