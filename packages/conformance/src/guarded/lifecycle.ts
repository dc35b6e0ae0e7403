import { afterAll, beforeAll } from 'vitest';
import { signals, type RequestFinishedMessage, type RequestScope, type RequestStartedMessage } from '@closeguard/core';

/** Which scopes started and how often each finished, and what escaped, over a whole suite. */
export interface Lifecycle {
  readonly started: readonly RequestScope[];
  readonly finishes: ReadonlyMap<RequestScope, readonly RequestFinishedMessage[]>;
  /** Unhandled rejections. */
  readonly escaped: readonly unknown[];
}

/** A lifecycle recorded for the enclosing `describe` block (beforeAll → afterAll). */
export function useLifecycle(): Lifecycle {
  const started: RequestScope[] = [];
  const finishes = new Map<RequestScope, RequestFinishedMessage[]>();
  const escaped: unknown[] = [];
  const onStart = ({ scope }: RequestStartedMessage): void => void started.push(scope);
  const onFinish = (message: RequestFinishedMessage): void => {
    const list = finishes.get(message.scope) ?? [];
    list.push(message);
    finishes.set(message.scope, list);
  };
  const onEscaped = (error: unknown): void => void escaped.push(error);
  beforeAll(() => {
    signals.requestStarted.subscribe(onStart);
    signals.requestFinished.subscribe(onFinish);
    process.on('unhandledRejection', onEscaped);
  });
  afterAll(() => {
    signals.requestStarted.unsubscribe(onStart);
    signals.requestFinished.unsubscribe(onFinish);
    process.off('unhandledRejection', onEscaped);
  });
  return { started, finishes, escaped };
}
