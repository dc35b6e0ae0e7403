import diagnostics from 'node:diagnostics_channel';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { connectionClosing } from '@closeguard/fastify';
import { eventually, quiet, useHarness } from './harness.ts';

const harness = useHarness();

describe("connectionClosing and the app's onRoute hooks", () => {
  describe('when onRoute hooks are registered before and after the plugin', () => {
    it('each sees the handler the route declared, and the route still gives its connection back', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const handler = async (request: { db<T>(): Promise<T> }): Promise<unknown> => (await (await request.db<pg.Client>()).query('SELECT 1 AS one')).rows[0];
      const seen: Array<[string, boolean]> = [];
      const watch = (name: string) => (route: RouteOptions): void => {
        if (route.url === '/one' && route.method === 'GET') seen.push([name, route.handler === handler]);
      };
      const { url } = await harness.serve(undefined, async (fastify) => {
        fastify.addHook('onRoute', watch('before'));
        await fastify.register(connectionClosing, { guard, logger: quiet });
        fastify.addHook('onRoute', watch('after'));
        await fastify.register((child: FastifyInstance, _options, done) => {
          child.addHook('onRoute', watch('child'));
          child.get('/one', handler);
          done();
        });
      });
      expect(seen).toEqual([['before', true], ['after', true], ['child', true]]);
      expect(await (await fetch(`${url}/one`)).json()).toEqual({ one: 1 });
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(harness.finished.map(({ reason, route }) => [reason, route])).toEqual([['complete', '/one']]);
    });
  });

  describe("when something else publishes on Fastify's handler channel", () => {
    it('ignores messages without a native request (a throw there would be an uncaught exception)', async () => {
      const { pool } = harness.pool(1);
      const { url } = await harness.serve(harness.guard({ pool }), (fastify) => {
        fastify.get('/one', () => 'one');
      });
      for (const event of ['start', 'end', 'asyncEnd']) {
        for (const message of [{}, { request: {} }, { request: { raw: {} }, async: false }]) {
          diagnostics.channel(`tracing:fastify.request.handler:${event}`).publish(message);
        }
      }
      await nextTurn(); // where diagnostics_channel rethrows a subscriber's error
      expect(await (await fetch(`${url}/one`)).text()).toBe('one');
    });
  });
});
