import http from 'node:http';
import { pipeline } from 'node:stream';
import express, { type ErrorRequestHandler } from 'express';
import { describe, expect, it } from 'vitest';
import { connection, ConnectionClosingMiddleware, type ConnectionClosingOptions } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { createCursorProbe, ndjsonCursor } from '@closeguard/conformance';
import { eventually, GRACE_MS, hangUpMidStream, hangUpWhen, quiet, useHarness } from './harness.ts';

const harness = useHarness();

/** An Express app behind connectionClosing(guard), and an error handler that counts what it sees. */
function guarded(options: Partial<ConnectionClosingOptions> & { max?: number } = {}) {
  const { max = 1, ...rest } = options;
  const pool = harness.pool(max);
  const guard = new ConnectionClosingMiddleware({ pool, abortGrace: GRACE_MS, ...rest });
  const app = express();
  app.use(connectionClosing(guard, { logger: quiet }));
  const errors: unknown[] = [];
  const errorHandler: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
    errors.push(error);
    res.status(500).type('text/plain').send('Internal Server Error');
  };
  return { app, guard, pool, errors, errorHandler };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('connectionClosing(guard) on PostgreSQL', () => {
  describe('when an async route queries through req.db()', () => {
    it('answers and releases the client once', async () => {
      const { app, guard } = guarded();
      app.get('/', async (req, res) => {
        const client = await req.db();
        const again = await req.db();
        const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
        res.json({ one: rows[0]?.one, same: client === again });
      });
      const url = await harness.listen(app);
      expect(await (await fetch(url)).json()).toEqual({ one: 1, same: true });
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats()).toMatchObject({ leased: 1, released: 1, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
    });
  });

  describe('when a route streams a cursor with pipeline(stream, res)', () => {
    it('releases the client once after the last row', async () => {
      const { app, guard } = guarded();
      let closed = 0;
      app.get('/', async (req, res) => {
        const stream = ndjsonCursor(await req.db(), 1000, createCursorProbe({ onClosed: () => closed++ }));
        res.type('application/x-ndjson');
        pipeline(stream, res, () => undefined);
      });
      const url = await harness.listen(app);
      const text = await (await fetch(url)).text();
      expect(text.trim().split('\n')).toHaveLength(1000);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(closed).toBe(1);
    });

    it('on a hang-up mid-stream destroys the stream, closes the cursor and releases the client once', async () => {
      const { app, guard } = guarded();
      let closed = 0;
      let destroyed = false;
      app.get('/', async (req, res) => {
        const stream = ndjsonCursor(await req.db(), 1_000_000, createCursorProbe({ onClosed: () => closed++ }));
        stream.once('close', () => (destroyed = stream.destroyed));
        res.type('application/x-ndjson');
        pipeline(stream, res, () => undefined);
      });
      const url = await harness.listen(app);
      await hangUpMidStream(url);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(closed).toBe(1);
      expect(destroyed).toBe(true);
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe('when the client hangs up while the handler still runs', () => {
    it('keeps the connection until an async handler finishes: its later query runs on the same client', async () => {
      const { app, guard } = guarded();
      let hungUp = false;
      let later: { same: boolean; one: number | undefined; releasedBefore: number } | undefined;
      app.get('/', async (req, res) => {
        res.once('close', () => (hungUp = true));
        const client = await req.db();
        await client.query('SELECT 1');
        while (!hungUp) await sleep(5);
        const { rows } = await (await req.db()).query<{ one: number }>('SELECT 1 AS one');
        later = { same: (await req.db()) === client, one: rows[0]?.one, releasedBefore: guard.stats().released };
        res.json(later);
      });
      const url = await harness.listen(app);
      await hangUpWhen(url, () => guard.stats().leased === 1);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(later).toEqual({ same: true, one: 1, releasedBefore: 0 });
      expect(guard.stats().destroyed.abandoned).toBe(0);
    });

    it('keeps the connection until an Express 4 callback handler answers from a timer', async () => {
      const { app, guard } = guarded();
      let hungUp = false;
      let queried = false;
      let releasedBefore: number | undefined;
      app.get('/', (req, res, next) => {
        res.once('close', () => (hungUp = true));
        req.db().then((client) => {
          const poll = (): void => {
            if (!hungUp) return void setTimeout(poll, 5);
            client.query('SELECT 1').then(() => {
              queried = true;
              releasedBefore = guard.stats().released;
              res.send('late');
            }, next);
          };
          poll();
        }, next);
      });
      const url = await harness.listen(app);
      await hangUpWhen(url, () => guard.stats().leased === 1);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(queried).toBe(true);
      expect(releasedBefore).toBe(0);
      expect(guard.stats().destroyed.abandoned).toBe(0);
    });

    it('destroys the connection, never releases it, when the handler outlives abortGrace', async () => {
      const { app, guard } = guarded();
      let lateQuery: 'ok' | 'failed' | undefined;
      app.get('/', async (req, res) => {
        const client = await req.db();
        await client.query('SELECT 1');
        await sleep(GRACE_MS * 4);
        lateQuery = await client.query('SELECT 1').then(() => 'ok' as const, () => 'failed' as const);
        res.send('too late');
      });
      const url = await harness.listen(app);
      await hangUpWhen(url, () => guard.stats().leased === 1);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
      await eventually(() => expect(lateQuery).toBe('failed'));
    });
  });

  describe("the framework's error handler", () => {
    it('sees an Express 5 promise rejection once, and the client is released', async () => {
      const { app, guard, errors, errorHandler } = guarded();
      const failure = new Error('async bug');
      app.get('/', async (req) => {
        await (await req.db()).query('SELECT 1');
        throw failure;
      });
      app.use(errorHandler);
      const url = await harness.listen(app);
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(errors).toEqual([failure]);
    });

    it('sees an Express 4 next(err) from a timer once, and the client is released', async () => {
      const { app, guard, errors, errorHandler } = guarded();
      const failure = new Error('callback bug');
      app.get('/', (req, _res, next) => {
        void req.db().then((client) => client.query('SELECT 1')).then(() => setTimeout(() => next(failure), 10));
      });
      app.use(errorHandler);
      const url = await harness.listen(app);
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(errors).toEqual([failure]);
    });

    it('sees a failed query once, and the client in the failed transaction is destroyed', async () => {
      const { app, guard, errors, errorHandler } = guarded();
      app.get('/', async (req, res) => {
        const client = await req.db();
        await client.query('BEGIN');
        await client.query('SELECT 1/0');
        res.send('unreachable');
      });
      app.use(errorHandler);
      const url = await harness.listen(app);
      expect((await fetch(url)).status).toBe(500);
      await eventually(() => expect(guard.stats().destroyed.unusable).toBe(1));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: '22012' });
    });

    it('sees an error after a hang-up once', async () => {
      const { app, guard, errors, errorHandler } = guarded();
      const failure = new Error('late bug');
      app.get('/', async (req, res) => {
        await (await req.db()).query('SELECT 1');
        if (!res.destroyed) await new Promise((resolve) => res.once('close', resolve));
        throw failure;
      });
      app.use(errorHandler);
      const url = await harness.listen(app);
      await hangUpWhen(url, () => guard.stats().leased === 1);
      await eventually(() => expect(errors).toEqual([failure]));
      await eventually(() => expect(guard.stats().released).toBe(1));
    });
  });

  describe('under overload', () => {
    it('rejects req.db() with a 503 CloseguardError: the error handler sees it, finalhandler answers 503 with Retry-After', async () => {
      const { app, guard } = guarded({ backpressure: 1, queueLimit: 0 });
      const seen: unknown[] = [];
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      app.get('/', async (req, res) => {
        await (await req.db()).query('SELECT 1');
        await held;
        res.send('done');
      });
      app.use(((error: unknown, _req, _res, next) => {
        seen.push(error);
        next(error);
      }) as ErrorRequestHandler);
      app.set('env', 'production');
      const url = await harness.listen(app);
      const first = fetch(url);
      await eventually(() => expect(guard.stats().leased).toBe(1));
      const shed = await fetch(url);
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(seen).toEqual([expect.objectContaining({ code: 'ERR_CLOSEGUARD_OVERLOADED', statusCode: 503 })]);
      release();
      expect((await first).status).toBe(200);
      await eventually(() => expect(guard.stats()).toMatchObject({ rejected: 1, leased: 1, released: 1, inFlight: 0 }));
    });

    it('answers 503 with Retry-After before any route runs once the guard is closing', async () => {
      const { app, guard, errors, errorHandler } = guarded();
      let calls = 0;
      app.get('/', (_req, res) => {
        calls++;
        res.send('ok');
      });
      app.use(errorHandler);
      const url = await harness.listen(app);
      await guard.close();
      const refused = await fetch(url);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).not.toBeNull();
      expect(await refused.text()).toBe('Service Unavailable\n'); // the same refusal on every host
      expect(calls).toBe(0);
      expect(errors).toEqual([]);
    });

    it('serves a queued request once a place frees up', async () => {
      const { app, guard } = guarded({ backpressure: 1, queueLimit: 1 });
      app.get('/', async (req, res) => {
        await (await req.db()).query('SELECT pg_sleep(0.1)');
        res.send('ok');
      });
      const url = await harness.listen(app);
      const statuses = (await Promise.all([fetch(url), fetch(url)])).map((response) => response.status);
      expect(statuses).toEqual([200, 200]);
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });

  describe('with asyncContext: connection() in routes', () => {
    it('works in async and callback GET routes, and in a POST route after express.json()', async () => {
      const { app, guard } = guarded({ asyncContext: true });
      app.use(express.json());
      const pidOf = async (): Promise<number> => (await (await connection()).query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      app.get('/async', async (req, res) => {
        const viaConnection = await connection();
        res.json({ same: viaConnection === (await req.db()), pid: await pidOf() });
      });
      app.get('/callback', (_req, res, next) => {
        setTimeout(() => void pidOf().then((pid) => res.json({ pid }), next), 5);
      });
      app.post('/post', async (req, res) => {
        res.json({ body: req.body as unknown, pid: await pidOf() });
      });
      app.post('/post-callback', (req, res, next) => {
        pidOf().then((pid) => res.json({ body: req.body as unknown, pid }), next);
      });
      const url = await harness.listen(app);
      expect(await (await fetch(`${url}/async`)).json()).toMatchObject({ same: true, pid: expect.any(Number) as number });
      expect(await (await fetch(`${url}/callback`)).json()).toMatchObject({ pid: expect.any(Number) as number });
      for (const path of ['/post', '/post-callback']) {
        const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 1 }) });
        expect(await response.json()).toMatchObject({ body: { n: 1 }, pid: expect.any(Number) as number });
      }
      await eventually(() => expect(guard.stats().released).toBe(4));
    });
  });

  describe('req.db()', () => {
    it('throws ERR_CLOSEGUARD_UNKNOWN_ALIAS synchronously for an alias no pool has', async () => {
      const { app } = guarded();
      app.get('/', (req, res) => {
        try {
          void req.db('nope');
          res.send('no throw');
        } catch (error) {
          res.send((error as { code: string }).code);
        }
      });
      const url = await harness.listen(app);
      expect(await (await fetch(url)).text()).toBe('ERR_CLOSEGUARD_UNKNOWN_ALIAS');
    });
  });

  describe('with keep-alive', () => {
    it('gives each request its own lease, each released once', async () => {
      const { app, guard } = guarded();
      app.get('/', async (req, res) => {
        await (await req.db()).query('SELECT 1');
        res.send('ok');
      });
      const url = await harness.listen(app);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = (): Promise<string> => new Promise((resolve, reject) => {
        http.get(url, { agent }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(await Promise.all([get(), get(), get()])).toEqual(['ok', 'ok', 'ok']);
      agent.destroy();
      await eventually(() => expect(guard.stats().released).toBe(3));
    });
  });
});
