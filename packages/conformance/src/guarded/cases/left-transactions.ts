import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import type { GuardedContext } from '../stage.ts';

/** A handler leaves its transaction behind: an aborted one is destroyed with its client, an open one rolled back. */
export function leftTransactionCases(context: GuardedContext): void {
  const { client } = context;

  describe('when a statement fails inside a transaction', () => {
    it('destroys the client in the aborted transaction; the next request sees a clean one', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      expect((await client.get(`${url}/tx-abort`)).status).toBe(200);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(await client.get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
    });
  });

  describe('when the handler leaves a transaction open', () => {
    it('rolls it back and releases the client', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      expect((await client.get(`${url}/tx-open`)).status).toBe(200);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(await client.get(`${url}/left-open`)).toMatchObject({ status: 200, text: 'false' });
      expect(guard.stats().destroyed.unusable).toBe(0);
    });
  });
}
