import { describe, expect, it } from 'vitest';
import { isCloseguardError, signals, type GatewayApp, type GatewayBody, type RequestExceptionMessage } from '@closeguard/core';
import { drive } from '@closeguard/core/host';
import { testEnv } from '@closeguard/conformance';

const envFor = testEnv;

/** A body with close() that counts calls and records its generator's finally. */
function tracked(chunks: Iterable<unknown> | AsyncIterable<unknown>): GatewayBody & { state: { closes: number; finallyRan: boolean } } {
  const state = { closes: 0, finallyRan: false };
  async function* generate() {
    try {
      for await (const chunk of chunks) yield chunk as string;
    } finally {
      state.finallyRan = true;
    }
  }
  return Object.assign(generate(), {
    state,
    close() {
      state.closes++;
    },
  });
}

async function readAll(body: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of body) text += String(chunk);
  return text;
}

describe('drive(app, env)', () => {
  describe('when the app calls start lazily, inside its generator', () => {
    it('waits for the first non-empty chunk before fixing the status', async () => {
      const app: GatewayApp = (_env, start) =>
        (async function* () {
          yield '';
          await new Promise((resolve) => setTimeout(resolve, 1));
          start(201, { 'x-late': 'yes' });
          yield 'made';
        })();
      const driven = await drive(app, envFor('/lazy'));
      expect(driven.ok).toBe(true);
      if (!driven.ok) return;
      expect(driven.status).toBe(201);
      expect(await readAll(driven.body)).toBe('made');
      expect(await driven.body.outcome).toBe('complete');
    });
  });

  describe('when the app replaces its response with start(…, error) before the first chunk', () => {
    it('sends the replacement', async () => {
      const app: GatewayApp = (_env, start) => {
        start(200, { 'content-type': 'text/plain' });
        try {
          throw new Error('db down');
        } catch (error) {
          start(503, { 'content-type': 'text/plain' }, error);
          return ['try later'];
        }
      };
      const driven = await drive(app, envFor('/replace'));
      expect(driven.ok && driven.status).toBe(503);
    });
  });

  describe('when the body fails before its first chunk', () => {
    it('answers not ok, having called return() and close() once', async () => {
      const body = tracked(
        (async function* (): AsyncGenerator<string> {
          await Promise.resolve();
          if (Math.PI > 3) throw new Error('query failed');
          yield 'unreachable';
        })(),
      );
      const driven = await drive((_env, start) => {
        start(200, {});
        return body;
      }, envFor('/early-fail'));
      expect(driven).toMatchObject({ ok: false, outcome: 'error' });
      expect(body.state.closes).toBe(1);
      expect(body.state.finallyRan).toBe(true);
    });
  });

  describe('when the consumer stops reading', () => {
    it('pulls no more than its high-water mark ahead', async () => {
      let yielded = 0;
      const chunk = 'x'.repeat(1024);
      const app: GatewayApp = (_env, start) => {
        start(200, {});
        return (function* () {
          for (;;) {
            yielded++;
            yield chunk;
          }
        })();
      };
      const driven = await drive(app, envFor('/paused'), { highWaterMark: 8 * 1024 });
      if (!driven.ok) throw new Error('expected a response');
      driven.body.pause();
      driven.body.resume();
      driven.body.pause();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // 8 chunks fill the buffer; the first chunk and one in flight may come on top.
      expect(yielded).toBeLessThanOrEqual(11);
      driven.body.destroy();
      expect(await driven.body.outcome).toBe('aborted');
    });
  });

  describe('when the body is destroyed mid-stream', () => {
    it('ends the generator and calls close() exactly once', async () => {
      const body = tracked(['a', 'b', 'c']);
      const driven = await drive((_env, start) => {
        start(200, {});
        return body;
      }, envFor('/destroyed'));
      if (!driven.ok) throw new Error('expected a response');
      driven.body.destroy();
      driven.body.destroy();
      expect(await driven.body.outcome).toBe('aborted');
      expect(body.state.finallyRan).toBe(true);
      expect(body.state.closes).toBe(1);
    });
  });

  describe('when the body is stuck at an await as the request ends', () => {
    it('waits at most abortGrace, then gives up with a timeout', async () => {
      const never = new Promise<never>(() => undefined);
      const body = tracked(
        (async function* () {
          yield 'first';
          await never;
        })(),
      );
      const driven = await drive((_env, start) => {
        start(200, {});
        return body;
      }, envFor('/stuck'), { abortGrace: 30 });
      if (!driven.ok) throw new Error('expected a response');
      driven.body.on('data', () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 10));
      driven.body.destroy();
      expect(await driven.body.outcome).toBe('timeout');
      expect(body.state.closes).toBe(1);
    });
  });

  describe('when the client leaves while the app is still awaiting', () => {
    it('closes the body that arrives late', async () => {
      const env = envFor('/late-body');
      const body = tracked(['never sent']);
      let deliver!: (value: GatewayBody) => void;
      const pending = drive(() => new Promise<GatewayBody>((resolve) => (deliver = resolve)), env, { abortGrace: 1000 });
      env.scope.abort('aborted');
      setTimeout(() => deliver(body), 5);
      expect(await pending).toMatchObject({ ok: false, outcome: 'aborted' });
      expect(body.state.closes).toBe(1);
    });
  });

  describe('when the host gives up on the request before the app answers', () => {
    it('reports ERR_CLOSEGUARD_CLOSE_TIMEOUT though the app answered before the driver\'s own timer', async () => {
      const reported: RequestExceptionMessage[] = [];
      const listener = (message: RequestExceptionMessage): void => void reported.push(message);
      signals.requestException.subscribe(listener);
      const env = envFor('/given-up');
      const body = tracked(['never sent']);
      let deliver!: (value: GatewayBody) => void;
      const pending = drive(() => new Promise<GatewayBody>((resolve) => (deliver = resolve)), env, { abortGrace: 60_000 });
      env.scope.abort('aborted');
      await env.scope.close('timeout'); // as HostRequest's abortGrace timer does, ahead of the driver's
      deliver(body);
      expect(await pending).toMatchObject({ ok: false, outcome: 'aborted' });
      signals.requestException.unsubscribe(listener);
      expect(body.state.closes).toBe(1);
      const codes = reported.filter((message) => message.scope === env.scope).map((message) => (message.error as { code?: string }).code);
      expect(codes).toEqual(['ERR_CLOSEGUARD_CLOSE_TIMEOUT']);
    });

    it('reports nothing when the request ended without a timeout', async () => {
      const reported: RequestExceptionMessage[] = [];
      const listener = (message: RequestExceptionMessage): void => void reported.push(message);
      signals.requestException.subscribe(listener);
      const env = envFor('/left');
      let deliver!: (value: GatewayBody) => void;
      const pending = drive(() => new Promise<GatewayBody>((resolve) => (deliver = resolve)), env, { abortGrace: 60_000 });
      env.scope.abort('aborted');
      await env.scope.close('aborted');
      deliver(tracked(['never sent']));
      expect(await pending).toMatchObject({ ok: false, outcome: 'aborted' });
      signals.requestException.unsubscribe(listener);
      expect(reported.filter((message) => message.scope === env.scope)).toEqual([]);
    });
  });

  describe('when close() throws', () => {
    it('reports the error and still completes', async () => {
      const reported: RequestExceptionMessage[] = [];
      const listener = (message: RequestExceptionMessage): void => void reported.push(message);
      signals.requestException.subscribe(listener);
      const body = Object.assign(['ok'], {
        close() {
          throw new Error('close failed');
        },
      });
      const env = envFor('/close-throws');
      const driven = await drive((_env, start) => {
        start(200, {});
        return body;
      }, env);
      if (!driven.ok) throw new Error('expected a response');
      expect(await readAll(driven.body)).toBe('ok');
      expect(await driven.body.outcome).toBe('complete');
      signals.requestException.unsubscribe(listener);
      expect(reported.filter((message) => message.scope === env.scope).map((message) => message.phase)).toEqual(['close']);
    });
  });

  describe('when the app breaks the contract', () => {
    it.each([
      ['a chunk before start()', () => ['x'], 'ERR_CLOSEGUARD_START_NOT_CALLED'],
      ['a bare string', (_env: unknown, start: (s: number, h: object) => void) => (start(200, {}), 'text'), 'ERR_CLOSEGUARD_BODY_NOT_ITERABLE'],
      ['a number chunk', (_env: unknown, start: (s: number, h: object) => void) => (start(200, {}), [42]), 'ERR_CLOSEGUARD_INVALID_CHUNK'],
      ['status 99', (_env: unknown, start: (s: number, h: object) => void) => (start(99, {}), ['x']), 'ERR_CLOSEGUARD_INVALID_STATUS'],
      ['a CR/LF header', (_env: unknown, start: (s: number, h: object) => void) => (start(200, { a: 'b\r\nc: d' }), ['x']), 'ERR_CLOSEGUARD_INVALID_HEADER_VALUE'],
      ['start twice', (_env: unknown, start: (s: number, h: object) => void) => (start(200, {}), start(200, {}), ['x']), 'ERR_CLOSEGUARD_START_TWICE'],
    ])('answers not ok for %s, with the rule in the code', async (_name, app, code) => {
      const driven = await drive(app as unknown as GatewayApp, envFor('/breach'));
      expect(driven.ok).toBe(false);
      if (driven.ok) return;
      expect(isCloseguardError(driven.error, code as never)).toBe(true);
    });
  });
});
