import { invalidChunk, isChunk } from './checks.ts';
import { ContractError } from './errors.ts';
import { signals } from '../host/signals.ts';
import type { Chunk, ErrorPhase, GatewayBody, GatewayEnv, RequestScope } from './types.ts';

// The body side of validate(): chunks and start() order (app), next()/return()/close() (host).

/** How far one response got, shared by the guarded `start` and the guarded body. */
export interface ResponseProgress {
  /** start() has been called (and the host accepted it). */
  started: boolean;
  /** The first non-empty chunk, or the end of the body, went out: the headers are the host's. */
  headersSent: boolean;
}

/** What a body's finalizer reports: nothing in it may reach the body, or it would never be collected. */
interface DroppedBody {
  readonly request: string;
  readonly scope: WeakRef<RequestScope>;
}

/** One guarded body's host-side state. */
interface BodyState {
  closed: boolean;
  readonly response: ResponseProgress;
  readonly scope: RequestScope;
}

type GuardedBody = Partial<Iterable<Chunk> & AsyncIterable<Chunk>> & { close(): void | Promise<void> };

const unclosed = new FinalizationRegistry<DroppedBody>(reportDropped);

/**
 * Wraps an app's body: the same kind of iterable (sync stays sync), every result checked, and a
 * `close()` the host must call exactly once — even when the app's body has none.
 */
export function guardBody(body: GatewayBody, response: ResponseProgress, env: GatewayEnv): GatewayBody {
  const state: BodyState = { closed: false, response, scope: env.scope };
  const guarded: GuardedBody = { close: () => closeOnce(body, state) };
  if (isAsyncIterable(body)) guarded[Symbol.asyncIterator] = () => guardAsync(body[Symbol.asyncIterator](), state);
  if (isIterable(body)) guarded[Symbol.iterator] = () => guardSync(body[Symbol.iterator](), state);
  // The state is the unregister token: close() reaches it, the held value does not.
  unclosed.register(guarded, { request: `${env.method} ${env.url}`, scope: new WeakRef(env.scope) }, state);
  return guarded as GatewayBody;
}

function closeOnce(body: GatewayBody, state: BodyState): void | Promise<void> {
  if (state.closed) throw new ContractError('ERR_CLOSEGUARD_CLOSE_TWICE', "the host called the body's close() a second time");
  state.closed = true;
  unclosed.unregister(state);
  return body.close?.();
}

function guardSync(inner: Iterator<Chunk>, state: BodyState): Iterator<Chunk> {
  let returned = false;
  return {
    next() {
      refuseAfterEnd(state, returned);
      const result = inner.next();
      try {
        return checkResult(result, state.response);
      } catch (error) {
        // The host takes a throwing iterator as done and won't call return(): end it here.
        endSync(inner, state.scope);
        throw error;
      }
    },
    return(value?: unknown) {
      returned = true;
      return inner.return ? inner.return(value) : { done: true, value };
    },
  };
}

function guardAsync(inner: AsyncIterator<Chunk>, state: BodyState): AsyncIterator<Chunk> {
  let returned = false;
  return {
    // Not async: a host's misuse throws synchronously; the app's breaches reject.
    next() {
      refuseAfterEnd(state, returned);
      return Promise.resolve(inner.next()).then(async (result) => {
        try {
          return checkResult(result, state.response);
        } catch (error) {
          // Ended before the rejection, so the generator's finally runs before the host's close().
          await endAsync(inner, state.scope);
          throw error;
        }
      });
    },
    async return(value?: unknown) {
      returned = true;
      return inner.return ? inner.return(value) : { done: true, value };
    },
  };
}

/** Throws ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE when the host pulls from a body it ended. */
function refuseAfterEnd(state: BodyState, returned: boolean): void {
  if (!state.closed && !returned) return;
  const after = state.closed ? 'close()' : 'return()';
  throw new ContractError('ERR_CLOSEGUARD_ITERATE_AFTER_CLOSE', `the host called next() after ${after}`);
}

/** Checks one result of the app's iterator (chunk type, start() first) and returns it unchanged. */
function checkResult(result: IteratorResult<unknown>, response: ResponseProgress): IteratorResult<Chunk> {
  if (!result.done) {
    if (!isChunk(result.value)) throw invalidChunk(result.value);
    // Empty chunks are skipped by the host, so they may come before start().
    if (result.value.length === 0) return result as IteratorResult<Chunk>;
  }
  if (!response.started) {
    const what = result.done ? 'the body ended' : 'the body yielded a non-empty chunk';
    throw new ContractError('ERR_CLOSEGUARD_START_NOT_CALLED', `${what} before start() was called`);
  }
  response.headersSent = true;
  return result as IteratorResult<Chunk>;
}

function endSync(inner: Iterator<unknown>, scope: RequestScope): void {
  try {
    inner.return?.();
  } catch (error) {
    report(error, 'return', scope);
  }
}

async function endAsync(inner: AsyncIterator<unknown>, scope: RequestScope): Promise<void> {
  try {
    await inner.return?.();
  } catch (error) {
    report(error, 'return', scope);
  }
}

/** GC time cannot throw: a body dropped without close() is published and logged instead. */
function reportDropped({ request, scope }: DroppedBody): void {
  const error = new ContractError('ERR_CLOSEGUARD_BODY_NOT_CLOSED', `the body of ${request} was garbage-collected without close()`);
  report(error, 'close', scope.deref());
}

/** Publishes an error validate() cannot throw on `requestException`, and logs it. */
export function report(error: unknown, phase: ErrorPhase, scope: RequestScope | undefined): void {
  signals.requestException.publish({ scope, error, phase });
  console.error(`closeguard: validate() found a ${phase} error`, error);
}

function isAsyncIterable(body: GatewayBody): body is AsyncIterable<Chunk> {
  return typeof (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator] === 'function';
}

function isIterable(body: GatewayBody): body is Iterable<Chunk> {
  return typeof (body as Partial<Iterable<Chunk>>)[Symbol.iterator] === 'function';
}
