import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import { backendPids, terminateBackend } from '../../postgres/index.ts';
import type { GuardedContext } from '../stage.ts';

/** The release policy at request end: unusable and old connections are destroyed. */
export function releaseCases(context: GuardedContext): void {
  const { client } = context;

  describe('when the backend of a leased client is terminated', () => {
    it('destroys the client and serves the next request', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      expect((await client.get(`${url}/terminate`)).status).toBe(500);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await client.get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
    });

    it('destroys the client when an administrator terminates it between two queries, and serves the next request', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      expect((await client.get(`${url}/terminated-outside`)).status).toBe(500);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await client.get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
    });
  });

  describe('with maxAge 0', () => {
    it('destroys each client at the end of its request', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, maxAge: 0 });
      await client.get(`${url}/one`);
      await client.get(`${url}/one`);
      await eventually(() => expect(guard.stats().destroyed.obsolete).toBe(2));
    });
  });

  describe('with healthCheck', () => {
    it('replaces a reused client whose backend was killed', async () => {
      const stage = context.begin();
      const { pool, name } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool, healthCheck: true });
      const first = Number((await client.get(`${url}/pid`)).text);
      await eventually(() => expect(guard.stats().released).toBe(1));
      await terminateBackend(first);
      await eventually(async () => expect(await backendPids(name)).toEqual([]));
      const second = Number((await client.get(`${url}/pid`)).text);
      // Replaced by the pool (which knows the connection ended) or, had the driver not heard yet, by the check.
      expect(second).not.toBe(first);
      expect(guard.stats().destroyed.unusable).toBeLessThanOrEqual(1);
    });
  });
}
