import { describe, expect, it } from 'vitest';
import type { LeakReport } from '@closeguard/core';
import { eventually } from '../../postgres/harness.ts';
import type { GuardedContext } from '../stage.ts';

/** Several pools, hand-acquired connections, and `connection()` through async context. */
export function poolCases(context: GuardedContext): void {
  const { client } = context;

  describe('with two pools under two aliases', () => {
    it('leases from each and gives both back', async () => {
      const stage = context.begin();
      const main = stage.pool(1);
      const analytics = stage.pool(1);
      const { url, guard } = await stage.serve({ pools: { main: main.pool, analytics: analytics.pool }, backpressure: 1 });
      expect(JSON.parse((await client.get(`${url}/two`)).text)).toEqual([main.name, analytics.name]);
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });

  describe('track(pool)', () => {
    it('reclaims a client acquired by hand and reports the acquiring stack', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const leaks: LeakReport[] = [];
      const { url, guard } = await stage.serve({ pool, onLeak: (leak) => void leaks.push(leak) });
      context.state.tracked = guard.track(pool);
      expect((await client.get(`${url}/leak`)).status).toBe(200);
      await eventually(() => expect(leaks).toHaveLength(1));
      expect(leaks[0]?.stack).toMatch(/leakingRoute/);
      expect(leaks[0]?.heldMs).toBeGreaterThanOrEqual(0);
      expect(guard.stats().leaksReclaimed).toBe(1);
    });
  });

  describe('connection() with asyncContext', () => {
    it('finds the request in GET and POST routes', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, asyncContext: true });
      expect(await client.get(`${url}/connection`)).toMatchObject({ status: 200, text: '{"one":1}' });
      const posted = await client.postJson(`${url}/connection`, { hello: 'world' });
      expect(posted.status).toBe(200);
      expect(JSON.parse(posted.text)).toEqual({ hello: 'world' });
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });
}
