import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { eventually, getUntilClosed, GRACE_MS, useHarness } from './harness.ts';

const harness = useHarness();

const CLOSE_TIMEOUT_MS = 200;
/** What close() may take beyond closeTimeout + abortGrace on a loaded machine; the failure it guards against is a close() that never resolves. */
const MARGIN_MS = 2_000;

type Stuck = (fastify: FastifyInstance, started: () => void) => void;

const stuckRoutes: Array<[string, Stuck]> = [
  ['a route that leased a connection and never settles', (fastify, started) => {
    fastify.get('/stuck', async (request) => {
      await request.db();
      started();
      return new Promise(() => undefined);
    });
  }],
  ['a callback handler that leased a connection and never calls reply.send', (fastify, started) => {
    fastify.get('/stuck', (request) => {
      void request.db().then(started);
    });
  }],
  ['a handler that hijacked the reply and never ends reply.raw', (fastify, started) => {
    fastify.get('/stuck', async (request, reply) => {
      await request.db();
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.write('first chunk\n');
      started();
    });
  }],
  ['a preHandler hook that hijacked the reply and never ends reply.raw', (fastify, started) => {
    fastify.get('/stuck', { preHandler: async (request, reply) => {
      await request.db();
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.write('first chunk\n');
      started();
    } }, () => 'not reached');
  }],
];

