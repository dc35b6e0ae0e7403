// The ORM suite's servers: a library's routes behind connectionClosing(), on Express and on Fastify,
// each on one pool — a plain pg.Pool (the control) or a GuardedPool.
import { createServer } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import Fastify from 'fastify';
import pg from 'pg';
import type { PoolLike } from '@closeguard/core';
import { connectionClosing as expressGuard } from '@closeguard/express';
import { connectionClosing as fastifyGuard } from '@closeguard/fastify';
import { fromPgPool, GuardedPool } from '@closeguard/pg';
import { databaseUrl, listenOn, quiet } from '@closeguard/conformance';
import type { CaseName, Hold, OrmLibrary, OrmRoutes } from './library.ts';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;
/** Connections per pool: room for a leak or two and the requests that follow it. */
const POOL_MAX = 4;

export type Framework = 'express' | 'fastify';
export type PoolKind = 'plain' | 'guarded';

/** Where each case's route is served. */
export const PATHS: Record<CaseName, string> = {
  throwInTransaction: '/throw-in-transaction',
  handBegin: '/hand-begin',
  sleep: '/sleep',
  stream: '/stream',
  killedMidTransaction: '/killed-mid-transaction',
  unendedTransaction: '/unended-transaction',
};

/** Routes paused at their `hold(pid)`, for the test to kill their backend and let them go on. */
export class Holds {
  readonly #held: Array<{ pid: number; resume: () => void }> = [];
  readonly #waiters: Array<(held: { pid: number; resume: () => void }) => void> = [];

  readonly hold: Hold = (pid) =>
    new Promise<void>((resume) => {
      const held = { pid, resume };
      const waiter = this.#waiters.shift();
      if (waiter) waiter(held);
      else this.#held.push(held);
    });

  /** The next route that reached its `hold(pid)`. */
  next(): Promise<{ pid: number; resume: () => void }> {
    const held = this.#held.shift();
    return held ? Promise.resolve(held) : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** A library's routes served by a framework behind a guard, on one pool. */
export interface OrmServer {
  url: string;
  pool: pg.Pool;
  /** The application_name of the pool's clients. */
  name: string;
  close(): Promise<void>;
}

let poolCounter = 0;

/** A pool of real clients tagged with a unique application_name, so its backends can be counted. */
function createOrmPool(kind: PoolKind, label: string): { pool: pg.Pool; name: string } {
  const name = `closeguard-orm-${label}-${kind}-${process.pid}-${++poolCounter}`;
  const config = { connectionString: databaseUrl(), application_name: name, max: POOL_MAX };
  const pool = kind === 'guarded' ? new GuardedPool(config) : new pg.Pool(config);
  // An idle client whose backend dies reports on the pool. A checked-out one reports on itself: the
  // control's leaked clients get a listener, or writing their leak off would crash the process.
  pool.on('error', () => undefined);
  if (kind === 'plain') pool.on('connect', (client) => client.on('error', () => undefined));
  return { pool, name };
}

function serveExpress(guardPool: PoolLike | pg.Pool, routes: OrmRoutes, holds: Holds, kind: PoolKind) {
  const app = express();
  const closeguard = expressGuard({ pool: guardPool as PoolLike, abortGrace: GRACE_MS }, { logger: quiet });
  app.use(closeguard);
  app.get(PATHS.throwInTransaction, async (_req, res) => void res.json(await routes.throwInTransaction()));
  app.get(PATHS.handBegin, async (_req, res) => void res.json(await routes.handBegin()));
  app.get(PATHS.sleep, async (_req, res) => void res.json(await routes.sleep()));
  app.get(PATHS.killedMidTransaction, async (_req, res) => void res.json(await routes.killedMidTransaction(holds.hold)));
  app.get(PATHS.unendedTransaction, async (_req, res) => void res.json(await routes.unendedTransaction?.()));
  app.get('/alive', async (_req, res) => void res.json(await routes.alive()));
  // Express's idiom for a stream, and the one the libraries' docs show: pipe it into the response.
  app.get(PATHS.stream, (_req, res) => void routes.stream?.().pipe(res.type('application/x-ndjson')));
  const onError: ErrorRequestHandler = (_error, _req, res, _next) => void res.status(500).json({ error: 'failed' });
  app.use(onError);
  const server = createServer(app);
  return listenOn(server).then(({ url }) => ({
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      // The guard's close() drains its pool: only a pool with nothing leaked drains.
      if (kind === 'guarded') await closeguard.guard.close();
    },
  }));
}

async function serveFastify(guardPool: PoolLike | pg.Pool, routes: OrmRoutes, holds: Holds, kind: PoolKind) {
  const fastify = Fastify();
  await fastify.register(fastifyGuard, { pool: guardPool as PoolLike, abortGrace: GRACE_MS, logger: quiet });
  fastify.get(PATHS.throwInTransaction, () => routes.throwInTransaction());
  fastify.get(PATHS.handBegin, () => routes.handBegin());
  fastify.get(PATHS.sleep, () => routes.sleep());
  fastify.get(PATHS.killedMidTransaction, () => routes.killedMidTransaction(holds.hold));
  fastify.get(PATHS.unendedTransaction, async () => (await routes.unendedTransaction?.()) ?? null);
  fastify.get('/alive', () => routes.alive());
  // Fastify's idiom: send the stream; Fastify destroys it when the client hangs up.
  fastify.get(PATHS.stream, (_request, reply) => reply.type('application/x-ndjson').send(routes.stream?.()));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const { port } = fastify.server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      fastify.server.closeAllConnections();
      // fastify.close() closes the guard, which drains its pool.
      if (kind === 'guarded') await fastify.close();
      else await new Promise((resolve) => fastify.server.close(resolve));
    },
  };
}

/**
 * Serves `library` on `framework`. The control's guard takes the pool through fromPgPool(), so the
 * pool is the guard's and the library's; a GuardedPool is given to the guard as it is.
 */
export async function startServer(library: OrmLibrary, framework: Framework, kind: PoolKind, holds: Holds): Promise<OrmServer> {
  const { pool, name } = createOrmPool(kind, framework);
  const routes = await library.create(pool);
  const guardPool = kind === 'plain' ? fromPgPool(pool) : pool;
  const served = framework === 'express' ? await serveExpress(guardPool, routes, holds, kind) : await serveFastify(guardPool, routes, holds, kind);
  return {
    url: served.url,
    pool,
    name,
    close: async () => {
      await served.close();
      await routes.dispose();
      // Written off: pool.end() would wait for the clients the control leaked.
      if (kind === 'plain') return;
      await pool.end(); // again, as an ORM's own destroy() does: GuardedPool's end() may be called twice

    },
  };
}
