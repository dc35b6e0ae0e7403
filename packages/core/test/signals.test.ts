import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { channelNames, signals, type RequestStartedMessage } from '@closeguard/core';
import { createScope } from '@closeguard/core/host';

describe('signals', () => {
  it('publishes on the documented diagnostics_channel names', async () => {
    const seen: string[] = [];
    const listeners = Object.values(channelNames).map((name) => {
      const listener = (): void => void seen.push(name);
      subscribe(name, listener);
      return [name, listener] as const;
    });
    const scope = createScope({ method: 'GET', url: '/channels', logger: { error: () => undefined } });
    scope.report(new Error('reported'), 'cleanup');
    await scope.close('complete');
    for (const [name, listener] of listeners) unsubscribe(name, listener);
    expect(seen).toEqual([channelNames.requestStarted, channelNames.requestException, channelNames.requestFinished]);
  });

  it('keeps a subscriber that throws from reaching the server', async () => {
    const throwing = (): void => {
      throw new Error('subscriber bug');
    };
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    signals.requestFinished.subscribe(throwing);
    try {
      const scope = createScope({ method: 'GET', url: '/throwing-subscriber', logger: { error: () => undefined } });
      await scope.close('complete');
    } finally {
      signals.requestFinished.unsubscribe(throwing);
      console.error = original;
    }
    expect(errors).toHaveLength(1);
  });

  it('stops delivering after unsubscribe', () => {
    const seen: RequestStartedMessage[] = [];
    const listener = (message: RequestStartedMessage): void => void seen.push(message);
    signals.requestStarted.subscribe(listener);
    createScope({ method: 'GET', url: '/one' });
    expect(signals.requestStarted.unsubscribe(listener)).toBe(true);
    createScope({ method: 'GET', url: '/two' });
    expect(seen.map((message) => message.url)).toEqual(['/one']);
  });
});
