import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { databaseUrl } from '@closeguard/conformance';
import { describeCommand, expectEverythingGivenBack, expectEveryEvent, givenBack, hangUpOnFirstData, SETTLED, USERS } from '../shared/example-suite.ts';
import { HOST_NAMES } from './hosts.ts';
import { APPLICATION_NAME, start, type Running } from './server.ts';

describe('examples/gateway-app', () => {
  describe('start(databaseUrl)', () => {
    let running: Running;

    beforeEach(async () => {
      running = await start(databaseUrl());
    });

    // Every test ends with each connection given back once, none borrowed, every export body
    // closed, and no backend beyond the pool's idle clients.
    afterEach(async () => {
      try {
        await vi.waitFor(async () => {
          expect(running.bodies.closed).toBe(running.bodies.opened);
          await expectEverythingGivenBack(running, APPLICATION_NAME);
        }, SETTLED);
      } finally {
        await running.close();
      }
    });

    it('answers the same users from the same app in all four hosts, on one guard', async () => {
      for (const name of HOST_NAMES) {
        const response = await fetch(`${running.hosts[name].url}/users`);
        expect(response.status, name).toBe(200);
        expect(await response.json(), name).toEqual(USERS);
      }
      await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leased: 4, released: 4 }), SETTLED);
    });

    describe.each(HOST_NAMES)('mounted in %s', (name) => {
      const url = (path: string): string => `${running.hosts[name].url}${path}`;

      it('streams GET /export as NDJSON, and the body’s finally runs once', async () => {
        await expectEveryEvent(await fetch(url('/export')));
        await vi.waitFor(() => expect(running.bodies).toEqual({ opened: 1, closed: 1 }), SETTLED);
      });

      it('runs the finally once and gives the connection back when the client hangs up mid-stream', async () => {
        await hangUpOnFirstData(url('/export'));
        await vi.waitFor(() => expect(running.bodies).toEqual({ opened: 1, closed: 1 }), SETTLED);
        await vi.waitFor(() => expect(givenBack(running.guard.stats())).toBe(1), SETTLED);
        expect(running.guard.stats().leased).toBe(1);
      });

      it('answers GET /fail with a 500 without the internal message, and the connection goes back', async () => {
        const response = await fetch(url('/fail'));
        expect(response.status).toBe(500);
        expect((await response.text()).trim()).toBe('Internal Server Error');
        await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leased: 1, released: 1 }), SETTLED);
      });

      it('answers a path it does not know 404, leasing nothing', async () => {
        const response = await fetch(url('/nowhere'));
        expect(response.status).toBe(404);
        expect(await response.text()).toBe('Not Found\n');
        expect(running.guard.stats().leased).toBe(0);
      });
    });
  });

  describeCommand(fileURLToPath(new URL('./server.ts', import.meta.url)), APPLICATION_NAME);
});
