import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import { backendsFor } from '../../postgres/index.ts';
import { SHORT_GRACE_MS, type GuardedContext } from '../stage.ts';

/** `guard.close()`: what is in flight finishes, or is given up on past `timeout`; the pools end empty. */
export function shutdownCases(context: GuardedContext): void {
  const { state, client } = context;

  describe('close() with requests in flight', () => {
    it('lets them finish, answers 503 to new ones (Retry-After, the same body on every host), then drains the pool', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(2);
      const { url, guard } = await stage.serve({ pool });
      const inFlight = client.get(`${url}/sleep?s=0.3`);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const closing = guard.close();
      stage.closed = true;
      const refused = await client.get(`${url}/one`);
      await closing;
      expect(await inFlight).toMatchObject({ status: 200, text: '"slept"' });
      // The same refusal on every host: the bridge's refusal(), written through the framework.
      expect(refused).toEqual({ status: 503, retryAfter: '1', text: 'Service Unavailable\n' });
      expect(pool.size).toBe(0);
    });
  });

  if (context.giveUps) describe('close({ timeout }) with requests that outlive it', () => {
    it('cuts a response whose query runs on, cancels the query server-side, and resolves', async () => {
      const stage = context.begin();
      const { pool, name } = stage.pool(2);
      const { url, guard } = await stage.serve({ pool, abortGrace: SHORT_GRACE_MS });
      const inFlight = client.get(`${url}/sleep?s=600`).catch((error: unknown) => error);
      await eventually(() => expect(state.querying).toBe(true));
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await inFlight).toBeInstanceOf(Error); // cut before its headers
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });

    it('gives up on a handler that never settles: its connection is destroyed, never released', async () => {
      const stage = context.begin();
      const { pool, name } = stage.pool(2);
      const { url, guard } = await stage.serve({ pool, abortGrace: SHORT_GRACE_MS });
      const inFlight = client.get(`${url}/hang`).catch((error: unknown) => error);
      await eventually(() => expect(state.querying).toBe(true));
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await inFlight).toBeInstanceOf(Error);
      expect(guard.stats()).toMatchObject({ released: 0, destroyed: { abandoned: 1 } });
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });

    it('cuts a cursor streamed to a client that stopped reading, and closes the cursor', async () => {
      const stage = context.begin();
      const { pool, name } = stage.pool(2);
      const { url, guard } = await stage.serve({ pool, abortGrace: SHORT_GRACE_MS });
      const reader = await client.pausedReader(`${url}/cursor`);
      await guard.close({ timeout: 50 });
      stage.closed = true;
      expect(await reader.drain(), 'a cut response').toBe(false); // the client reads what was in flight, then the cut
      await eventually(() => expect(state.cursorsClosed).toBe(1));
      expect(pool.size).toBe(0);
      await eventually(async () => expect(await backendsFor(name)).toBe(0));
    });
  });
}
