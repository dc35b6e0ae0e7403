import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ContractError,
  validate,
  type Chunk,
  type ErrorCode,
  type GatewayApp,
  type GatewayBody,
  type GatewayEnv,
  type StartResponse,
} from '@closeguard/core';
import { requestListener } from '@closeguard/node';
import { testEnv } from '@closeguard/conformance';

type ClosableBody = GatewayBody & { close(): void | Promise<void> };

const hostEnv = testEnv;

/** A host `start` that records its calls. */
function recordingStart(): { start: StartResponse; calls: unknown[][] } {
  const calls: unknown[][] = [];
  return { start: (...args) => void calls.push(args), calls };
}

/** Calls a validated app the way a host does and returns the body it answered at once. */
function answer(app: GatewayApp, start: StartResponse = () => undefined): ClosableBody {
  const body = validate(app)(hostEnv(), start);
  if (body instanceof Promise) throw new Error('the validated app answered a promise');
  return body as ClosableBody;
}

function syncIterator(body: GatewayBody): Iterator<Chunk> {
  return (body as Iterable<Chunk>)[Symbol.iterator]();
}

function asyncIterator(body: GatewayBody): AsyncIterator<Chunk> {
  return (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]();
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function expectContractError(error: unknown, code: ErrorCode): void {
  expect(error).toBeInstanceOf(ContractError);
  expect(error).toMatchObject({ name: 'ContractError', code });
}

/** An app whose body is a generator over `chunks`; it records its finally and its close(). */
function trackedApp(chunks: readonly unknown[], options: { start?: boolean; async?: boolean } = {}) {
  const seen = { finallyRan: false, closes: 0 };
  function* generate(): Generator<Chunk> {
    try {
      for (const chunk of chunks) yield chunk as Chunk;
    } finally {
      seen.finallyRan = true;
    }
  }
  async function* generateAsync(): AsyncGenerator<Chunk> {
    try {
      for (const chunk of chunks) yield await Promise.resolve(chunk as Chunk);
    } finally {
      seen.finallyRan = true;
    }
  }
  const app: GatewayApp = (_env, start) => {
    if (options.start !== false) start(200, { 'content-type': 'text/plain' });
    const body = options.async === true ? generateAsync() : generate();
    return Object.assign(body, { close: () => void seen.closes++ });
  };
  return { app, seen };
}

describe('validate(app)', () => {
  describe('when given something other than a function', () => {
    it('throws a TypeError naming what it got', () => {
      expect(() => validate('app' as unknown as GatewayApp)).toThrow(TypeError);
      expect(() => validate('app' as unknown as GatewayApp)).toThrow(/"app"/);
    });
  });

  describe('when the app keeps the contract', () => {
    it('forwards start() and the chunks unchanged', () => {
      const bytes = new Uint8Array([104, 105]);
      const { start, calls } = recordingStart();
      const headers = [['content-type', 'text/plain']] as const;
      const body = answer((_env, start) => {
        start(200, headers);
        return ['hello', bytes];
      }, start);
      expect(calls).toEqual([[200, headers]]);
      const chunks = Array.from(body as Iterable<Chunk>);
      expect(chunks).toEqual(['hello', bytes]);
      expect(chunks[1]).toBe(bytes);
      expect(body.close()).toBeUndefined();
    });

    it('keeps a sync iterable body sync-iterable', () => {
      const body = answer((_env, start) => {
        start(200, {});
        return ['a'];
      });
      expect(typeof (body as Partial<Iterable<Chunk>>)[Symbol.iterator]).toBe('function');
      expect((body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator]).toBeUndefined();
    });

    it('keeps an async iterable body async-only', async () => {
      const { app } = trackedApp(['a', 'b'], { async: true });
      const body = answer(app);
      expect((body as Partial<Iterable<Chunk>>)[Symbol.iterator]).toBeUndefined();
      const chunks: Chunk[] = [];
      for await (const chunk of body as AsyncIterable<Chunk>) chunks.push(chunk);
      expect(chunks).toEqual(['a', 'b']);
    });

    it('answers with a promise when the app does, and checks the body it resolves to', async () => {
      const answered = validate(async (_env, start) => {
        await Promise.resolve();
        start(200, {});
        return ['late'];
      })(hostEnv(), () => undefined);
      expect(answered).toBeInstanceOf(Promise);
      expect(Array.from((await answered) as Iterable<Chunk>)).toEqual(['late']);
    });

    it('lets the app call start() again with an error before anything went out', () => {
      const failure = new Error('database down');
      const { start, calls } = recordingStart();
      const body = answer((_env, start) => {
        start(200, {});
        start(500, { 'content-type': 'text/plain' }, failure);
        return ['failed'];
      }, start);
      expect(calls).toEqual([
        [200, {}],
        [500, { 'content-type': 'text/plain' }, failure],
      ]);
      expect(Array.from(body as Iterable<Chunk>)).toEqual(['failed']);
    });

    it('lets empty chunks come before start()', () => {
      let start: StartResponse = () => undefined;
      const body = answer((_env, given) => {
        start = given;
        return (function* () {
          yield '';
          yield new Uint8Array(0);
          start(200, {});
          yield 'after';
        })();
      });
      expect(Array.from(body as Iterable<Chunk>)).toEqual(['', new Uint8Array(0), 'after']);
    });

    it("gives the body a close() even when the app's has none", () => {
      const body = answer((_env, start) => {
        start(204, {});
        return [];
      });
      expect(typeof body.close).toBe('function');
      expect(body.close()).toBeUndefined();
    });

    it("calls the app's close() once and passes on what it returns", async () => {
      let closes = 0;
      const body = answer((_env, start) => {
        start(200, {});
        return Object.assign(['x'], { close: () => Promise.resolve().then(() => void closes++) });
      });
      await body.close();
      expect(closes).toBe(1);
    });

    it("forwards return() so a sync generator's finally runs", () => {
      const { app, seen } = trackedApp(['a', 'b']);
      const iterator = syncIterator(answer(app));
      expect(iterator.next()).toEqual({ done: false, value: 'a' });
      expect(iterator.return?.()).toEqual({ done: true, value: undefined });
      expect(seen.finallyRan).toBe(true);
    });

    it("forwards return() so an async generator's finally runs", async () => {
      const { app, seen } = trackedApp(['a', 'b'], { async: true });
      const iterator = asyncIterator(answer(app));
      expect(await iterator.next()).toEqual({ done: false, value: 'a' });
      expect(await iterator.return?.()).toEqual({ done: true, value: undefined });
      expect(seen.finallyRan).toBe(true);
    });
  });

  describe('when the body yields a non-empty chunk before start()', () => {
    it('throws ContractError ERR_CLOSEGUARD_START_NOT_CALLED from next()', () => {
      const { app } = trackedApp(['too early'], { start: false });
      const iterator = syncIterator(answer(app));
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_START_NOT_CALLED');
    });

    it("rejects an async next() with it, after the generator's finally ran", async () => {
      const { app, seen } = trackedApp(['too early', 'more'], { start: false, async: true });
      const error = await asyncIterator(answer(app)).next().catch((error: unknown) => error);
      expectContractError(error, 'ERR_CLOSEGUARD_START_NOT_CALLED');
      expect(seen.finallyRan).toBe(true);
    });
  });

  describe('when the body ends before start()', () => {
    it('throws ContractError ERR_CLOSEGUARD_START_NOT_CALLED from next()', () => {
      const iterator = syncIterator(answer(() => []));
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_START_NOT_CALLED');
    });
  });

  describe('when start() gets a status that is not an integer from 100 to 599', () => {
    it.each([99, 600, 200.5, Number.NaN, '200'])('throws ContractError ERR_CLOSEGUARD_INVALID_STATUS for %s', (status) => {
      const { start, calls } = recordingStart();
      const app: GatewayApp = (_env, start) => {
        start(status as number, {});
        return [];
      };
      expectContractError(thrownBy(() => validate(app)(hostEnv(), start)), 'ERR_CLOSEGUARD_INVALID_STATUS');
      expect(calls).toEqual([]);
    });
  });

  describe('when a header name is not an HTTP token', () => {
    it.each([{ 'x bad': 'v' }, [['x:y', 'v']], { 'x\r\nevil': 'v' }])('throws ContractError ERR_CLOSEGUARD_INVALID_HEADER_NAME for %j', (headers) => {
      const app: GatewayApp = (_env, start) => {
        start(200, headers as Record<string, string>);
        return [];
      };
      expectContractError(thrownBy(() => validate(app)(hostEnv(), () => undefined)), 'ERR_CLOSEGUARD_INVALID_HEADER_NAME');
    });
  });

  describe('when a header value holds CR, LF or NUL, or is not a string', () => {
    it.each(['a\r\nset-cookie: x=1', 'a\nb', 'a\0b', 42])('throws ContractError ERR_CLOSEGUARD_INVALID_HEADER_VALUE for %j', (value) => {
      const app: GatewayApp = (_env, start) => {
        start(200, { 'x-value': value as string });
        return [];
      };
      expectContractError(thrownBy(() => validate(app)(hostEnv(), () => undefined)), 'ERR_CLOSEGUARD_INVALID_HEADER_VALUE');
    });
  });

  describe('when a 204 or 304 response carries Content-Type', () => {
    it.each([204, 304])('throws ContractError ERR_CLOSEGUARD_CONTENT_TYPE_FORBIDDEN for %i', (status) => {
      const app: GatewayApp = (_env, start) => {
        start(status, { 'Content-Type': 'text/plain' });
        return [];
      };
      expectContractError(thrownBy(() => validate(app)(hostEnv(), () => undefined)), 'ERR_CLOSEGUARD_CONTENT_TYPE_FORBIDDEN');
    });
  });

  describe('when the body yields a number', () => {
    it('throws ContractError ERR_CLOSEGUARD_INVALID_CHUNK', () => {
      const { app } = trackedApp([42]);
      const iterator = syncIterator(answer(app));
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_INVALID_CHUNK');
    });

    it("ends the generator so its finally runs, since the host won't call return()", () => {
      const { app, seen } = trackedApp(['a', 42, 'b']);
      const iterator = syncIterator(answer(app));
      iterator.next();
      thrownBy(() => iterator.next());
      expect(seen.finallyRan).toBe(true);
    });

    it('rejects an async next() with ContractError ERR_CLOSEGUARD_INVALID_CHUNK', async () => {
      const { app, seen } = trackedApp([{ json: true }], { async: true });
      const error = await asyncIterator(answer(app)).next().catch((error: unknown) => error);
      expectContractError(error, 'ERR_CLOSEGUARD_INVALID_CHUNK');
      expect(seen.finallyRan).toBe(true);
    });
  });

  describe('when the app answers something other than an iterable of chunks', () => {
    it.each([['a bare string', 'hello'], ['a buffer', Buffer.from('hello')], ['a number', 42], ['null', null]])(
      'throws ContractError ERR_CLOSEGUARD_BODY_NOT_ITERABLE for %s',
      (_name, answered) => {
        const app = ((_env: GatewayEnv, start: StartResponse) => {
          start(200, {});
          return answered;
        }) as unknown as GatewayApp;
        expectContractError(thrownBy(() => validate(app)(hostEnv(), () => undefined)), 'ERR_CLOSEGUARD_BODY_NOT_ITERABLE');
      },
    );

    it("rejects with it when the app's promise resolves to a bare string", async () => {
      const app = (() => Promise.resolve('hello')) as unknown as GatewayApp;
      const error = await Promise.resolve(validate(app)(hostEnv(), () => undefined)).catch((error: unknown) => error);
      expectContractError(error, 'ERR_CLOSEGUARD_BODY_NOT_ITERABLE');
    });

    it('closes the answer it refused when that answer has a close()', () => {
      let closes = 0;
      const app = (() => ({ close: () => void closes++ })) as unknown as GatewayApp;
      expectContractError(thrownBy(() => validate(app)(hostEnv(), () => undefined)), 'ERR_CLOSEGUARD_BODY_NOT_ITERABLE');
      expect(closes).toBe(1);
    });
  });

  describe('when start() is called a second time without an error', () => {
    it('throws ContractError ERR_CLOSEGUARD_START_TWICE', () => {
      const { start, calls } = recordingStart();
      const app: GatewayApp = (_env, start) => {
        start(200, {});
        start(201, {});
        return [];
      };
      expectContractError(thrownBy(() => validate(app)(hostEnv(), start)), 'ERR_CLOSEGUARD_START_TWICE');
      expect(calls).toEqual([[200, {}]]);
    });
  });

  describe('when start() is called after the first non-empty chunk went out', () => {
    it.each([
      ['without an error', undefined],
      ['even with an error', new Error('late failure')],
    ])('throws ContractError ERR_CLOSEGUARD_HEADERS_SENT %s', (_name, failure) => {
      let lateStart: unknown;
      const body = answer((_env, start) =>
        (function* () {
          start(200, {});
          yield 'sent';
          lateStart = thrownBy(() => start(500, {}, failure));
        })(),
      );
      expect(Array.from(body as Iterable<Chunk>)).toEqual(['sent']);
      expectContractError(lateStart, 'ERR_CLOSEGUARD_HEADERS_SENT');
    });
  });

  describe('when the host passes an env with a field missing or mistyped', () => {
    it.each<[keyof GatewayEnv, unknown]>([
      ['method', 1],
      ['url', undefined],
      ['path', null],
      ['query', undefined],
      ['headers', null],
      ['headers', { 'Content-Type': 'text/plain' }],
      ['body', ['not', 'async']],
      ['signal', {}],
      ['remoteAddress', 42],
      ['scheme', 'ftp'],
      ['httpVersion', 1.1],
      ['scope', {}],
      ['host', { name: 'test' }],
    ])('throws ContractError ERR_CLOSEGUARD_INVALID_ENV naming env.%s (%j)', (field, value) => {
      let appCalled = false;
      const env: Record<string, unknown> = { ...hostEnv() };
      env[field] = value;
      const app = validate(() => {
        appCalled = true;
        return [];
      });
      const error = thrownBy(() => app(env as unknown as GatewayEnv, () => undefined));
      expectContractError(error, 'ERR_CLOSEGUARD_INVALID_ENV');
      expect((error as Error).message).toContain(`env.${field}`);
      expect(appCalled).toBe(false);
    });

    it('throws ContractError ERR_CLOSEGUARD_INVALID_ENV naming a field left out', () => {
      const { remoteAddress: _left, ...env } = hostEnv();
      const error = thrownBy(() => validate(() => [])(env as unknown as GatewayEnv, () => undefined));
      expectContractError(error, 'ERR_CLOSEGUARD_INVALID_ENV');
      expect((error as Error).message).toContain('env.remoteAddress is missing');
    });

    it('throws ContractError ERR_CLOSEGUARD_INVALID_ENV when env or start is not what the contract says', () => {
      const app = validate(() => []);
      expectContractError(thrownBy(() => app(null as unknown as GatewayEnv, () => undefined)), 'ERR_CLOSEGUARD_INVALID_ENV');
      expectContractError(thrownBy(() => app(hostEnv(), 'start' as unknown as StartResponse)), 'ERR_CLOSEGUARD_INVALID_ENV');
    });
  });

  describe('when the host calls close() twice', () => {
    it("throws ContractError ERR_CLOSEGUARD_CLOSE_TWICE and closes the app's body once", async () => {
      const { app, seen } = trackedApp(['a']);
      const body = answer(app);
      await body.close();
      expectContractError(thrownBy(() => body.close()), 'ERR_CLOSEGUARD_CLOSE_TWICE');
      expect(seen.closes).toBe(1);
    });
  });

  describe('when the host calls next() after close()', () => {
    it('throws ContractError ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE from a sync body', async () => {
      const body = answer(trackedApp(['a', 'b']).app);
      const iterator = syncIterator(body);
      iterator.next();
      await body.close();
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE');
    });

    it('throws it synchronously from an async body', async () => {
      const body = answer(trackedApp(['a', 'b'], { async: true }).app);
      const iterator = asyncIterator(body);
      await iterator.next();
      await body.close();
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE');
    });
  });

  describe('when the host calls next() after return()', () => {
    it('throws ContractError ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE', async () => {
      const iterator = asyncIterator(answer(trackedApp(['a', 'b'], { async: true }).app));
      await iterator.next();
      await iterator.return?.();
      expectContractError(thrownBy(() => iterator.next()), 'ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE');
    });
  });

  describe('when the host drops a body without close()', () => {
    let output: { reports: { phase: string; code: string; message: string }[]; logged: string[] };

    // GC needs --expose-gc, which vitest's workers lack: run the check in a child process.
    beforeAll(async () => {
      const root = fileURLToPath(new URL('../../../', import.meta.url));
      const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url));
      const hostEntry = fileURLToPath(new URL('../src/host.ts', import.meta.url));
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', '--input-type=module', '--eval', gcScript(entry, hostEntry)],
        { cwd: root, timeout: 30_000 },
      );
      output = JSON.parse(stdout) as typeof output;
    });

    it('publishes ContractError ERR_CLOSEGUARD_BODY_NOT_CLOSED on requestException, phase close', () => {
      expect(output.reports).toHaveLength(1);
      expect(output.reports[0]).toMatchObject({ phase: 'close', code: 'ERR_CLOSEGUARD_BODY_NOT_CLOSED' });
      expect(output.reports[0]?.message).toContain('GET /dropped');
    });

    it('logs it with console.error', () => {
      expect(output.logged).toEqual(['ERR_CLOSEGUARD_BODY_NOT_CLOSED']);
    });

    it('reports nothing for a body that was closed', () => {
      expect(output.reports.map((report) => report.message).join()).not.toContain('/closed');
    });
  });

  describe('through the node host', () => {
    let server: Server | undefined;

    afterEach(async () => {
      if (!server) return;
      const closing = server;
      server = undefined;
      closing.closeAllConnections();
      await new Promise<void>((resolve, reject) => closing.close((error?: Error) => (error ? reject(error) : resolve())));
    });

    /** Serves `validate(app)` on port 0; returns its URL and what the host logged. */
    async function serve(app: GatewayApp): Promise<{ url: string; logged: unknown[] }> {
      const logged: unknown[] = [];
      server = createServer(requestListener(validate(app), { logger: { error: (...args) => void logged.push(...args) } }));
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, logged };
    }

    /** An app that streams `chunks` from an async generator and resolves `closed` from its close(). */
    function streamingApp(chunks: readonly unknown[]) {
      let closes = 0;
      let onClose: () => void = () => undefined;
      const closed = new Promise<void>((resolve) => (onClose = resolve));
      const { app: inner, seen } = trackedApp(chunks, { async: true });
      const app: GatewayApp = async (env, start) => {
        const body = await inner(env, start);
        return Object.assign(body, {
          close: () => {
            closes++;
            onClose();
          },
        });
      };
      return { app, seen, closed, closes: () => closes };
    }

    it('serves a correct app unchanged and closes its body once', async () => {
      const { app, closed, closes } = streamingApp(['hello, ', 'world']);
      const { url, logged } = await serve(app);
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain');
      expect(await response.text()).toBe('hello, world');
      await closed;
      expect(closes()).toBe(1);
      expect(logged).toEqual([]);
    });

    it('answers a HEAD request and still ends and closes the body once', async () => {
      const { app, seen, closed, closes } = streamingApp(['a', 'b']);
      const { url, logged } = await serve(app);
      const response = await fetch(url, { method: 'HEAD' });
      expect(response.status).toBe(200);
      await closed;
      expect(closes()).toBe(1);
      expect(seen.finallyRan).toBe(true);
      expect(logged).toEqual([]);
    });

    it('answers 500 to a body that yields a number, and closes it once', async () => {
      const { app, seen, closed, closes } = streamingApp([42]);
      const { url, logged } = await serve(app);
      const response = await fetch(url);
      expect(response.status).toBe(500);
      await response.arrayBuffer();
      await closed;
      expect(closes()).toBe(1);
      expect(seen.finallyRan).toBe(true);
      expect(logged.find((item) => item instanceof ContractError)).toMatchObject({ code: 'ERR_CLOSEGUARD_INVALID_CHUNK' });
    });
  });
});

/** The child process of the GC test: one body dropped unclosed, one closed, then collected. */
function gcScript(entry: string, hostEntry: string): string {
  return `
    import { signals, validate } from ${JSON.stringify(entry)};
    import { createScope } from ${JSON.stringify(hostEntry)};
    const reports = [];
    const logged = [];
    signals.requestException.subscribe(({ error, phase }) => reports.push({ phase, code: error.code, message: error.message }));
    console.error = (...args) => { for (const arg of args) if (arg?.code) logged.push(arg.code); };
    const app = validate((env, start) => { start(200, {}); return ['x']; });
    function serve(url, close) {
      const scope = createScope({ method: 'GET', url });
      const env = { method: 'GET', url, path: url, query: '', headers: {}, body: (async function* () {})(),
        signal: scope.signal, remoteAddress: undefined, scheme: 'http', httpVersion: '1.1', scope,
        host: { name: 'test', native: undefined } };
      const body = app(env, () => {});
      for (const chunk of body) void chunk;
      if (close) body.close();
    }
    serve('/dropped', false);
    serve('/closed', true);
    for (let round = 0; round < 50 && reports.length === 0; round++) {
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.stdout.write(JSON.stringify({ reports, logged }));
  `;
}
