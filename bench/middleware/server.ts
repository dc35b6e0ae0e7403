// One benchmark server: the same gateway app — lease a connection, use it, answer `ok` — served by
// `requestListener` in one of three ways:
//   bare       a hand-written acquire … finally release around the work
//   guarded    ConnectionClosingMiddleware, the request-owned lease from `leasesFor(env.scope)`
//   async      the same with `asyncContext: true` and `await connection()` (AsyncLocalStorage)
// on one of two pools: an in-process generic-pool of plain objects, or @closeguard/pg on PostgreSQL.
// Usage: server.ts <bare|guarded|async> <memory|pg> [databaseUrl]
import http from 'node:http';
import genericPool from 'generic-pool';
import type pg from 'pg';
import { ConnectionClosingMiddleware, connection, leasesFor, type GatewayApp } from '@closeguard/core';
import { requestListener } from '@closeguard/node';
import { createPool as createPgPool } from '@closeguard/pg';
import { VARIANTS, WORKLOADS, type Variant, type Workload } from './report.ts';

const POOL_MAX = 10;
const HEADERS = { 'content-type': 'text/plain', 'content-length': '3' };
const BODY = ['ok\n'];

type Resource = { uses: number } | pg.Client;
type Pool = { acquire(): Promise<Resource>; release(resource: Resource): Promise<void>; destroy(resource: Resource): Promise<void> };
type Setup = { pool: Pool; work: (resource: Resource) => Promise<void> | void };

/** The pool under test and what the app does with a connection. */
function createWorkload(workload: Workload, databaseUrl: string | undefined): Setup {
  if (workload === 'memory') {
    let created = 0;
    const factory = { create: () => Promise.resolve({ uses: 0, id: created++ }), destroy: () => Promise.resolve() };
    return {
      pool: genericPool.createPool<Resource>(factory, { max: POOL_MAX }),
      work: (resource) => void (resource as { uses: number }).uses++,
    };
  }
  if (databaseUrl === undefined) throw new Error('the pg workload needs a database URL');
  return {
    pool: createPgPool(databaseUrl, { max: POOL_MAX }),
    work: async (resource) => void (await (resource as pg.Client).query('SELECT 1')),
  };
}

function createApp(variant: Variant, { pool, work }: Setup): GatewayApp {
  if (variant === 'bare') {
    return async (_env, start) => {
      const resource = await pool.acquire();
      try {
        await work(resource);
      } finally {
        await pool.release(resource);
      }
      start(200, HEADERS);
      return BODY;
    };
  }
  const guard = new ConnectionClosingMiddleware({ pool, asyncContext: variant === 'async' });
  const app: GatewayApp = async (env, start) => {
    // guarded: through the request object, as req.db() does; async: through AsyncLocalStorage.
    const resource = variant === 'async' ? await connection<Resource>() : ((await leasesFor(env.scope)!.get('default')) as Resource);
    await work(resource);
    start(200, HEADERS);
    return BODY;
  };
  return guard.wrap(app);
}

const [variant, workload, databaseUrl] = process.argv.slice(2) as [Variant, Workload, string | undefined];
if (!VARIANTS.includes(variant) || !WORKLOADS.includes(workload)) {
  throw new Error('usage: server.ts <bare|guarded|async> <memory|pg> [databaseUrl]');
}
const server = http.createServer(requestListener(createApp(variant, createWorkload(workload, databaseUrl))));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log(`listening ${address.port}`);
});
process.once('SIGTERM', () => process.exit(0));