describe('fastify.close()', () => {
  describe.each(stuckRoutes)('with %s', (_name, stuck) => {
    it('resolves within closeTimeout + abortGrace, cuts the request, and gives its connection back once', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      let started = false;
      const { url, fastify } = await harness.serve(guard, (app) => stuck(app, () => (started = true)), {}, { closeTimeout: CLOSE_TIMEOUT_MS });
      const request = getUntilClosed(`${url}/stuck`);
      await eventually(() => expect(started).toBe(true));
      const begun = performance.now();
      await fastify.close();
      const tookMs = performance.now() - begun;
      expect(tookMs).toBeLessThan(CLOSE_TIMEOUT_MS + GRACE_MS + MARGIN_MS);
      await request; // the server cut it
      const { released, destroyed } = guard.stats();
      expect(released + destroyed.abandoned + destroyed.unusable).toBe(1);
      expect(pool.borrowed).toBe(0);
      await eventually(() => expect(harness.finished).toHaveLength(1));
    });
  });

  describe.each([
    [false, 'HTTP/1.1 200 OK'],
    [true, 'HTTP/1.1 503 Service Unavailable'],
  ])('with return503OnClosing: %s and a request whose headers end while Fastify closes', (return503OnClosing, statusLine) => {
    it(`answers it as Fastify does without closeguard: ${statusLine}`, async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      let started = false;
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => (finish = resolve));
      let endHeaders = (): void => undefined;
      const { url, fastify } = await harness.serve(guard, (app) => {
        // Fastify is closing (it answers new requests with 503 unless told not to), its server not yet.
        app.addHook('preClose', (done) => {
          endHeaders();
          done();
        });
        app.get('/slow', async () => {
          started = true;
          await gate;
          return 'slow';
        });
        app.get('/one', async (request) => (await request.db()) && 'one');
      }, { return503OnClosing });
      const slow = getOnce(`${url}/slow`); // no keep-alive: Fastify's close would wait for the idle socket
      await eventually(() => expect(started).toBe(true));
      // Headers begun before close() (so the server does not close the connection as idle), ended after it.
      const late = await rawRequestStarted(url, '/one');
      endHeaders = () => void late.socket.write('\r\n');
      const closed = fastify.close();
      expect((await late.response).split('\r\n')[0]).toBe(statusLine);
      finish();
      expect(await slow).toBe('slow');
      await closed;
    });
  });

  describe('with a handler still running after its client hung up', () => {
    it('sees it settle while close() waits: its connection is released, not destroyed', async () => {
      // Fastify's server close does not wait for a request whose client left: onClose runs while
      // the handler still runs, and its settling must still reach the guard.
      const { pool } = harness.pool(1);
      // A grace longer than the test waits: nothing gives the request up on its own meanwhile.
      const guard = harness.guard({ pool, abortGrace: 5_000 });
      const slow = slowRoute({ lease: true });
      const { url, fastify } = await harness.serve(guard, slow.setup, {}, { closeTimeout: 1_000 });
      const controller = new AbortController();
      const response = fetch(`${url}/slow`, { signal: controller.signal }).catch(() => undefined);
      await eventually(() => expect(slow.started).toBe(true));
      controller.abort();
      await response;
      await eventually(() => expect(slow.gone).toBe(true));
      // The plugin's onClose has begun once it calls guard.close(): only then may the handler settle.
      let closing = false;
      const close = guard.close.bind(guard);
      guard.close = (options) => {
        closing = true;
        return close(options);
      };
      const closed = fastify.close();
      await eventually(() => expect(closing).toBe(true));
      expect(guard.stats().inFlight).toBe(1); // close() waits for it
      slow.finish();
      await closed;
      expect(guard.stats()).toMatchObject({ released: 1, destroyed: { abandoned: 0, unusable: 0 } });
    });
  });

  describe('with a request that holds no connection, cut by the close (forceCloseConnections)', () => {
    it("ends it 'aborted' once its handler settles after close() resolved, as every host does", async () => {
      // close() does not wait for a request that leased nothing: its handler settles later, and
      // that must still be seen (the client left first: closeReason() says 'aborted', not 'timeout').
      const { pool } = harness.pool(1);
      // A grace longer than the test waits: nothing gives the request up on its own meanwhile.
      const guard = harness.guard({ pool, abortGrace: 5_000 });
      const slow = slowRoute({ lease: false });
      const { url, fastify } = await harness.serve(guard, slow.setup, { forceCloseConnections: true });
      const request = getUntilClosed(`${url}/slow`);
      await eventually(() => expect(slow.started).toBe(true));
      await fastify.close();
      expect(await request).toEqual({ status: undefined }); // cut before its headers
      await eventually(() => expect(slow.gone).toBe(true)); // the server saw the cut too
      slow.finish();
      await eventually(() => expect(harness.finished.map(({ reason }) => reason)).toEqual(['aborted']));
    });
  });

  describe('with a request that finishes within closeTimeout', () => {
    it('lets it finish and answer, then resolves', async () => {
      const { pool } = harness.pool(1);
      const guard = harness.guard({ pool });
      let started = false;
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => (finish = resolve));
      const { url, fastify } = await harness.serve(guard, (app) => {
        app.get('/slow', async (request) => {
          await request.db();
          started = true;
          await gate;
          return 'done';
        });
      }, {}, { closeTimeout: 10_000 });
      const response = fetch(`${url}/slow`);
      await eventually(() => expect(started).toBe(true));
      const closed = fastify.close();
      finish();
      expect(await (await response).text()).toBe('done');
      await closed;
      expect(guard.stats()).toMatchObject({ released: 1, destroyed: { abandoned: 0 } });
    });
  });
});

/** A GET /slow whose handler (after leasing, with `lease`) waits for `finish()`: `started` once it waits, `gone` once its response closed. */
function slowRoute({ lease }: { lease: boolean }): { started: boolean; gone: boolean; finish: () => void; setup: (app: FastifyInstance) => void } {
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  const slow = {
    started: false,
    gone: false,
    finish,
    setup: (app: FastifyInstance): void => {
      app.get('/slow', async (request, reply) => {
        if (lease) await request.db();
        reply.raw.once('close', () => (slow.gone = true));
        slow.started = true;
        await gate;
        return 'done';
      });
    },
  };
  return slow;
}

/** A socket that has sent all of a GET's head but its final CRLF; `response` is everything the server sends back. */
async function rawRequestStarted(url: string, path: string): Promise<{ socket: net.Socket; response: Promise<string> }> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n`);
  const response = new Promise<string>((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text));
    socket.on('error', () => undefined);
  });
  return { socket, response };
}

/** A GET on a connection of its own (`Connection: close`); resolves with the body. */
function getOnce(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}
