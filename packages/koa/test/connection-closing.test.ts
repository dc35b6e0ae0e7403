import http from 'node:http';
import { Readable } from 'node:stream';
import { createPool as createGenericPool } from 'generic-pool';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { CloseguardError, connection, ConnectionClosingMiddleware } from '@closeguard/core';
import { connectionClosing } from '@closeguard/koa';
import { createCursorProbe, cursorRows, ndjsonCursor } from '@closeguard/conformance';
import { eventually, GRACE_MS, hangUpMidStream, hangUpWhen, unique, useHarness } from './harness.ts';

const harness = useHarness();

async function pid(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

describe('connectionClosing(options) on PostgreSQL', () => {
  describe('a route that calls ctx.db() twice', () => {
    it('gets the same client, leased once and released once', async () => {
      const { pool } = harness.pool(2);
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          const [a, b] = [await ctx.db(), await ctx.db()];
          ctx.body = { same: a === b, pid: await pid(a) };
        });
      });
      const body = (await (await fetch(url)).json()) as { same: boolean };
      expect(body.same).toBe(true);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().leased).toBe(1);
    });
  });

  describe('when a route streams a cursor with ctx.body = stream', () => {
    it('keeps the lease until the last row is sent, then releases it once', async () => {
      const { pool } = harness.pool(1);
      const probe = createCursorProbe();
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          ctx.type = 'application/x-ndjson';
          ctx.body = ndjsonCursor(await ctx.db(), 50_000, probe);
        });
      });
      const response = await fetch(url);
      const reader = response.body!.getReader();
      await reader.read();
      // The middleware's `await next()` has long returned: the lease must still be held.
      expect(guard.stats().released).toBe(0);
      expect(pool.borrowed).toBe(1);
      let text = '';
      const decoder = new TextDecoder();
      for (let step = await reader.read(); !step.done; step = await reader.read()) text += decoder.decode(step.value as Uint8Array, { stream: true });
      expect(text.length).toBeGreaterThan(0);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(probe).toEqual({ opened: 1, rows: 50_000, closed: 1 });
    });

    it('closes the cursor and releases the client once when the client hangs up mid-stream', async () => {
      const { pool } = harness.pool(1);
      let releasedAtClose: number | undefined;
      const probe = createCursorProbe({ onClosing: () => (releasedAtClose = guard.stats().released) });
      const { url, guard, errors } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          ctx.body = ndjsonCursor(await ctx.db(), 1_000_000, probe);
        });
      });
      await hangUpMidStream(url);
      await eventually(() => expect(probe.closed).toBe(1));
      await eventually(() => expect(guard.stats().released).toBe(1));
      // The stream's cleanup ran on the request's own client, before it went back to the pool.
      expect(releasedAtClose).toBe(0);
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
      // Koa's own behaviour (3.1+): a hang-up during a stream body is reported to app 'error'.
      await eventually(() => expect(unique(errors).map((error) => (error as { code?: string }).code)).toEqual(['ERR_STREAM_PREMATURE_CLOSE']));
    });
  });

  describe('when a stream body needs its connection to clean up, with a pool that cannot tell a busy connection', () => {
    it('gives the connection back only after the stream has closed', async () => {
      const pool = createGenericPool({ create: () => Promise.resolve({ id: 1 }), destroy: () => Promise.resolve() }, { max: 1 });
      let releasedAtCleanup: number | undefined;
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          await ctx.db();
          ctx.body = new Readable({
            read() {
              this.push('row\n'.repeat(1_000));
            },
            destroy(error, callback) {
              // Cleanup that still uses the connection (a cursor's close), finishing later.
              setTimeout(() => {
                releasedAtCleanup = guard.stats().released;
                callback(error);
              }, 50);
            },
          });
        });
      });
      await hangUpMidStream(url);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(releasedAtCleanup).toBe(0);
      await pool.drain();
      await pool.clear();
    });
  });

  describe('when a route streams a web ReadableStream', () => {
    it('keeps the lease until the last chunk, and releases it once', async () => {
      const { pool } = harness.pool(1);
      const probe = createCursorProbe();
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          ctx.body = Readable.toWeb(ndjsonCursor(await ctx.db(), 5_000, probe));
        });
      });
      const text = await (await fetch(url)).text();
      expect(text.trim().split('\n')).toHaveLength(5_000);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(probe.closed).toBe(1);
    });

    it('cancels it when the client hangs up, and gives the client back once', async () => {
      const { pool } = harness.pool(1);
      const probe = createCursorProbe();
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          const rows = cursorRows(await ctx.db(), 1_000_000, probe);
          ctx.body = new ReadableStream<Uint8Array>({
            async pull(controller) {
              const step = await rows.next();
              if (step.done) controller.close();
              else controller.enqueue(Buffer.from(step.value));
            },
            async cancel() {
              await rows.return(undefined);
            },
          });
        });
      });
      await hangUpMidStream(url);
      await eventually(() => expect(probe.closed).toBe(1));
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe('when the client hangs up while its handler still runs', () => {
    it('keeps the connection until the handler finished; its later query runs on the same client', async () => {
      const { pool } = harness.pool(1);
      const seen: { before?: number; after?: number; started: boolean } = { started: false };
      const { url, guard } = await harness.serve({ pool, abortGrace: 3_000 }, (koa) => {
        koa.use(async (ctx) => {
          const client = await ctx.db();
          seen.before = await pid(client);
          seen.started = true;
          await client.query('SELECT pg_sleep(0.4)');
          seen.after = await pid(client);
          ctx.body = 'late';
        });
      });
      await hangUpWhen(url, () => seen.started);
      await eventually(() => expect(seen.after).toBeDefined());
      expect(seen.after).toBe(seen.before);
      await eventually(() => expect(guard.stats().released).toBe(1));
      expect(guard.stats().destroyed.abandoned).toBe(0);
    });

    it('destroys the connection when the handler runs past abortGrace', async () => {
      const { pool } = harness.pool(1);
      let started = false;
      const { url, guard } = await harness.serve({ pool, abortGrace: 150 }, (koa) => {
        koa.use(async (ctx) => {
          const client = await ctx.db();
          started = true;
          await client.query('SELECT pg_sleep(1.5)').catch(() => undefined);
          ctx.body = 'too late';
        });
      });
      await hangUpWhen(url, () => started);
      await eventually(() => expect(guard.stats().destroyed.abandoned).toBe(1));
      expect(guard.stats().released).toBe(0);
    });
  });

  describe("Koa's app 'error'", () => {
    it('sees each thrown error once, with its status and generic body', async () => {
      const { pool } = harness.pool(1);
      const thrown = new Error('route failed: secret');
      const { url, guard, errors } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          await (await ctx.db()).query('SELECT 1');
          if (ctx.path === '/throw') throw thrown;
          ctx.body = 'fine';
        });
      });
      const failed = await fetch(`${url}/throw`);
      expect(failed.status).toBe(500);
      expect(await failed.text()).toBe('Internal Server Error');
      expect((await fetch(`${url}/ok`)).status).toBe(200);
      await eventually(() => expect(guard.stats().released).toBe(2));
      expect(errors).toEqual([thrown]);
    });

    it('sees a stream error after the headers (Koa reports it twice: one unique error), and the connection is given back', async () => {
      const { pool } = harness.pool(1);
      const broken = new Error('the stream broke');
      const { url, guard, errors } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          const client = await ctx.db();
          async function* rows(): AsyncGenerator<string> {
            yield `${JSON.stringify((await client.query('SELECT 1 AS one')).rows[0])}\n`;
            await new Promise((resolve) => setTimeout(resolve, 20));
            throw broken;
          }
          ctx.body = Readable.from(rows(), { objectMode: false });
        });
      });
      const outcome = await new Promise<{ status: number; complete: boolean }>((resolve) => {
        http.get(url, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, complete: res.complete }));
          res.on('error', () => resolve({ status: res.statusCode ?? 0, complete: false }));
        });
      });
      expect(outcome).toEqual({ status: 200, complete: false });
      await eventually(() => expect(guard.stats().released).toBe(1));
      await eventually(() => expect(unique(errors)).toEqual([broken]));
    });
  });

  describe('under overload', () => {
    it("rejects ctx.db() with a 503 carrying Retry-After, which Koa answers through its own error path", async () => {
      const { pool } = harness.pool(1);
      let entered = 0;
      let holding = false;
      const { url, guard, errors } = await harness.serve(
        { pool, backpressure: 1, queueLimit: 0 },
        (koa) => {
          koa.use(async (ctx) => {
            entered++;
            const client = await ctx.db();
            holding = true;
            await client.query('SELECT pg_sleep(0.3)');
            ctx.body = 'served';
          });
        },
      );
      const holder = fetch(url);
      await eventually(() => expect(holding).toBe(true));
      const shed = await fetch(url);
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(await shed.text()).toBe('Service Unavailable');
      expect(await (await holder).text()).toBe('served');
      expect(entered).toBe(2);
      expect(errors).toEqual([expect.objectContaining({ code: 'ERR_CLOSEGUARD_OVERLOADED' })]);
      expect(guard.stats()).toMatchObject({ rejected: 1 });
    });

    it('answers 503 after close(), and lets the request in flight finish', async () => {
      const { pool } = harness.pool(1);
      let holding = false;
      const { url, guard } = await harness.serve({ pool }, (koa) => {
        koa.use(async (ctx) => {
          holding = true;
          await (await ctx.db()).query('SELECT pg_sleep(0.2)');
          ctx.body = 'finished';
        });
      });
      const inFlight = fetch(url);
      await eventually(() => expect(holding).toBe(true));
      const closing = guard.close();
      expect((await fetch(url)).status).toBe(503);
      await closing;
      expect(await (await inFlight).text()).toBe('finished');
    });
  });

  describe('connection() with asyncContext', () => {
    it('finds the request in GET and POST routes (after reading the request body)', async () => {
      const { pool } = harness.pool(1);
      const { url, guard } = await harness.serve({ pool, asyncContext: true }, (koa) => {
        koa.use(async (ctx) => {
          let text = '';
          for await (const chunk of ctx.req as AsyncIterable<Buffer>) text += chunk.toString();
          const client = await connection<pg.Client>();
          const { rows } = await client.query<{ echo: string }>('SELECT $1::text AS echo', [text || ctx.method]);
          ctx.body = { echo: rows[0]!.echo, same: client === (await ctx.db()) };
        });
      });
      expect(await (await fetch(url)).json()).toEqual({ echo: 'GET', same: true });
      expect(await (await fetch(url, { method: 'POST', body: 'posted' })).json()).toEqual({ echo: 'posted', same: true });
      await eventually(() => expect(guard.stats().released).toBe(2));
    });
  });

  describe('ctx.db() in a request connectionClosing() did not admit', () => {
    it('throws ERR_CLOSEGUARD_NO_REQUEST', async () => {
      const { pool } = harness.pool(1);
      let caught: unknown;
      const { url } = await harness.serve(
        { pool },
        () => undefined,
        async (ctx, next) => {
          if (ctx.path !== '/before') {
            await next();
            return;
          }
          try {
            await ctx.db();
          } catch (error) {
            caught = error;
          }
          ctx.body = 'answered';
        },
      );
      await (await fetch(url)).text(); // the first request puts ctx.db() on the app's context
      expect(await (await fetch(`${url}/before`)).text()).toBe('answered');
      expect(caught).toBeInstanceOf(CloseguardError);
      expect((caught as CloseguardError).code).toBe('ERR_CLOSEGUARD_NO_REQUEST');
    });
  });
});

describe('connectionClosing(options) with bad options', () => {
  it('throws a TypeError naming the option', () => {
    expect(() => connectionClosing({ pool: {} as never })).toThrow(TypeError);
    expect(() => connectionClosing(null as never)).toThrow(TypeError);
    expect(() => connectionClosing({ pool: { acquire: () => Promise.resolve(1), release: () => undefined, destroy: () => undefined }, backpressure: -1 })).toThrow(/backpressure/);
    const guard = new ConnectionClosingMiddleware({ pool: { acquire: () => Promise.resolve(1), release: () => undefined, destroy: () => undefined }, backpressure: 1 });
    expect(() => connectionClosing(guard, { logger: {} as never })).toThrow(/logger/);
    expect(() => connectionClosing(guard, 'quiet' as never)).toThrow(TypeError);
  });

  it('carries the guard it was given', () => {
    const guard = new ConnectionClosingMiddleware({ pool: { acquire: () => Promise.resolve(1), release: () => undefined, destroy: () => undefined }, backpressure: 1 });
    expect(connectionClosing(guard).guard).toBe(guard);
    expect(GRACE_MS).toBeGreaterThan(0);
  });
});
