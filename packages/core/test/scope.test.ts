import { afterEach, describe, expect, it } from 'vitest';
import { currentScope, isCloseguardError, signals, type RequestFinishedMessage } from '@closeguard/core';
import { createScope } from '@closeguard/core/host';
import { quiet } from '@closeguard/conformance';

describe('createScope()', () => {
  const finished: RequestFinishedMessage[] = [];
  const onFinished = (message: RequestFinishedMessage): void => void finished.push(message);
  signals.requestFinished.subscribe(onFinished);
  afterEach(() => void finished.splice(0));

  describe('when cleanups are deferred', () => {
    it('runs them last-in-first-out at close', async () => {
      const order: number[] = [];
      const scope = createScope({ method: 'GET', url: '/lifo', logger: quiet });
      scope.defer(() => void order.push(1));
      scope.defer(async () => {
        await Promise.resolve();
        order.push(2);
      });
      scope.defer(() => void order.push(3));
      await scope.close('complete');
      expect(order).toEqual([3, 2, 1]);
    });

    it('isolates each cleanup from the errors of the others and reports them', async () => {
      const ran: string[] = [];
      const logged: unknown[] = [];
      const scope = createScope({ method: 'GET', url: '/isolated', logger: { error: (...args) => void logged.push(args) } });
      scope.defer(() => void ran.push('first'));
      scope.defer(() => {
        throw new Error('cleanup failed');
      });
      scope.defer(() => Promise.reject(new Error('async cleanup failed')));
      await scope.close('complete');
      expect(ran).toEqual(['first']);
      expect(logged).toHaveLength(2);
    });

    it('runs a cleanup deferred after close at once', async () => {
      const scope = createScope({ method: 'GET', url: '/late', logger: quiet });
      await scope.close('complete');
      let ran = false;
      scope.defer(() => {
        ran = true;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(ran).toBe(true);
    });

    it('rejects a cleanup that is not a function with a TypeError', () => {
      const scope = createScope({ method: 'GET', url: '/bad-defer', logger: quiet });
      expect(() => scope.defer('nope' as never)).toThrow(TypeError);
    });
  });

  describe('when close() is called several times', () => {
    it('runs the cleanups once and returns the same promise', async () => {
      let runs = 0;
      const scope = createScope({ method: 'GET', url: '/twice', logger: quiet });
      scope.defer(() => void runs++);
      const first = scope.close('complete');
      const second = scope.close('error');
      expect(second).toBe(first);
      await Promise.all([first, second]);
      expect(runs).toBe(1);
      expect(scope.closeReason).toBe('complete');
    });

    it('fires requestFinished once, after every cleanup, with the reason and duration', async () => {
      let cleaned = false;
      const scope = createScope({ method: 'POST', url: '/finish', logger: quiet });
      scope.defer(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        cleaned = true;
      });
      signals.requestFinished.subscribe(function check() {
        expect(cleaned).toBe(true);
        signals.requestFinished.unsubscribe(check);
      });
      await Promise.all([scope.close('aborted'), scope.close('aborted')]);
      const mine = finished.filter((message) => message.scope === scope);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ method: 'POST', url: '/finish', reason: 'aborted' });
      expect(mine[0]?.durationMs).toBeGreaterThan(0);
    });
  });

  describe('when the guard defers a finisher', () => {
    /** A finisher as the guard's leases: it records its turn and resolves after `ms`. */
    const finisher = (order: string[], ms: number) => ({
      finish: () => {
        order.push('finisher');
        return new Promise<void>((resolve) => setTimeout(resolve, ms));
      },
    });

    it('runs it in last-in-first-out order with the cleanups, before one deferred ahead of it', async () => {
      const order: string[] = [];
      const scope = createScope({ method: 'GET', url: '/finisher-order', logger: quiet });
      scope.defer(() => void order.push('before'));
      scope.deferFinish(finisher(order, 1));
      scope.defer(() => void order.push('after'));
      await scope.close('complete');
      expect(order).toEqual(['after', 'finisher', 'before']);
      expect(finished.filter((message) => message.scope === scope)).toHaveLength(1);
    });

    it('settles close() only once the finisher has, with or without requestFinished subscribers', async () => {
      signals.requestFinished.unsubscribe(onFinished);
      try {
        const scope = createScope({ method: 'GET', url: '/finisher-alone', logger: quiet });
        let done = false;
        scope.deferFinish({ finish: () => new Promise<void>((resolve) => setTimeout(() => resolve(void (done = true)), 5)) });
        expect(scope.closed).toBe(false);
        const closing = scope.close('complete');
        expect(scope.closed).toBe(true);
        expect(scope.close('error')).toBe(closing);
        await closing;
        expect(done).toBe(true);
      } finally {
        signals.requestFinished.subscribe(onFinished);
      }
    });

    it('gives a cleanup that closes its own scope a promise that settles with the close, and runs every cleanup once', async () => {
      const order: string[] = [];
      const scope = createScope({ method: 'GET', url: '/reentrant', logger: quiet });
      let inner: Promise<void> | undefined;
      scope.deferFinish(finisher(order, 20));
      scope.defer(() => {
        order.push('closer');
        inner = scope.close('error');
      });
      const outer = scope.close('complete');
      let innerSettled = false;
      void inner!.then(() => void (innerSettled = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(innerSettled).toBe(false); // the finisher still runs
      await outer;
      await inner;
      expect(order).toEqual(['closer', 'finisher']);
      expect(scope.closeReason).toBe('complete');
      expect(finished.filter((message) => message.scope === scope)).toHaveLength(1);
    });
  });

  describe('when the request is cut short', () => {
    it.each([
      ['aborted', 'ERR_CLOSEGUARD_CLIENT_CLOSED'],
      ['timeout', 'ERR_CLOSEGUARD_TIMEOUT'],
      ['shutdown', 'ERR_CLOSEGUARD_SHUTDOWN'],
    ] as const)('aborts the signal on %s with a coded reason', (reason, code) => {
      const scope = createScope({ method: 'GET', url: `/abort-${reason}`, logger: quiet });
      scope.abort(reason);
      scope.abort('shutdown');
      expect(scope.signal.aborted).toBe(true);
      expect(isCloseguardError(scope.signal.reason, code)).toBe(true);
    });

    it('does not abort the signal on a complete close', async () => {
      const scope = createScope({ method: 'GET', url: '/no-abort', logger: quiet });
      await scope.close('complete');
      expect(scope.signal.aborted).toBe(false);
    });
  });
});

describe('currentScope()', () => {
  it('finds the scope from anywhere in its async call tree when async context is on', async () => {
    const scope = createScope({ method: 'GET', url: '/als', logger: quiet, asyncContext: true });
    const found = await scope.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return currentScope();
    });
    expect(found).toBe(scope);
    expect(currentScope()).toBeUndefined();
    await scope.close('complete');
  });
});
