import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import { backendPids } from '../../postgres/index.ts';
import { hangUpTitle, type HangUp } from '../clients.ts';
import { GRACE_MS, SHORT_GRACE_MS, type GuardedContext } from '../stage.ts';

/** The client leaves early: a busy connection is never handed back, a finished one is. */
export function hangUpCases(context: GuardedContext): void {
  for (const how of context.client.hangUps) hangUpCasesBy(context, how);
}

/** The cases for one way of hanging up (HTTP/2: the stream's reset, or the whole session). */
function hangUpCasesBy(context: GuardedContext, how: HangUp): void {
  const { state, client } = context;
  const by = hangUpTitle(client, how);

  if (context.giveUps) describe(`when the client hangs up during pg_sleep${by}`, () => {
    it('destroys the busy client (never released) and its query ends server-side', async () => {
      const stage = context.begin();
      const { pool, name } = stage.pool(2);
      const { url, guard } = await stage.serve({ pool, abortGrace: SHORT_GRACE_MS });
      await client.hangUpWhen(`${url}/sleep?s=30`, () => state.querying, how);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
    });
  });

  describe(`when the client hangs up while its handler still runs${by}`, () => {
    it('keeps the connection until the handler finished, then releases it', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, abortGrace: GRACE_MS });
      await client.hangUpWhen(`${url}/late?s=0.4`, () => state.lateStarted, how);
      await eventually(() => expect(state.lateQueriedOn).toBeDefined());
      // The query after the hang-up ran on the request's own connection, not one handed to anyone else.
      expect(state.lateQueriedOn).toBe(state.latePid);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(await client.get(`${url}/pid`)).toMatchObject({ status: 200, text: String(state.latePid) });
    });

    if (context.giveUps) it('destroys the connection when the handler runs past abortGrace', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, abortGrace: SHORT_GRACE_MS });
      await client.hangUpWhen(`${url}/late?s=1.5`, () => state.lateStarted, how);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      expect((await client.get(`${url}/one`)).status).toBe(200);
    });
  });

  describe(`when the client hangs up while waiting in the pool queue${by}`, () => {
    it('abandons the wait; the client that comes later goes back to the pool, and the books balance', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, backpressure: 2 });
      const holder = client.get(`${url}/sleep?s=0.5`);
      await eventually(() => expect(pool.borrowed).toBe(1));
      await client.hangUpWhen(`${url}/one`, () => pool.pending === 1, how);
      await eventually(() => expect(guard.stats().abandonedWaits).toBe(1));
      expect((await holder).status).toBe(200);
      // The late connection was taken from the pool and given back: leased − released − destroyed is what requests hold, 0.
      await eventually(() => expect(guard.stats()).toMatchObject({ leased: 2, released: 2 }));
      const { leased, released, destroyed } = guard.stats();
      expect(leased - released - destroyed.unusable - destroyed.obsolete - destroyed.abandoned).toBe(0);
    });
  });
}
