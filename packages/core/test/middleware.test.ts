import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool, type Pool } from 'generic-pool';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware, connection, isCloseguardError, poolPolicy, type ConnectionClosingOptions, type GatewayApp, type LeakReport, type PoolPolicy } from '@closeguard/core';
import { createScope, enterGuard, leasesFor } from '@closeguard/core/host';
import { requestListener } from '@closeguard/node';
import { createGate, eventually, hangUpMidStream, hangUpWhen, quiet } from '@closeguard/conformance';

/** An in-process connection: enough state for the release policy to judge. */
class FakeConnection {
  static created = 0;
  readonly id = ++FakeConnection.created;
  busy = false;
  usable = true;
  clean = true;
}

const policy: PoolPolicy<FakeConnection> = {
  isBusy: (c) => c.busy,
  isUsable: (c) => c.usable,
  reset: (c) => c.clean,
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fakePool(max: number): Pool<FakeConnection> {
  const pool = createPool({ create: () => Promise.resolve(new FakeConnection()), destroy: () => Promise.resolve() }, { max, acquireTimeoutMillis: 5_000 });
  Object.assign(pool, { [poolPolicy]: policy });
  cleanups.push(async () => {
    await pool.drain();
    await pool.clear();
  });
  return pool;
}

async function serve(app: GatewayApp, options: ConnectionClosingOptions): Promise<{ url: string; guard: ConnectionClosingMiddleware }> {
  const guard = new ConnectionClosingMiddleware({ asyncContext: true, abortGrace: 100, ...options });
  const server = http.createServer(requestListener(guard.wrap(app), { logger: quiet, abortGrace: 100 }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, guard };
}

const ok = (start: Parameters<GatewayApp>[1], text = 'ok'): string[] => {
  start(200, { 'content-type': 'text/plain' });
  return [text];
};

describe('ConnectionClosingMiddleware', () => {
  describe('when the app asks for connection() twice', () => {
    it('leases once and releases at request end', async () => {
      const pool = fakePool(2);
      const { url, guard } = await serve(async (_env, start) => {
        const first = await connection<FakeConnection>();
        const second = await connection<FakeConnection>();
        return ok(start, String(first === second));
      }, { pool });
      expect(await (await fetch(url)).text()).toBe('true');
      await eventually(() => expect(guard.stats()).toMatchObject({ leased: 1, released: 1, inFlight: 0 }));
      expect(pool.borrowed).toBe(0);
    });

    it('leases nothing when the app never asks', async () => {
      const pool = fakePool(2);
      const { url, guard } = await serve((_env, start) => ok(start), { pool });
      await (await fetch(url)).text();
      await eventually(() => expect(guard.stats().inFlight).toBe(0));
      expect(guard.stats().leased).toBe(0);
    });
  });

  describe('when the app throws after connection()', () => {
    it('answers 500 and releases the connection', async () => {
      const pool = fakePool(2);
      const { url, guard } = await serve(async () => {
        await connection();
        throw new Error('handler bug');
      }, { pool });
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(pool.borrowed).toBe(0);
    });
  });

  describe('when the client hangs up while a query still runs', () => {
    it('destroys the busy connection instead of releasing it', async () => {
      const pool = fakePool(2);
      const { url, guard } = await serve(async (_env, start) => {
        const conn = await connection<FakeConnection>();
        conn.busy = true; // a query that never ends
        start(200, {});
        return (async function* () {
          yield 'streaming';
          await new Promise((resolve) => setTimeout(resolve, 10_000));
        })();
      }, { pool });
      await hangUpMidStream(url);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      expect(pool.borrowed).toBe(0);
    });
  });

  describe('when the client hangs up while waiting in the pool queue', () => {
    it('abandons the wait and the late connection goes straight back', async () => {
      const pool = fakePool(1);
      const { promise: blocked, open: unblock } = createGate();
      const { url, guard } = await serve(async (env, start) => {
        await connection();
        if (env.path === '/holder') await blocked;
        return ok(start);
      }, { pool, backpressure: 2 });
      const holder = fetch(`${url}/holder`);
      await eventually(() => expect(pool.borrowed).toBe(1));
      await hangUpWhen(`${url}/waiter`, () => pool.pending === 1);
      await eventually(() => expect(guard.stats().abandonedWaits).toBe(1));
      unblock();
      expect((await holder).status).toBe(200);
      await eventually(() => expect(pool.borrowed).toBe(0));
      expect(guard.stats().inFlight).toBe(0);
    });
  });

  describe('the release policy', () => {
    it.each([
      ['unusable', (c: FakeConnection): void => void (c.usable = false), {}],
      ['unusable', (c: FakeConnection): void => void (c.clean = false), {}],
      ['obsolete', (): void => undefined, { maxAge: 0 }],
    ] as const)('destroys a connection that is %s', async (cause, spoil, extra) => {
      const pool = fakePool(2);
      const { url, guard } = await serve(async (_env, start) => {
        spoil(await connection<FakeConnection>());
        return ok(start);
      }, { pool, ...extra });
      await (await fetch(url)).text();
      await eventually(() => expect(guard.stats().destroyed[cause]).toBe(1));
      expect(guard.stats().released).toBe(0);
    });

    it('checks a reused connection with healthCheck and replaces one that fails', async () => {
      const pool = fakePool(1);
      const seen: number[] = [];
      const { url, guard } = await serve(async (_env, start) => {
        seen.push((await connection<FakeConnection>()).id);
        return ok(start);
      }, { pool, healthCheck: (c) => (c as FakeConnection).id !== seen[0] });
      await (await fetch(url)).text();
      await eventually(() => expect(guard.stats().released).toBe(1));
      await (await fetch(url)).text();
      expect(seen[1]).not.toBe(seen[0]);
      expect(guard.stats().destroyed.unusable).toBe(1);
    });
  });

  describe('when leasing fails', () => {
    it.each([
      ['without checks', {}],
      ['with healthCheck', { healthCheck: true }],
    ] as const)('gives the failure to the caller, even one that awaits the lease later, and never as an unhandled rejection (%s)', async (_name, extra) => {
      // A pool whose database is down: acquire() fails after a moment.
      const pool = {
        max: 1,
        acquire: (): Promise<never> => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the database is down')), 20)),
        release: (): Promise<void> => Promise.resolve(),
        destroy: (): Promise<void> => Promise.resolve(),
      };
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      cleanups.push(() => Promise.resolve(process.off('unhandledRejection', onUnhandled)));
      const { url, guard } = await serve(async (env, start) => {
        const lease = leasesFor(env.scope)!.get(); // asked for early…
        await new Promise((resolve) => setTimeout(resolve, 150)); // …awaited after it failed
        try {
          await lease;
          return ok(start, 'leased');
        } catch (error) {
          return ok(start, (error as Error).message);
        }
      }, { pool, ...extra });
      const response = await fetch(url);
      expect(await response.text()).toBe('the database is down');
      await eventually(() => expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 0 }));
      expect(unhandled).toEqual([]);
    });
  });

  describe('when the pool fails to take a connection back', () => {
    const failures = {
      throws: (): never => {
        throw new Error('the pool failed');
      },
      rejects: (): Promise<never> => Promise.reject(new Error('the pool failed')),
    };
    it.each([
      ['release', 'throws', {}],
      ['release', 'rejects', {}],
      ['destroy', 'throws', { maxAge: 0 }],
      ['destroy', 'rejects', { maxAge: 0 }],
    ] as const)('reports a %s() that %s, frees the request\'s place and keeps serving', async (method, how, extra) => {
      const pool = fakePool(1);
      const real = pool[method].bind(pool);
      let failed = 0;
      pool[method] = (resource: FakeConnection) => {
        void real(resource); // the pool took it back, then failed all the same
        failed++;
        return failures[how]();
      };
      const reported: unknown[] = [];
      const onException = (message: unknown): void => void reported.push((message as { error: unknown; phase: string }).phase);
      diagnostics.subscribe('closeguard:request:exception', onException);
      cleanups.push(() => Promise.resolve(diagnostics.unsubscribe('closeguard:request:exception', onException)));
      const { url, guard } = await serve(async (_env, start) => {
        await connection<FakeConnection>();
        return ok(start);
      }, { pool, backpressure: 1, ...extra });
      expect((await fetch(url)).status).toBe(200);
      await eventually(() => expect(reported).toEqual(['cleanup']));
      expect((await fetch(url)).status).toBe(200); // the place and the connection came back
      await eventually(() => expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 2 }));
      expect(failed).toBe(2);
      expect(pool.borrowed).toBe(0);
    });
  });

  describe('under overload', () => {
    it('admits backpressure requests, queues queueLimit more, and sheds the rest with 503 and Retry-After', async () => {
      const pool = fakePool(1);
      const { promise: blocked, open: unblock } = createGate();
      const { url, guard } = await serve(async (_env, start) => {
        await connection();
        await blocked;
        return ok(start);
      }, { pool, queueLimit: 1 });
      const admitted = fetch(url);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const queued = fetch(url);
      await eventually(() => expect(guard.stats().queued).toBe(1));
      const shed = await fetch(url);
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      unblock();
      expect((await admitted).status).toBe(200);
      expect((await queued).status).toBe(200);
      expect(guard.stats().rejected).toBe(1);
    });

    it('answers 503 to a request that waited longer than queueTimeout', async () => {
      const pool = fakePool(1);
      const { promise: blocked, open: unblock } = createGate();
      const { url, guard } = await serve(async (_env, start) => {
        await connection();
        await blocked;
        return ok(start);
      }, { pool, queueTimeout: 50 });
      const admitted = fetch(url);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const late = await fetch(url);
      expect(late.status).toBe(503);
      expect(late.headers.get('retry-after')).toBe('1');
      unblock();
      expect((await admitted).status).toBe(200);
    });

    it('times out a request queued after the queue emptied no sooner than queueTimeout', async () => {
      const pool = fakePool(1);
      const gates = [createGate(), createGate()];
      let served = 0;
      const { url, guard } = await serve(async (_env, start) => {
        await connection();
        const gate = gates[served++];
        if (gate) await gate.promise;
        return ok(start);
      }, { pool, queueTimeout: 300 });
      const first = fetch(url);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const second = fetch(url); // queued, then admitted when the first ends: the queue is empty again
      await eventually(() => expect(guard.stats().queued).toBe(1));
      gates[0]!.open();
      expect((await first).status).toBe(200);
      await eventually(() => expect(guard.stats().queued).toBe(0));
      const queuedAt = Date.now();
      const third = await fetch(url); // waits behind the second, which holds its place
      expect(third.status).toBe(503);
      expect(Date.now() - queuedAt).toBeGreaterThanOrEqual(290);
      gates[1]!.open();
      expect((await second).status).toBe(200);
      expect(guard.stats()).toMatchObject({ queued: 0, rejected: 1 });
    });

    it('lets in requests that lease nothing however many hold places, and they take none', async () => {
      const pool = fakePool(1);
      const { promise: blocked, open: unblock } = createGate();
      const { url, guard } = await serve(async (env, start) => {
        if (env.path === '/db') {
          await connection();
          await blocked;
        }
        return ok(start);
      }, { pool, queueLimit: 0 });
      const holder = fetch(`${url}/db`);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const plain = await Promise.all(Array.from({ length: 5 }, () => fetch(`${url}/plain`)));
      expect(plain.map(({ status }) => status)).toEqual([200, 200, 200, 200, 200]);
      expect(guard.stats()).toMatchObject({ inFlight: 1, rejected: 0 });
      unblock();
      expect((await holder).status).toBe(200);
    });
  });

  describe('admission at the first lease', () => {
    const scopeFor = (url: string) => createScope({ method: 'GET', url, logger: quiet });

    it('refuses the connection a request held once the request ended: it went back to the pool', async () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1) });
      const ended = scopeFor('/ended');
      enterGuard(guard, ended);
      const leases = leasesFor(ended)!;
      const held = await leases.get();
      await ended.close('complete');
      expect(guard.stats()).toMatchObject({ released: 1 });
      await expect(leases.get()).rejects.toMatchObject({ code: 'ERR_CLOSEGUARD_REQUEST_ENDED' });
      // The next request gets that same connection: the ended one must never reach it again.
      const next = scopeFor('/next');
      enterGuard(guard, next);
      expect(await leasesFor(next)!.get()).toBe(held);
      await next.close('complete');
    });

    it('lets every request in, takes a place at the first lease, and queues a lease when none is free', async () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1), queueTimeout: 5_000 });
      const first = scopeFor('/first');
      const second = scopeFor('/second');
      enterGuard(guard, first);
      enterGuard(guard, second);
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0 });
      await leasesFor(first)!.get();
      const waiting = leasesFor(second)!.get();
      expect(guard.stats()).toMatchObject({ inFlight: 1, queued: 1 });
      await first.close('complete');
      await waiting;
      expect(guard.stats()).toMatchObject({ inFlight: 1, queued: 0 });
      await second.close('complete');
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0, leased: 2, released: 2 });
    });

    it('takes one place for all of a request\'s aliases', async () => {
      const guard = new ConnectionClosingMiddleware({ pools: { a: fakePool(1), b: fakePool(1) }, backpressure: 1 });
      const scope = scopeFor('/two');
      enterGuard(guard, scope);
      await Promise.all([leasesFor(scope)!.get('a'), leasesFor(scope)!.get('b')]);
      expect(guard.stats()).toMatchObject({ inFlight: 1, queued: 0, leased: 2 });
      await scope.close('complete');
      expect(guard.stats()).toMatchObject({ inFlight: 0, released: 2 });
    });

    it('tells a queued lease its turn in its own async context, not in that of the request whose end let it in', async () => {
      const requestId = new AsyncLocalStorage<string>();
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1), queueTimeout: 5_000 });
      const first = scopeFor('/first');
      enterGuard(guard, first);
      await leasesFor(first)!.get();
      const second = scopeFor('/second');
      enterGuard(guard, second);
      const seen = requestId.run('second', () => leasesFor(second)!.get().then(() => requestId.getStore()));
      await requestId.run('first', () => first.close('complete'));
      expect(await seen).toBe('second');
      await second.close('complete');
    });

    it('refuses a lease whose request left, at once, and one that waits too long with a coded 503', async () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1), queueTimeout: 50 });
      const holder = scopeFor('/holder');
      enterGuard(guard, holder);
      await leasesFor(holder)!.get();
      const gone = scopeFor('/gone');
      enterGuard(guard, gone);
      gone.abort('aborted');
      await expect(leasesFor(gone)!.get()).rejects.toMatchObject({ code: 'ERR_CLOSEGUARD_CLIENT_CLOSED' });
      const late = scopeFor('/late');
      enterGuard(guard, late);
      const error: unknown = await leasesFor(late)!.get().catch((caught: unknown) => caught);
      expect(isCloseguardError(error, 'ERR_CLOSEGUARD_QUEUE_TIMEOUT')).toBe(true);
      expect(error).toMatchObject({ status: 503, statusCode: 503, headers: { 'retry-after': '1' } });
      await Promise.all([gone.close('aborted'), late.close('error'), holder.close('complete')]);
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0, leased: 1, released: 1 });
    });

    it('gives the place back when a request ended before its queued lease got one', async () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1), queueTimeout: 5_000 });
      const holder = scopeFor('/holder');
      enterGuard(guard, holder);
      await leasesFor(holder)!.get();
      const hasty = scopeFor('/hasty');
      enterGuard(guard, hasty);
      const lease = leasesFor(hasty)!.get().catch((caught: unknown) => caught);
      const closing = hasty.close('complete'); // answered without awaiting its lease
      await holder.close('complete');
      expect(await lease).toMatchObject({ code: 'ERR_CLOSEGUARD_REQUEST_ENDED' });
      await closing;
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0, leased: 1, released: 1 });
    });

    it('refuses new requests at the door once close() was called', async () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1) });
      await guard.close({ timeout: 0 });
      expect(() => enterGuard(guard, scopeFor('/late'))).toThrow(expect.objectContaining({ code: 'ERR_CLOSEGUARD_SHUTDOWN', statusCode: 503 }));
    });
  });

  describe('track(pool)', () => {
    it('reclaims a hand-acquired connection at request end and reports where it was acquired', async () => {
      const pool = fakePool(1);
      const leaks: LeakReport[] = [];
      const guard = new ConnectionClosingMiddleware({ pool, onLeak: (leak) => void leaks.push(leak) });
      const tracked = guard.track(pool);
      const server = http.createServer(requestListener(guard.wrap(async function leakyRoute(_env, start) {
        await tracked.acquire(); // never released
        return ok(start);
      }), { logger: quiet }));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise((resolve) => server.close(resolve)));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await (await fetch(url)).text();
      await eventually(() => expect(leaks).toHaveLength(1));
      expect(leaks[0]?.stack).toMatch(/leakyRoute/);
      expect(guard.stats().leaksReclaimed).toBe(1);
      await eventually(() => expect(pool.borrowed).toBe(0));
      // The guard took the leak over and gave it back: leased − released − destroyed is what requests hold, 0.
      expect(guard.stats()).toMatchObject({ leased: 1, released: 1 });
      server.closeAllConnections();
    });
  });

  describe('close()', () => {
    it('waits for requests in flight, answers new ones with 503, then drains the pools', async () => {
      const pool = fakePool(2);
      const { promise: blocked, open: unblock } = createGate();
      const { url, guard } = await serve(async (_env, start) => {
        await connection();
        await blocked;
        return ok(start);
      }, { pool });
      const inFlight = fetch(url);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const closing = guard.close();
      expect((await fetch(url)).status).toBe(503);
      unblock();
      expect((await inFlight).status).toBe(200);
      await closing;
      expect(pool.size).toBe(0);
    });

    it('neither waits for nor cuts a request that holds no connection; its first lease after close() is a 503', async () => {
      const pool = fakePool(2);
      const { promise: blocked, open: unblock } = createGate();
      let waiting = false;
      const { url, guard } = await serve(async (_env, start) => {
        waiting = true;
        await blocked; // reading a slow body, say: no connection yet
        await connection();
        return ok(start);
      }, { pool });
      const inFlight = fetch(url);
      await eventually(() => expect(waiting).toBe(true));
      await guard.close({ timeout: 60_000 }); // resolves at once: nothing is leased
      expect(pool.size).toBe(0);
      unblock();
      const answer = await inFlight;
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
    });

    it('throws a TypeError for a timeout that is not milliseconds ≥ 0', () => {
      const guard = new ConnectionClosingMiddleware({ pool: fakePool(1) });
      expect(() => guard.close({ timeout: -1 })).toThrow(TypeError);
    });
  });

  describe('with bad options', () => {
    it.each([
      [{}, /exactly one of the options pool/],
      [{ pool: {} }, /option pool must have acquire/],
      [{ pools: { main: { acquire() {} } } }, /option pools\.main/],
      [{ pool: { acquire() {}, release() {}, destroy() {} } }, /backpressure is required/],
      [{ pool: { acquire() {}, release() {}, destroy() {}, max: 2 }, maxAge: -1 }, /maxAge/],
      [{ pool: { acquire() {}, release() {}, destroy() {}, max: 2 }, backpressure: 0 }, /backpressure must be an integer ≥ 1/],
    ])('throws a TypeError naming the option (%#)', (options, message) => {
      expect(() => new ConnectionClosingMiddleware(options as ConnectionClosingOptions)).toThrow(message);
    });
  });

  describe('connection() outside a request', () => {
    it('throws ERR_CLOSEGUARD_NO_REQUEST synchronously', () => {
      expect(() => connection()).toThrow(expect.objectContaining({ code: 'ERR_CLOSEGUARD_NO_REQUEST' }) as Error);
    });
  });
});
