import type { ServerResponse } from 'node:http';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { backendPidOf } from '@closeguard/conformance';
import { eventually, hangUpMidStream, useHarness } from './harness.ts';

const harness = useHarness();

/** Long enough that a request held until abortGrace would fail `eventually` (5 s): each must end when its response does. */
const LONG_GRACE_MS = 10_000;

/** Leases, queries, hijacks the reply and answers through `reply.raw`, as a proxy or an SSE route does. */
async function answerRaw(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const pid = await backendPidOf(await request.db<pg.Client>());
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/plain' });
  reply.raw.end(`raw from ${pid}`);
}

function writeHead(raw: ServerResponse): void {
  raw.writeHead(200, { 'content-type': 'text/plain' });
  raw.write('first chunk\n');
}

describe('connectionClosing with hijacked replies', () => {
  describe('when a hook or a handler leases, hijacks the reply and ends reply.raw', () => {
    it('gives each connection back as soon as the raw response is over, released', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: LONG_GRACE_MS });
      const never = (): string => 'not reached';
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/on-request', { onRequest: answerRaw }, never);
        fastify.get('/pre-validation', {
          preValidation: (request, reply, done) => void answerRaw(request, reply).then(() => done()),
        }, never);
        fastify.get('/pre-handler', { preHandler: answerRaw }, never);
        fastify.get('/async-handler', answerRaw);
        fastify.get('/callback-handler', (request, reply) => {
          void answerRaw(request, reply);
        });
        fastify.get('/pid', async (request) => String(await backendPidOf(await request.db<pg.Client>())));
      });
      const paths = ['/on-request', '/pre-validation', '/pre-handler', '/async-handler', '/callback-handler'];
      const pid = await (await fetch(`${url}/pid`)).text();
      for (const path of paths) {
        const response = await fetch(`${url}${path}`);
        expect(response.status).toBe(200);
        // The same backend each time: the one connection was released, not destroyed and replaced.
        expect(await response.text()).toBe(`raw from ${pid}`);
      }
      await eventually(() => expect(guard.stats().released).toBe(paths.length + 1));
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
      await eventually(() => expect(harness.finished.map(({ reason }) => reason)).toEqual(Array(paths.length + 1).fill('complete')));
    });
  });

  describe('when a hijacked reply is ended later, by a timer', () => {
    it('keeps the connection until reply.raw ends, then releases it', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: LONG_GRACE_MS });
      const seen = { borrowedWhileOpen: -1 };
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/later', async (request, reply) => {
          await backendPidOf(await request.db<pg.Client>());
          reply.hijack();
          writeHead(reply.raw);
          setTimeout(() => {
            seen.borrowedWhileOpen = pool.borrowed;
            reply.raw.end('last chunk\n');
          }, 50);
        });
      });
      const response = await fetch(`${url}/later`);
      expect(await response.text()).toBe('first chunk\nlast chunk\n');
      expect(seen.borrowedWhileOpen).toBe(1);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['complete']);
    });
  });

  describe('when the client hangs up on a hijacked reply', () => {
    it('releases the connection the route no longer uses, without waiting for abortGrace', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: LONG_GRACE_MS });
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/events', { preHandler: async (request, reply) => {
          await backendPidOf(await request.db<pg.Client>());
          reply.hijack();
          writeHead(reply.raw); // an event stream that never ends on its own
        } }, () => 'not reached');
      });
      await hangUpMidStream(`${url}/events`);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['aborted']);
    });
  });
});
