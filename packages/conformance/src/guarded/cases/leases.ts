import { describe, expect, it } from 'vitest';
import { eventually } from '../../postgres/harness.ts';
import { RouteError } from '../routes.ts';
import type { GuardedContext } from '../stage.ts';

/** A route leases through the framework's `db()`: given back once, whether it answers or fails. */
export function leaseCases(context: GuardedContext): void {
  const { client } = context;

  describe('a route that leases a connection', () => {
    it('gives it back after each request, async and callback style', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      for (const path of ['/one', '/one-callback', '/one']) expect(await client.get(`${url}${path}`)).toMatchObject({ status: 200, text: '1' });
      await eventually(() => expect(guard.stats().released).toBe(3));
      expect(guard.stats().leased).toBe(3);
      expect(stage.errors).toEqual([]);
    });
  });

  describe.each([
    ['throws after db()', '/throw'],
    ['rejects after db()', '/reject'],
    ['fails after db() in a callback-style handler', '/throw-callback'],
  ])('when the handler %s', (_title, path) => {
    it("answers 500 through the framework's error handler, once, and releases the client", async () => {
      const stage = context.begin();
      const { pool } = stage.pool(1);
      const { url, guard } = await stage.serve({ pool });
      expect((await client.get(`${url}${path}`)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(stage.errors).toHaveLength(1);
      expect(stage.errors[0]).toBeInstanceOf(RouteError);
      expect((stage.errors[0] as Error).message).toContain(path);
    });
  });

  describe("the framework's error handler", () => {
    it('sees each error once, and only errors', async () => {
      const stage = context.begin();
      const { pool } = stage.pool(2);
      const { url } = await stage.serve({ pool });
      for (const path of ['/throw', '/one', '/reject', '/throw-callback', '/one-callback']) await client.get(`${url}${path}`);
      expect(stage.errors.map((error) => (error as Error).message)).toEqual(['/throw', '/reject', '/throw-callback'].map((path) => new RouteError(path).message));
      expect(new Set(stage.errors).size).toBe(3);
    });
  });
}
