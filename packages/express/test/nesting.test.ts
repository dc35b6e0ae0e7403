import express, { type Request, type Response } from 'express';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { connection, ConnectionClosingMiddleware, signals, type ConnectionClosingOptions, type RequestFinishedMessage } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { backendPidOf } from '@closeguard/conformance';
import { eventually, GRACE_MS, quiet, useHarness } from './harness.ts';

// Every guard a request passed — an app's, a sub-app's, a router's — settles it exactly once,
// whatever the nesting; the same guard met twice steps aside.
const harness = useHarness();

const finished: RequestFinishedMessage[] = [];
const onFinished = (message: RequestFinishedMessage): void => void finished.push(message);
signals.requestFinished.subscribe(onFinished);
afterAll(() => void signals.requestFinished.unsubscribe(onFinished));

/** How many requestFinished signals the requests to `path` have had so far. */
const finishedFor = (path: string): number => finished.filter((message) => message.url === path).length;

/** A guard on its own pool (max 2) unless given `pools`, with a short queue so that a place never given back shows as a 503 at once. */
function guardOn(options: Partial<ConnectionClosingOptions> = {}): ConnectionClosingMiddleware {
  const pools = options.pools === undefined ? { pool: harness.pool(2) } : {};
  return new ConnectionClosingMiddleware({ ...pools, backpressure: 2, queueTimeout: 200, abortGrace: GRACE_MS, ...options });
}

/** The backend a request's connection for `alias` runs on. */
async function pidOf(req: Request, alias?: string): Promise<number> {
  return backendPidOf(await req.db<pg.Client>(alias));
}

async function pidsOf(pool: ReturnType<typeof harness.pool>): Promise<number[]> {
  const client = await pool.acquire();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = current_setting(\'application_name\')');
    return rows.map((row) => row.pid);
  } finally {
    await pool.release(client);
  }
}

const idle = { inFlight: 0, queued: 0 };

