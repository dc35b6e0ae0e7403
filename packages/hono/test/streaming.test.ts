import { createPool as createGenericPool } from 'generic-pool';
import { Hono } from 'hono';
import { stream, streamText } from 'hono/streaming';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createCursorProbe, cursorRows } from '@closeguard/conformance';
import { eventually, hangUpMidStream, useHarness } from './harness.ts';

const harness = useHarness();

/** A record of a stream callback's queries: how many connections had gone back when each one started. */
interface Queries {
  releasedAtEach: number[];
  finished: boolean;
}

describe('connectionClosing() with a streamed response', () => {
  describe('when a stream() callback queries while it streams and the client reads it all', () => {
    it('keeps the lease until the callback returned, then releases it once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const queries: Queries = { releasedAtEach: [], finished: false };
      const app = new Hono().use(closing).get('/', (c) =>
        stream(c, async (s) => {
          const client = await c.var.db<pg.Client>();
          for (let i = 0; i < 20; i++) {
            queries.releasedAtEach.push(closing.guard.stats().released);
            const { rows } = await client.query<{ n: number }>('SELECT $1::int AS n', [i]);
            await s.write(`${rows[0]!.n}\n`);
          }
          queries.finished = true;
        }),
      );
      const url = await harness.serve(app);
      const text = await (await fetch(url)).text();
      expect(text.trim().split('\n')).toHaveLength(20);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(queries.releasedAtEach).toEqual(new Array(20).fill(0));
      expect(closing.guard.stats().leased).toBe(1);
    });
  });

  describe('when the client hangs up in the middle of a stream() that queries', () => {
    it('releases the connection once, never while the callback still queries', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const queries: Queries = { releasedAtEach: [], finished: false };
      let aborted = 0;
      const app = new Hono().use(closing).get('/', (c) =>
        stream(c, async (s) => {
          s.onAbort(() => void aborted++);
          const client = await c.var.db<pg.Client>();
          // Stops at the hang-up, as Hono's stream() asks: its writes are no-ops from then on.
          while (!s.aborted) {
            queries.releasedAtEach.push(closing.guard.stats().released);
            const { rows } = await client.query<{ line: string }>("SELECT repeat('x', 1000) AS line");
            await s.write(`${rows[0]!.line}\n`);
          }
          queries.finished = true;
        }),
      );
      const url = await harness.serve(app);
      await hangUpMidStream(url);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(queries.finished).toBe(true);
      expect(aborted).toBe(1);
      expect(queries.releasedAtEach.length).toBeGreaterThan(0);
      expect(queries.releasedAtEach.every((released) => released === 0)).toBe(true);
      expect(closing.guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe('when a streamText() callback sleeps in PostgreSQL and the client hangs up', () => {
    it('waits for the query in flight, then releases the connection once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool, abortGrace: 5_000 });
      let sleeping = false;
      let slept = false;
      let releasedAfterSleep: number | undefined;
      const app = new Hono().use(closing).get('/', (c) =>
        streamText(c, async (s) => {
          const client = await c.var.db<pg.Client>();
          await s.writeln('first');
          sleeping = true;
          await client.query('SELECT pg_sleep(0.3)');
          releasedAfterSleep = closing.guard.stats().released;
          slept = true;
          if (!s.aborted) await s.writeln('second');
        }),
      );
      const url = await harness.serve(app);
      const response = await fetch(url);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const reader = response.body!.getReader();
      await reader.read();
      await eventually(() => expect(sleeping).toBe(true));
      await reader.cancel(); // undici aborts the connection: a real hang-up
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(slept).toBe(true);
      expect(releasedAfterSleep).toBe(0);
      expect(closing.guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe('when a ReadableStream body streams a cursor', () => {
    it('keeps the lease until the last row, then releases it once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      const probe = createCursorProbe();
      const app = new Hono().use(closing).get('/', async (c) => c.body(cursorBody(await c.var.db<pg.Client>(), 5_000, probe), 200, { 'content-type': 'application/x-ndjson' }));
      const url = await harness.serve(app);
      const response = await fetch(url);
      const reader = response.body!.getReader();
      await reader.read();
      // The chain returned long ago: the lease must still be held.
      expect(closing.guard.stats().released).toBe(0);
      expect(pool.borrowed).toBe(1);
      let bytes = 0;
      for (let step = await reader.read(); !step.done; step = await reader.read()) bytes += (step.value as Uint8Array).byteLength;
      expect(bytes).toBeGreaterThan(0);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(probe).toMatchObject({ opened: 1, rows: 5_000, closed: 1 });
    });

    it('cancels it when the client hangs up, closes the cursor on the request\'s client, and releases it once', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool });
      let releasedAtClose: number | undefined;
      const probe = createCursorProbe({ onClosing: () => (releasedAtClose = closing.guard.stats().released) });
      const app = new Hono().use(closing).get('/', async (c) => c.body(cursorBody(await c.var.db<pg.Client>(), 1_000_000, probe)));
      const url = await harness.serve(app);
      await hangUpMidStream(url);
      await eventually(() => expect(probe.closed).toBe(1));
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(releasedAtClose).toBe(0);
      expect(closing.guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
    });
  });

  describe('when the body\'s cancel() still uses the connection, with a pool that cannot tell a busy connection', () => {
    it('gives the connection back only after cancel() settled', async () => {
      const pool = createGenericPool({ create: () => Promise.resolve({ id: 1 }), destroy: () => Promise.resolve() }, { max: 1 });
      const closing = harness.closing({ pool });
      let releasedAtCleanup: number | undefined;
      const app = new Hono().use(closing).get('/', async (c) => {
        await c.var.db();
        const body = new ReadableStream<Uint8Array>({
          pull: (controller) => controller.enqueue(new TextEncoder().encode('row\n'.repeat(1_000))),
          // Cleanup that still uses the connection (a cursor's close), finishing later.
          cancel: () => new Promise<void>((resolve) => setTimeout(() => {
            releasedAtCleanup = closing.guard.stats().released;
            resolve();
          }, 50)),
        });
        return c.body(body);
      });
      const url = await harness.serve(app);
      await hangUpMidStream(url);
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(releasedAtCleanup).toBe(0);
      await pool.drain();
      await pool.clear();
    });
  });

  describe('when a HEAD request reaches a stream() route', () => {
    it('cancels the body nobody reads, so the callback ends, and releases the connection once without waiting for abortGrace', async () => {
      const { pool } = harness.pool(1);
      const closing = harness.closing({ pool, abortGrace: 10_000 });
      let finished = false;
      const app = new Hono().use(closing).get('/', (c) =>
        stream(c, async (s) => {
          const client = await c.var.db<pg.Client>();
          // Hono drops a HEAD's body unread: without a cancel, this write would wait forever.
          while (!s.aborted) await s.write(JSON.stringify((await client.query('SELECT 1 AS one')).rows));
          finished = true;
        }),
      );
      const url = await harness.serve(app);
      const response = await fetch(url, { method: 'HEAD' });
      expect(response.status).toBe(200);
      await eventually(() => expect(finished).toBe(true));
      await eventually(() => expect(closing.guard.stats().released).toBe(1));
      expect(closing.guard.stats().destroyed.abandoned).toBe(0);
    });
  });
});

/** A cursor's NDJSON rows as a web `ReadableStream`, closed with `closeCursor()` when it is cancelled. */
function cursorBody(client: pg.Client, count: number, probe: ReturnType<typeof createCursorProbe>): ReadableStream<Uint8Array> {
  const rows = cursorRows(client, count, probe);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const step = await rows.next();
      if (step.done) controller.close();
      else controller.enqueue(Buffer.from(step.value));
    },
    async cancel() {
      await rows.return(undefined);
    },
  });
}
