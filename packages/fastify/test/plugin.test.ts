import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, getErrorStatus } from '@closeguard/core';
import type { FastifyInstance } from 'fastify';
import { connectionClosing } from '@closeguard/fastify';
import { backendPidOf, createCursorProbe, ndjsonCursor } from '@closeguard/conformance';
import { eventually, getUntilClosed, hangUpMidStream, hangUpWhen, postAndHangUpWhen, quiet, useHarness } from './harness.ts';

const harness = useHarness();

/** An error handler that records each error and answers its status. */
function recordErrors(fastify: FastifyInstance): unknown[] {
  const errors: unknown[] = [];
  fastify.setErrorHandler((error, _request, reply) => {
    errors.push(error);
    return reply.code(getErrorStatus(error)).send('failed');
  });
  return errors;
}

describe('connectionClosing on PostgreSQL', () => {
  describe('when async and callback handlers lease a connection', () => {
    it('releases each lease once', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/async', async (request) => (await (await request.db<pg.Client>()).query('SELECT 1 AS one')).rows[0]);
        fastify.get('/callback', (request, reply) => {
          void request.db<pg.Client>().then((client) => client.query('SELECT 2 AS two')).then(({ rows }) => reply.send(rows[0]));
        });
      });
      expect(await (await fetch(`${url}/async`)).json()).toEqual({ one: 1 });
      expect(await (await fetch(`${url}/callback`)).json()).toEqual({ two: 2 });
      await eventually(() => expect(guard.stats().released).toBe(2));
      expect(guard.stats()).toMatchObject({ leased: 2, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
      expect(harness.finished.map(({ reason, route }) => [reason, route])).toEqual([['complete', '/async'], ['complete', '/callback']]);
    });
  });

  describe('when a callback handler streams a cursor with reply.send(stream) and the client hangs up mid-stream', () => {
    it('destroys the stream, closes the cursor, and gives the connection back once', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const closed = { count: 0 };
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/rows', (request, reply) => {
          void request.db<pg.Client>().then((client) => reply.type('application/x-ndjson').send(ndjsonCursor(client, 1_000_000, createCursorProbe({ onClosed: () => closed.count++ }))));
        });
      });
      await hangUpMidStream(`${url}/rows`);
      await eventually(() => expect(closed.count).toBe(1));
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['aborted']);
    });
  });

  describe('when the client hangs up on a POST whose body was read (Fastify fires no onRequestAbort)', () => {
    it('keeps the connection while the handler runs, and its later query uses the same client', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: 5_000 });
      const seen = { started: false, before: 0, after: 0 };
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.post('/late', async (request) => {
          const client = await request.db<pg.Client>();
          seen.before = await backendPidOf(client);
          seen.started = true;
          await client.query('SELECT pg_sleep(0.4)');
          seen.after = await backendPidOf(client);
          return { body: request.body };
        });
        fastify.get('/pid', async (request) => backendPidOf(await request.db<pg.Client>()));
      });
      await postAndHangUpWhen(`${url}/late`, { hello: 'world' }, () => seen.started);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(seen.after).toBe(seen.before);
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(await (await fetch(`${url}/pid`)).text()).toBe(String(seen.before));
    });

    it('destroys the connection when the handler runs past abortGrace', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: 100 });
      let started = false;
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.post('/slow', async (request) => {
          const client = await request.db<pg.Client>();
          started = true;
          await client.query('SELECT pg_sleep(1)').catch(() => undefined);
          return 'late';
        });
      });
      await postAndHangUpWhen(`${url}/slow`, { n: 1 }, () => started);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      await eventually(() => expect(harness.finished.map(({ reason }) => reason)).toEqual(['timeout']));
    });
  });

  describe("with Fastify's connectionTimeout", () => {
    it('runs onTimeout, and the connection stays with the handler until it finished', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: 5_000 });
      const seen = { timeouts: 0, before: 0, after: 0 };
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.addHook('onTimeout', (_request, _reply, done) => {
          seen.timeouts++;
          done();
        });
        fastify.get('/slow', async (request) => {
          const client = await request.db<pg.Client>();
          seen.before = await backendPidOf(client);
          await client.query('SELECT pg_sleep(0.5)');
          seen.after = await backendPidOf(client);
          return 'done';
        });
      }, { connectionTimeout: 150 });
      expect((await getUntilClosed(`${url}/slow`)).status).toBeUndefined(); // the socket was cut
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(seen.timeouts).toBe(1);
      expect(seen.after).toBe(seen.before);
      expect(guard.stats().destroyed.abandoned).toBe(0);
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['aborted']);
    });
  });

  describe("with Fastify's handlerTimeout (request.signal)", () => {
    it('answers through the error handler once, and releases the connection only when the handler finished', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: 5_000 });
      const seen = { aborted: false, finished: false };
      let errors: unknown[] = [];
      const { url } = await harness.serve(guard, (fastify) => {
        errors = recordErrors(fastify);
        fastify.get('/slow', { handlerTimeout: 100 }, async (request) => {
          const client = await request.db<pg.Client>();
          await client.query('SELECT pg_sleep(0.5)');
          seen.aborted = request.signal.aborted;
          await client.query('SELECT 1'); // still its own client after Fastify answered
          seen.finished = true;
          return 'late';
        });
      });
      const response = await fetch(`${url}/slow`);
      expect(response.status).toBe(503);
      expect(guard.stats().released).toBe(0);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(seen).toEqual({ aborted: true, finished: true });
      expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['FST_ERR_HANDLER_TIMEOUT']);
      expect(guard.stats().destroyed.abandoned).toBe(0);
    });
  });

  describe("the framework's error handler", () => {
    it('sees each error once: async throw, rejection, callback reply.send(error), and a timer error', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      let errors: unknown[] = [];
      const { url } = await harness.serve(guard, (fastify) => {
        errors = recordErrors(fastify);
        fastify.get('/throw', async (request) => {
          await request.db();
          throw new Error('thrown');
        });
        fastify.get('/reject', (request) => request.db().then(() => Promise.reject(new Error('rejected'))));
        fastify.get('/callback', (request, reply) => {
          void request.db().then(() => setTimeout(() => void reply.send(new Error('from a timer')), 10));
        });
        fastify.get('/sync', () => {
          throw new Error('sync');
        });
      });
      for (const path of ['/throw', '/reject', '/callback', '/sync']) expect((await fetch(`${url}${path}`)).status).toBe(500);
      expect(errors.map((error) => (error as Error).message)).toEqual(['thrown', 'rejected', 'from a timer', 'sync']);
      await eventually(() => expect(guard.stats().released).toBe(3));
      expect(harness.finished.map(({ reason }) => reason)).toEqual(['error', 'error', 'error', 'error']);
    });
  });

  describe('under overload', () => {
    it("rejects request.db() with a 503 that Fastify's default error handler answers with Retry-After", async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, backpressure: 1, queueLimit: 0 });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const sent: number[] = [];
      let handled = 0;
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.addHook('onSend', (_request, reply, payload, done) => {
          sent.push(reply.statusCode);
          done(null, payload);
        });
        fastify.get('/hold', async (request) => {
          handled++;
          await request.db();
          await gate;
          return 'held';
        });
      });
      const holder = fetch(`${url}/hold`);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      const shed = await fetch(`${url}/hold`);
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(await shed.json()).toMatchObject({ statusCode: 503, code: 'ERR_CLOSEGUARD_OVERLOADED' });
      release();
      expect((await holder).status).toBe(200);
      expect(handled).toBe(2);
      expect(sent.sort()).toEqual([200, 503]);
      expect(guard.stats().rejected).toBe(1);
    });

    it('answers 503, not 500, through an error handler written the usual way (reply.code(error.statusCode ?? 500))', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, backpressure: 1, queueLimit: 0 });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const errors: unknown[] = [];
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
          errors.push(error);
          return reply.code(error.statusCode ?? 500).send({ error: error.name });
        });
        fastify.get('/hold', async (request) => {
          await request.db();
          await gate;
          return 'held';
        });
      });
      const holder = fetch(`${url}/hold`);
      await eventually(() => expect(guard.stats().inFlight).toBe(1));
      expect((await fetch(`${url}/hold`)).status).toBe(503);
      release();
      expect((await holder).status).toBe(200);
      expect(errors).toEqual([expect.objectContaining({ code: 'ERR_CLOSEGUARD_OVERLOADED', statusCode: 503 })]);
    });
  });

  describe('connection() with asyncContext', () => {
    it('finds the request in GET and POST routes, async and callback style', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, asyncContext: true });
      const echo = async (body: unknown): Promise<unknown> =>
        (await (await connection<pg.Client>()).query<{ echo: unknown }>('SELECT $1::jsonb AS echo', [JSON.stringify(body)])).rows[0]!.echo;
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/async', async () => echo('get'));
        fastify.get('/callback', (_request, reply) => {
          setTimeout(() => void echo('timer').then((value) => reply.send(value)), 5);
        });
        fastify.post('/async', async (request) => echo(request.body));
        fastify.post('/callback', (request, reply) => {
          void echo(request.body).then((value) => reply.send(value));
        });
      });
      const post = (path: string): Promise<Response> =>
        fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path }) });
      expect(await (await fetch(`${url}/async`)).text()).toBe('get');
      expect(await (await fetch(`${url}/callback`)).text()).toBe('timer');
      expect(await (await post('/async')).json()).toEqual({ path: '/async' });
      expect(await (await post('/callback')).json()).toEqual({ path: '/callback' });
      await eventually(() => expect(guard.stats().released).toBe(4));
      expect(guard.stats().leased).toBe(4);
    });
  });

  describe('requests that never reach a handler', () => {
    it('finish when their reply goes out: a 404, a preHandler that answers, a body Fastify cannot parse', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool, abortGrace: 10_000 });
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.post('/json', (request) => request.body);
        fastify.get('/private', { preHandler: (_request, reply) => void reply.code(401).send('no') }, () => 'secret');
      });
      expect((await fetch(`${url}/missing`)).status).toBe(404);
      expect((await fetch(`${url}/private`)).status).toBe(401);
      expect((await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })).status).toBe(400);
      // Not held for abortGrace (10 s): each request ended as soon as it was answered.
      await eventually(() => expect(harness.finished.map(({ reason }) => reason).sort()).toEqual(['complete', 'complete', 'error']));
      expect(guard.stats().inFlight).toBe(0);
    });
  });

  describe('when the plugin is registered after a route was declared', () => {
    it('follows that route too, and gives the connection back when its handler and response are done', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const { url } = await harness.serve(undefined, (fastify) => {
        fastify.get('/early', async (request) => (await (await request.db<pg.Client>()).query('SELECT 1 AS one')).rows[0]);
        void fastify.register(connectionClosing, { guard, logger: quiet });
      });
      expect(await (await fetch(`${url}/early`)).json()).toEqual({ one: 1 });
      await eventually(() => expect(guard.stats().released).toBe(1));
      // Handlers are followed through Fastify's handler channel, not from onRoute: also routes declared earlier.
      expect(harness.finished.map(({ reason, route }) => [reason, route])).toEqual([['complete', '/early']]);
    });
  });

  describe('fastify.close()', () => {
    it('closes the guard and drains its pool', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      const { url, fastify } = await harness.serve(guard, (app) => {
        app.get('/one', async (request) => (await (await request.db<pg.Client>()).query('SELECT 1 AS one')).rows[0]);
      });
      expect(fastify.closeguard).toBe(guard);
      expect((await fetch(`${url}/one`, { headers: { connection: 'close' } })).status).toBe(200);
      await eventually(() => expect(guard.stats().released).toBe(1));
      await fastify.close();
      expect(pool.size).toBe(0);
      await expect(guard.close()).resolves.toBeUndefined();
    });
  });

  describe('when the client hangs up while the handler waits in a hook', () => {
    it('ends the request once the handler has run', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      let waiting = false;
      const { url } = await harness.serve(guard, (fastify) => {
        fastify.get('/hooked', { preHandler: async () => { waiting = true; await sleep(100); } }, async (request) => {
          await request.db().catch(() => undefined); // the request was aborted: no lease
          return 'late';
        });
      });
      await hangUpWhen(`${url}/hooked`, () => waiting);
      await eventually(() => expect(harness.finished.map(({ reason, url: u, route }) => [reason, u, route])).toEqual([['aborted', '/hooked', '/hooked']]));
      expect(guard.stats().destroyed.abandoned).toBe(0);
    });
  });
});