describe('connectionClosing() in an app and in a sub-app, each with its own pool', () => {
  it('settles every request in both guards: more requests than backpressure to the sub-app, then the parent still answers', async () => {
    const parent = guardOn();
    const child = guardOn({ pools: { sub: harness.pool(2) } });
    const app = express();
    app.use(connectionClosing(parent, { logger: quiet }));
    const sub = express();
    sub.use(connectionClosing(child, { logger: quiet }));
    // 'sub' is the sub-app's pool; 'default' only the parent has, so req.db() reaches the parent's.
    sub.get('/sub', async (req, res) => {
      res.json({ sub: await pidOf(req, 'sub'), parent: await pidOf(req) });
    });
    app.use(sub);
    app.get('/', async (req, res) => void res.json({ parent: await pidOf(req) }));
    const url = await harness.listen(app);

    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${url}/sub`);
      expect(response.status).toBe(200);
      const { sub: subPid, parent: parentPid } = await response.json() as { sub: number; parent: number };
      expect(subPid).not.toBe(parentPid);
    }
    for (let i = 0; i < 3; i++) expect((await fetch(url)).status).toBe(200);

    await eventually(() => {
      expect(parent.stats()).toMatchObject({ ...idle, leased: 8, released: 8, rejected: 0 });
      expect(child.stats()).toMatchObject({ ...idle, leased: 5, released: 5, rejected: 0 });
      expect(finishedFor('/sub')).toBe(10); // once per guard per request
      expect(finishedFor('/')).toBe(6); // the sub-app is mounted at '/': requests to '/' pass its guard too
    });
  });

  it("gives req.db() the sub-app guard's pool when both have the alias, and settles a request that falls back out of the sub-app", async () => {
    const parentPool = harness.pool(2);
    const childPool = harness.pool(2);
    const parent = new ConnectionClosingMiddleware({ pool: parentPool, abortGrace: GRACE_MS });
    const child = new ConnectionClosingMiddleware({ pool: childPool, abortGrace: GRACE_MS });
    const app = express();
    app.use(connectionClosing(parent, { logger: quiet }));
    const sub = express();
    sub.use(connectionClosing(child, { logger: quiet }));
    sub.get('/inside', async (req, res) => void res.json({ pid: await pidOf(req) }));
    app.use('/s', sub);
    // Not a sub-app route: the request leaves the sub-app through next() and is answered here.
    app.get('/s/outside', async (req, res) => void res.json({ pid: await pidOf(req) }));
    const url = await harness.listen(app);

    const inside = await (await fetch(`${url}/s/inside`)).json() as { pid: number };
    const outside = await (await fetch(`${url}/s/outside`)).json() as { pid: number };
    const childPids = await pidsOf(childPool);
    expect(childPids).toContain(inside.pid);
    expect(childPids).toContain(outside.pid); // the innermost guard the request passed
    await eventually(() => {
      expect(parent.stats()).toMatchObject({ ...idle, leased: 0 });
      expect(child.stats()).toMatchObject({ ...idle, leased: 2, released: 2 });
      expect(finishedFor('/s/inside')).toBe(2);
      expect(finishedFor('/s/outside')).toBe(2);
    });
  });

  it('with asyncContext, connection() in the sub-app reaches the sub-app guard, also after a body parser', async () => {
    const parent = new ConnectionClosingMiddleware({ pool: harness.pool(1), abortGrace: GRACE_MS, asyncContext: true });
    const childPool = harness.pool(1);
    const child = new ConnectionClosingMiddleware({ pool: childPool, abortGrace: GRACE_MS, asyncContext: true });
    const app = express();
    app.use(connectionClosing(parent, { logger: quiet }));
    const sub = express();
    sub.use(connectionClosing(child, { logger: quiet }));
    sub.use(express.json());
    sub.post('/ctx', async (req, res) => {
      const viaConnection = await connection<pg.Client>();
      res.json({ same: viaConnection === await req.db(), body: req.body as unknown });
    });
    app.use(sub);
    const url = await harness.listen(app);
    const response = await fetch(`${url}/ctx`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
    expect(await response.json()).toEqual({ same: true, body: { n: 1 } });
    await eventually(() => {
      expect(child.stats()).toMatchObject({ ...idle, leased: 1, released: 1 });
      expect(parent.stats()).toMatchObject({ ...idle, leased: 0 });
    });
  });
});

describe('the same guard met twice', () => {
  it('mounted twice on one path, it steps aside the second time: one lease, one requestFinished', async () => {
    const guard = guardOn();
    const guarded = connectionClosing(guard, { logger: quiet });
    const app = express();
    app.use(guarded);
    app.use(guarded);
    app.get('/twice', async (req, res) => void res.json({ pid: await pidOf(req) }));
    const url = await harness.listen(app);
    for (let i = 0; i < 4; i++) expect((await fetch(`${url}/twice`)).status).toBe(200);
    await eventually(() => {
      expect(guard.stats()).toMatchObject({ ...idle, leased: 4, released: 4, rejected: 0 });
      expect(finishedFor('/twice')).toBe(4);
    });
  });

  it('in an app and again in its sub-app (one guard instance), it steps aside in the sub-app', async () => {
    const guard = guardOn();
    const app = express();
    app.use(connectionClosing(guard, { logger: quiet }));
    const sub = express();
    sub.use(connectionClosing(guard, { logger: quiet }));
    sub.get('/again', async (req, res) => void res.json({ pid: await pidOf(req) }));
    app.use(sub);
    const url = await harness.listen(app);
    for (let i = 0; i < 4; i++) expect((await fetch(`${url}/again`)).status).toBe(200);
    await eventually(() => {
      expect(guard.stats()).toMatchObject({ ...idle, leased: 4, released: 4 });
      expect(finishedFor('/again')).toBe(4);
    });
  });
});

describe('a guard only in a sub-app or a router', () => {
  it('in a sub-app mounted with a path, behind an async middleware of the parent: every request settles', async () => {
    const guard = guardOn();
    const app = express();
    // An async middleware that awaits, then calls next() into the sub-app: its promise settles
    // after the request met the guard.
    app.use(async (_req, _res, next) => {
      await new Promise((resolve) => setImmediate(resolve));
      next();
    });
    const sub = express();
    sub.use(connectionClosing(guard, { logger: quiet }));
    sub.get('/only', async (req, res) => void res.json({ pid: await pidOf(req) }));
    app.use('/sub', sub);
    const url = await harness.listen(app);
    for (let i = 0; i < 4; i++) expect((await fetch(`${url}/sub/only`)).status).toBe(200);
    await eventually(() => {
      expect(guard.stats()).toMatchObject({ ...idle, leased: 4, released: 4, rejected: 0 });
      expect(finishedFor('/sub/only')).toBe(4);
    });
  });

  it('in routers with their own guards inside a guarded app: each request settles in every guard it passed', async () => {
    const parent = guardOn();
    const first = guardOn({ pools: { first: harness.pool(1) } });
    const second = guardOn({ pools: { second: harness.pool(1) } });
    const app = express();
    app.use(connectionClosing(parent, { logger: quiet }));
    const outer = express.Router();
    outer.use(connectionClosing(first, { logger: quiet }));
    const inner = express.Router();
    inner.use(connectionClosing(second, { logger: quiet }));
    const answer = async (req: Request, res: Response): Promise<void> => {
      res.json([await pidOf(req), await pidOf(req, 'first'), await pidOf(req, 'second')]);
    };
    inner.get('/deep', answer);
    outer.use('/in', inner);
    app.use('/r', outer);
    const url = await harness.listen(app);
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${url}/r/in/deep`);
      expect(response.status).toBe(200);
      expect(new Set(await response.json() as number[]).size).toBe(3);
    }
    expect((await fetch(`${url}/r/in/missing`)).status).toBe(404);
    await eventually(() => {
      for (const guard of [parent, first, second]) expect(guard.stats()).toMatchObject({ ...idle, leased: 3, released: 3, rejected: 0 });
      expect(finishedFor('/r/in/deep')).toBe(9);
      expect(finishedFor('/r/in/missing')).toBe(3);
    });
  });

  it('holds the connection of a route reached through a router whose last layer is an async middleware that called next()', async () => {
    // Router hands over to its parent a turn after it runs off its stack (setImmediate): that
    // middleware's promise settles before the next layer starts, and is not the end of the chain.
    const guard = guardOn();
    const app = express();
    app.use(connectionClosing(guard, { logger: quiet }));
    const nested = express.Router();
    nested.use(async (_req, _res, next) => {
      await Promise.resolve();
      next();
    });
    app.use(nested);
    let afterClose: unknown;
    let releasedAtClose: number | undefined;
    const handled = new Promise<void>((resolve) => {
      app.get('/tail', async (req, res) => {
        const client = await req.db<pg.Client>();
        res.end('ok');
        await new Promise((closed) => res.once('close', closed));
        await new Promise((turn) => setImmediate(turn));
        releasedAtClose = guard.stats().released; // the handler still runs: nothing may be given back yet
        // Still this request's: a query after the response is over runs on a connection nobody else has.
        afterClose = (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
        resolve();
      });
    });
    const url = await harness.listen(app);
    expect(await (await fetch(`${url}/tail`)).text()).toBe('ok');
    await handled;
    expect({ releasedAtClose, afterClose }).toEqual({ releasedAtClose: 0, afterClose: 1 });
    await eventually(() => expect(guard.stats()).toMatchObject({ inFlight: 0, released: 1, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } }));
  });

  it('settles a sub-app guard entered after such a router: its connection is released, not destroyed after abortGrace', async () => {
    const parent = guardOn();
    const child = guardOn();
    const app = express();
    app.use(connectionClosing(parent, { logger: quiet }));
    const nested = express.Router();
    nested.use(async (_req, _res, next) => {
      await Promise.resolve();
      next();
    });
    app.use(nested);
    const sub = express();
    sub.use(connectionClosing(child, { logger: quiet }));
    sub.get('/one', async (req, res) => {
      res.json(await pidOf(req));
    });
    app.use('/sub', sub);
    const url = await harness.listen(app);
    expect((await fetch(`${url}/sub/one`)).status).toBe(200);
    await eventually(() => expect(child.stats()).toMatchObject({ inFlight: 0, released: 1, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } }));
    expect(finishedFor('/sub/one')).toBe(2);
  });
});
