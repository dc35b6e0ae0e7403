import diagnostics from 'node:diagnostics_channel';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Exchange } from '@closeguard/node';
import { FastifyExchange } from './state.ts';

/**
 * What Fastify (5.0 and later) publishes around each route handler, on
 * `tracing:fastify.request.handler:*`: `start` before the handler runs, `end` once it returned or
 * threw, and `asyncEnd` once the promise it returned settled — unless the reply was hijacked by
 * then (RequestState ends those with their response). One object per request (Fastify's store).
 */
interface HandlerMessage {
  request?: FastifyRequest;
  reply?: FastifyReply;
  /** The handler returned a promise: `asyncEnd` follows. */
  async: boolean;
  route?: { url: string; method: string };
  error?: unknown;
}

const channels = {
  start: 'tracing:fastify.request.handler:start',
  end: 'tracing:fastify.request.handler:end',
  asyncEnd: 'tracing:fastify.request.handler:asyncEnd',
} as const;

let followers = 0;

/**
 * Follows route handlers through Fastify's handler channel (not by wrapping `routeOptions.handler`,
 * which the app's own onRoute hooks must see as declared) while at least one instance asks to.
 * Every Fastify instance of the process publishes on it then; those without closeguard are skipped.
 * @returns what stops following, for the instance's onClose; calling it again does nothing.
 */
export function followHandlers(): () => void {
  if (followers++ === 0) {
    diagnostics.subscribe(channels.start, onStart);
    diagnostics.subscribe(channels.end, onEnd);
    diagnostics.subscribe(channels.asyncEnd, onAsyncEnd);
  }
  let following = true;
  return () => {
    if (!following) return;
    following = false;
    if (--followers > 0) return;
    diagnostics.unsubscribe(channels.start, onStart);
    diagnostics.unsubscribe(channels.end, onEnd);
    diagnostics.unsubscribe(channels.asyncEnd, onAsyncEnd);
  };
}

/**
 * The request's state, or none: a request of an instance without closeguard, or a message that
 * does not carry a native request (a subscriber's throw would be an uncaught exception).
 */
function stateOf(message: HandlerMessage): FastifyExchange | undefined {
  const raw = message.request?.raw;
  const exchange = raw === undefined ? undefined : Exchange.of(raw);
  return exchange instanceof FastifyExchange ? exchange : undefined;
}

function onStart(message: unknown): void {
  stateOf(message as HandlerMessage)?.handlerStarted((message as HandlerMessage).route?.url);
}

function onEnd(message: unknown): void {
  const { async, error } = message as HandlerMessage;
  if (!async) stateOf(message as HandlerMessage)?.handlerReturned(error);
}

function onAsyncEnd(message: unknown): void {
  stateOf(message as HandlerMessage)?.handlerSettled((message as HandlerMessage).error);
}
