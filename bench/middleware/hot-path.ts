// The guard's per-request work without HTTP: one request's scope, the app's lease and the scope's
// close, in a loop, for one step of a ladder that adds the guard's parts one at a time:
//   bare      hand-written acquire … finally release (the host's scope is created and closed)
//   listener  bare + one abort listener added to and removed from the request's signal
//   weakmap   bare + one WeakMap entry keyed by the scope (as `leasesOf.set(scope, …)`)
//   defer     bare + one async cleanup deferred on the scope (as open() defers leases.end())
//   opened    guard.wrap(app) with the same hand-written lease: admission, open(), end() with nothing held
//   guarded   guard.wrap(app) with the request-owned lease, `leasesFor(env.scope).get()`
//   async     guarded with `asyncContext: true` and `await connection()`
// Usage: hot-path.ts <step> <iterations> [warm-up iterations, default a tenth]; prints
// {"nsPerRequest": …} for the iterations after the warm-up.
import genericPool from 'generic-pool';
import { ConnectionClosingMiddleware, connection, type GatewayApp, type GatewayEnv, type StartResponse } from '@closeguard/core';
import { createScope, leasesFor } from '@closeguard/core/host';

const STEPS = ['bare', 'listener', 'weakmap', 'defer', 'opened', 'guarded', 'async'] as const;
type Step = (typeof STEPS)[number];

type Resource = { uses: number };
const pool = genericPool.createPool<Resource>({ create: () => Promise.resolve({ uses: 0 }), destroy: () => Promise.resolve() }, { max: 10 });
const BODY = ['ok\n'];
const start: StartResponse = () => undefined;
const noop = (): void => undefined;
const byScope = new WeakMap<object, object>();

const handAcquired: GatewayApp = async () => {
  const resource = await pool.acquire();
  try {
    resource.uses++;
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
        const resource = await leasesFor(env.scope)!.get<Resource>('default');
        resource.uses++;
        return BODY;
      });
    case 'async':
      return new ConnectionClosingMiddleware({ pool, asyncContext: true }).wrap(async () => {
        const resource = await connection<Resource>();
        resource.uses++;
        return BODY;
      });
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

async function loop(app: GatewayApp, iterations: number): Promise<void> {
  for (let i = 0; i < iterations; i++) await request(app);
}

const [step, iterationsArg, warmupArg] = process.argv.slice(2) as [Step, string, string?];
if (!STEPS.includes(step)) throw new Error(`usage: hot-path.ts <${STEPS.join('|')}> <iterations> [warm-up]`);
const iterations = Number(iterationsArg);
const app = appOf(step);
await loop(app, warmupArg === undefined ? Math.ceil(iterations / 10) : Number(warmupArg)); // let the JIT settle
const started = process.hrtime.bigint();
await loop(app, iterations);
const ns = Number(process.hrtime.bigint() - started);
console.log(JSON.stringify({ step, iterations, nsPerRequest: iterations > 0 ? ns / iterations : 0 }));
