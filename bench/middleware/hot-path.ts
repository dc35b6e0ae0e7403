// The guard's per-request work without HTTP: one request's scope, the app's lease and the scope's
// close, in a loop, for one step of a ladder that adds the guard's parts one at a time:
//   bare      hand-written acquire … finally release (the host's scope is created and closed)
//   listener  bare + one abort listener added to and removed from the request's signal
//   weakmap   bare + one WeakMap entry keyed by the scope (as `leasesOf.set(scope, …)`)
//   defer     bare + one async cleanup deferred on the scope (as open() defers leases.end())
//   opened    guard.wrap(app) with the same hand-written lease: admission, open(), end() with nothing held
//   guarded   guard.wrap(app) with the request-owned lease, `leasesFor(env.scope).get()`
//   async     guarded with `asyncContext: true` and `await connection()`
//   hosted    as a framework adapter runs a request: a HostRequest, enterGuard(), the lease, then
//             settled() and over(true) (the response's 'close'); its baseline is `plain`
//   plain     a framework's bare route: the hand-written lease alone, no scope
// Usage: hot-path.ts <step> <iterations> [warm-up iterations, default a tenth]; prints
// {"nsPerRequest": …} for the iterations after the warm-up. As on a real route (HOT_PATH_REAL=1):
// HOT_PATH_CONCURRENCY requests at once (default 1; 20 against the pool's max of 10 queues half of
// them, in the pool for bare, in admission for the guard), each awaiting one turn of the event
// loop with its connection (HOT_PATH_IO=1, as a query would), on @closeguard/pg's createPool()
// (HOT_PATH_PG=1: its acquire, its release policy; DATABASE_URL names the PostgreSQL, which only
// opens the 10 connections: no query is sent).
import genericPool from 'generic-pool';
import { ConnectionClosingMiddleware, connection, type GatewayApp, type GatewayEnv, type StartResponse } from '@closeguard/core';
import { createScope, enterGuard, HostRequest, leasesFor } from '@closeguard/core/host';
import { createPool as createPgPool } from '@closeguard/pg';

const STEPS = ['bare', 'listener', 'weakmap', 'defer', 'opened', 'guarded', 'async', 'hosted', 'plain'] as const;
type Step = (typeof STEPS)[number];

const REAL = process.env.HOT_PATH_REAL === '1';
const CONCURRENCY = Number(process.env.HOT_PATH_CONCURRENCY ?? (REAL ? 20 : 1));
const IO = REAL || process.env.HOT_PATH_IO === '1';
const PG = REAL || process.env.HOT_PATH_PG === '1';

type Resource = object;
type Pool = { acquire(): Promise<Resource>; release(resource: Resource): Promise<void>; destroy(resource: Resource): Promise<void>; readonly max: number };

function createPool(): Pool {
  if (!PG) return genericPool.createPool<Resource>({ create: () => Promise.resolve({}), destroy: () => Promise.resolve() }, { max: 10 });
  const url = process.env.DATABASE_URL;
  if (url === undefined) throw new Error('HOT_PATH_PG=1 needs DATABASE_URL (count.ts starts a PostgreSQL)');
  return createPgPool(url, { max: 10 });
}

const pool = createPool();
let uses = 0;
/** What the route does with its connection: count a use, and with IO wait a turn of the loop, as for a query's answer. */
const use: (resource: Resource) => Promise<void> | undefined = IO
  ? async (): Promise<void> => {
    uses++;
    await new Promise(setImmediate);
  }
  : () => void uses++;
const BODY = ['ok\n'];
const start: StartResponse = () => undefined;
const noop = (): void => undefined;
const byScope = new WeakMap<object, object>();

const handAcquired: GatewayApp = async () => {
  const resource = await pool.acquire();
  try {
    await use(resource);
  } finally {
    await pool.release(resource);
  }
  return BODY;
};

function appOf(step: Step): GatewayApp {
  switch (step) {
    case 'bare':
      return handAcquired;
    case 'listener':
      return (env, start) => {
        env.signal.addEventListener('abort', noop, { once: true });
        env.signal.removeEventListener('abort', noop);
        return handAcquired(env, start);
      };
    case 'weakmap':
      return (env, start) => {
        byScope.set(env.scope, {});
        return handAcquired(env, start);
      };
    case 'defer':
      return (env, start) => {
        // eslint-disable-next-line @typescript-eslint/require-await -- as open()'s cleanup, an async function
        env.scope.defer(async () => undefined);
        return handAcquired(env, start);
      };
    case 'opened':
      return new ConnectionClosingMiddleware({ pool }).wrap(handAcquired);
    case 'guarded':
      return new ConnectionClosingMiddleware({ pool }).wrap(async (env) => {
        await use(await leasesFor(env.scope)!.get<Resource>('default'));
        return BODY;
      });
    case 'async':
      return new ConnectionClosingMiddleware({ pool, asyncContext: true }).wrap(async () => {
        await use(await connection<Resource>());
        return BODY;
      });
    case 'hosted':
    case 'plain':
      throw new Error(`${step} runs without a gateway app`);
  }
}

const emptyBody: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }) };

/** One request as a host runs it: scope, app, then the scope's close once the response is over. */
async function request(app: GatewayApp): Promise<void> {
  const scope = createScope({ method: 'GET', url: '/' });
  // As the hosts' createEnv(): the signal is a getter, so the scope makes it only when read.
  const env: GatewayEnv = {
    method: 'GET', url: '/', path: '/', query: '', headers: {}, body: emptyBody,
    get signal() {
      return scope.signal;
    },
    remoteAddress: undefined, scheme: 'http', httpVersion: '1.1', scope, host: { name: 'bench', native: null },
  };
  await scope.run(() => app(env, start));
  await scope.close('complete');
}

/** The plain route reads nothing of its env. */
const plainEnv = {} as GatewayEnv;
const hostGuard = new ConnectionClosingMiddleware({ pool });
const logger = { error: noop };

/** One request as a framework adapter runs it (the bridge's Exchange): HostRequest, enterGuard, the handler, settled() and the response's 'close'. */
async function hostedRequest(): Promise<void> {
  const request = new HostRequest({ method: 'GET', url: '/', logger, abortGrace: hostGuard.abortGrace });
  enterGuard(hostGuard, request.scope);
  try {
    await use(await leasesFor(request.scope)!.get<Resource>('default'));
    request.settled();
  } catch (error) {
    request.settled(error);
  }
  request.over(true);
}

async function loop(app: GatewayApp | undefined, iterations: number): Promise<void> {
  const one = app !== undefined ? () => request(app) : step === 'plain' ? () => handAcquired(plainEnv, start) : hostedRequest;
  const each = Math.ceil(iterations / CONCURRENCY);
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = 0; i < each; i++) await one();
  }));
}

const [step, iterationsArg, warmupArg] = process.argv.slice(2) as [Step, string, string?];
if (!STEPS.includes(step)) throw new Error(`usage: hot-path.ts <${STEPS.join('|')}> <iterations> [warm-up]`);
const iterations = Number(iterationsArg);
const app = step === 'hosted' || step === 'plain' ? undefined : appOf(step);
await loop(app, warmupArg === undefined ? Math.ceil(iterations / 10) : Number(warmupArg)); // let the JIT settle
const started = process.hrtime.bigint();
await loop(app, iterations);
const ns = Number(process.hrtime.bigint() - started);
console.log(JSON.stringify({ step, iterations, uses, nsPerRequest: iterations > 0 ? ns / iterations : 0 }));
process.exit(0); // the pg pool's clients would keep the process alive
