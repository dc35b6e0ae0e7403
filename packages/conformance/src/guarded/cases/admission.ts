import { describe, expect, it } from 'vitest';
import { CloseguardError } from '@closeguard/core';
import { eventually } from '../../postgres/harness.ts';
import type { GuardedContext } from '../stage.ts';

/** Backpressure: what fits is served, the excess queued, the rest shed; a slow upload holds no place. */
export function admissionCases(context: GuardedContext): void {
  const { client } = context;

  describe("under four times the pool's max in concurrent requests", () => {
    it("serves what fits, queues the excess, and sheds the rest with 503 and Retry-After through the framework's error path", async () => {
      const stage = context.begin();
      const { pool } = stage.pool(2, { acquireTimeout: 2_000 });
      const { url, guard } = await stage.serve({ pool, queueLimit: 4, queueTimeout: 10_000 });
      const responses = await Promise.all(Array.from({ length: 8 }, () => client.get(`${url}/sleep?s=0.2`)));
      expect(responses.map(({ status }) => status).sort()).toEqual([200, 200, 200, 200, 200, 200, 503, 503]);
      expect(responses.find(({ status }) => status === 503)?.retryAfter).toBe('1');
      expect(guard.stats()).toMatchObject({ rejected: 2, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
      expect(stage.errors.filter((error) => !(error instanceof CloseguardError))).toEqual([]);
    });
  });

  describe('when as many clients as backpressure admits upload their bodies slowly', () => {
    it('answers a request that needs a connection at once, and the uploads once they arrive', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(2);
      // queueLimit 0: a request that had to wait for a place would get a 503 at once.
      const { url, guard } = await stage.serve({ pool, backpressure: 2, queueLimit: 0 });
      const uploads = await Promise.all([client.startSlowUpload(`${url}/echo`), client.startSlowUpload(`${url}/echo`)]);
      await eventually(() => expect(context.startedSinceBegin()).toBe(2));
      expect(guard.stats()).toMatchObject({ inFlight: 0, queued: 0 });
      expect(await client.get(`${url}/one`)).toMatchObject({ status: 200, text: '1' });
      expect(await Promise.all(uploads.map((upload) => upload.finish()))).toEqual([200, 200]);
      expect(guard.stats()).toMatchObject({ rejected: 0 });
      await eventually(() => expect(guard.stats().released).toBe(3));
    });
  });
}
