import * as diagnosticsChannel from 'node:diagnostics_channel';
import type { CloseReason, ErrorPhase, RequestScope } from '../contract/types.ts';

/** Published on `closeguard:request:start` when a request enters a host. */
export interface RequestStartedMessage {
  scope: RequestScope;
  method: string;
  url: string;
}

/** Published on `closeguard:request:finish` exactly once per request, after every cleanup. */
export interface RequestFinishedMessage {
  scope: RequestScope;
  method: string;
  url: string;
  route: string | undefined;
  reason: CloseReason;
  /** Milliseconds from entry to the end of the last cleanup. */
  durationMs: number;
}

/** Published on `closeguard:request:exception` for every error reported for a request. */
export interface RequestExceptionMessage {
  scope: RequestScope | undefined;
  error: unknown;
  phase: ErrorPhase;
}

/** Published on `closeguard:leak` when a hand-acquired lease is reclaimed at request end. */
export interface LeakMessage {
  scope: RequestScope | undefined;
  route: string | undefined;
  /** Where the lease was acquired. */
  stack: string;
  heldMs: number;
  alias: string;
}

/** The `node:diagnostics_channel` names closeguard publishes on. */
export const channelNames = {
  requestStarted: 'closeguard:request:start',
  requestFinished: 'closeguard:request:finish',
  requestException: 'closeguard:request:exception',
  leak: 'closeguard:leak',
} as const;

/** A typed view of one diagnostics channel. */
export interface Signal<T> {
  /** The diagnostics_channel name, for APM tools that subscribe by name. */
  readonly name: string;
  /** Whether anyone listens; publishers skip building messages when not. */
  readonly hasSubscribers: boolean;
  subscribe(listener: (message: T) => void): void;
  unsubscribe(listener: (message: T) => void): boolean;
  publish(message: T): void;
}

/**
 * diagnostics_channel rethrows a subscriber's error as an uncaught exception, which would bring
 * the server down; a subscriber made through `signals` is isolated and its error only logged.
 */
function isolate<T>(name: string, listener: (message: T) => void): (message: unknown) => void {
  return (message) => {
    try {
      listener(message as T);
    } catch (error) {
      console.error(`closeguard: a subscriber of ${name} threw; the request's cleanup went on`, error);
    }
  };
}

function createSignal<T>(name: string): Signal<T> {
  const channel = diagnosticsChannel.channel(name);
  // diagnostics_channel listeners get (message, name); ours get the message only.
  const wrapped = new WeakMap<(message: T) => void, (message: unknown) => void>();
  return {
    name,
    get hasSubscribers() {
      return channel.hasSubscribers;
    },
    subscribe(listener) {
      const forward = wrapped.get(listener) ?? isolate(name, listener);
      wrapped.set(listener, forward);
      diagnosticsChannel.subscribe(name, forward);
    },
    unsubscribe(listener) {
      const forward = wrapped.get(listener);
      return forward !== undefined && diagnosticsChannel.unsubscribe(name, forward);
    },
    publish(message) {
      if (channel.hasSubscribers) channel.publish(message);
    },
  };
}

/** closeguard's signals, each a typed `node:diagnostics_channel` channel. */
export const signals = {
  requestStarted: createSignal<RequestStartedMessage>(channelNames.requestStarted),
  requestFinished: createSignal<RequestFinishedMessage>(channelNames.requestFinished),
  requestException: createSignal<RequestExceptionMessage>(channelNames.requestException),
  leak: createSignal<LeakMessage>(channelNames.leak),
} as const;
