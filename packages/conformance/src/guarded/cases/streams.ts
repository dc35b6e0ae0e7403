import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import { hangUpTitle } from '../clients.ts';
import type { GuardedContext } from '../stage.ts';

/** Rows streamed from a cursor through the framework's own response path. */
export function streamCases(context: GuardedContext): void {
  const { state, client } = context;

  describe('when a route streams rows from a cursor', () => {
    it('keeps the connection until the last row is sent, then releases it once', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      const { status, text } = await client.get(`${url}/cursor?n=2500`);
      expect(status).toBe(200);
      expect(text.trim().split('\n')).toHaveLength(2500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(state.cursorsClosed).toBe(1);
    });

    for (const how of client.hangUps) {
      it(`closes the cursor and releases the client once when the client hangs up mid-stream${hangUpTitle(client, how)}`, async () => {
        const stage = context.begin();
        const { pool } = stage.pool(1);
        const { url, guard } = await stage.serve({ pool });
        await client.hangUpMidStream(`${url}/cursor`, how);
        await eventually(() => expect(state.cursorsClosed).toBe(1));
        await eventually(() => expect(guard.stats().released).toBe(1));
        expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
      });
    }
  });
}
