import { describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware, type PoolLike } from '@closeguard/core';
import { createScope, enterGuard, leasesFor } from '@closeguard/core/host';
import { quiet } from '@closeguard/conformance';

/** A pool whose release() and destroy() are synchronous and return nothing, as a pg.Pool client's release() does. */
function syncPool(max: number): PoolLike<object> & { released: number } {
  const idle: object[] = [];
  let created = 0;
  return {
    max,
    released: 0,
    get available() {
      return idle.length;
    },
    acquire() {
      const connection = idle.pop() ?? { id: ++created };
      return Promise.resolve(connection);
    },
    release(connection) {
      this.released++;
      idle.push(connection);
    },
    destroy: () => undefined,
  };
}

describe('giving a connection back to a pool whose release() returns nothing', () => {
  it('ends the request at once: close() settles without waiting, the place and the connection are back', async () => {
    const pool = syncPool(1);
    const guard = new ConnectionClosingMiddleware({ pool });
    const scope = createScope({ method: 'GET', url: '/', logger: quiet });
    enterGuard(guard, scope);
    await leasesFor(scope)!.get();
    expect(guard.stats()).toMatchObject({ inFlight: 1, leased: 1, released: 0 });

    const closing = scope.close('complete');
    // Synchronously: released, the admission place given back.
    expect(pool.released).toBe(1);
    expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 1, released: 1 });
    await closing;
  });

  it('lets the next queued lease in from the release itself', async () => {
    const pool = syncPool(1);
    const guard = new ConnectionClosingMiddleware({ pool, queueTimeout: 5_000 });
    const first = createScope({ method: 'GET', url: '/first', logger: quiet });
    enterGuard(guard, first);
    const held = await leasesFor(first)!.get();
    const second = createScope({ method: 'GET', url: '/second', logger: quiet });
    enterGuard(guard, second);
    const waiting = leasesFor(second)!.get();
    expect(guard.stats()).toMatchObject({ inFlight: 1, queued: 1 });

    void first.close('complete');
    expect(guard.stats()).toMatchObject({ inFlight: 1, queued: 0 });
    expect(await waiting).toBe(held);
    await second.close('complete');
    expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 2, released: 2 });
  });
});
