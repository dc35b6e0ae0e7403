import { GatewayReadable } from './body-stream.ts';
import { checkAnswer, checkHeaders, checkStatus, closeStray, invalidChunk, isChunk, isThenable } from '../contract/checks.ts';
import { BodyCursor, type BodyOutcome } from './cursor.ts';
import { CloseguardError, ContractError } from '../contract/errors.ts';
import { leasesSlot, type HostScope } from './scope.ts';
import { signals } from './signals.ts';
import type { Chunk, ErrorPhase, GatewayApp, GatewayEnv, Headers, StartResponse } from '../contract/types.ts';

/** Milliseconds a host waits, after a request ends early, for a body stuck at an `await`. */
export const DEFAULT_ABORT_GRACE_MS = 5_000;
const DEFAULT_HIGH_WATER_MARK_BYTES = 16 * 1024;

export interface DriveOptions {
  /** Milliseconds to wait for a pending `next()` (or app promise) after an abort. Default 5000. */
  abortGrace?: number | undefined;
  /** Bytes the body stream may buffer ahead of its consumer. Default 16 KiB. */
  highWaterMark?: number | undefined;
}

/** The env a host passes to `drive()`: its scope can run code in the request's context. */
export type HostEnv = GatewayEnv & { scope: HostScope };

/** A response ready to send, or a failure before anything was sent (the body is already closed). */
export type Driven =
  | { ok: true; status: number; headers: Headers; body: GatewayReadable }
  | { ok: false; error: unknown; outcome: BodyOutcome };

type Settled<T> = { kind: 'value'; value: T } | { kind: 'error'; error: unknown } | { kind: 'aborted' };

/**
 * Calls a gateway app and pulls its body up to the first non-empty chunk (or its end), so the
 * status is final before anything is sent. Never rejects: a failure, or a request aborted before
 * that point, comes back as `{ ok: false }` with the body already ended and closed.
 */
export async function drive(app: GatewayApp, env: HostEnv, options: DriveOptions = {}): Promise<Driven> {
  const { scope } = env;
  const request = abortableOf(env);
  const grace = options.abortGrace ?? DEFAULT_ABORT_GRACE_MS;
  const response = new ResponseState();

  let answer: unknown;
  try {
    answer = scope.run(() => app(env, response.start));
  } catch (error) {
    return failed(scope, error, 'app', 'error');
  }
  if (isThenable(answer)) {
    const settled = await untilAborted(answer, request);
    if (settled.kind === 'aborted') return abandon(answer, scope, grace, env.signal.reason, response);
    if (settled.kind === 'error') return failed(scope, settled.error, 'app', 'error');
    answer = settled.value;
  }
  try {
    checkAnswer(answer);
  } catch (error) {
    closeStray(answer, (error) => scope.report(error, 'close'));
    return failed(scope, error, 'app', 'error');
  }

  const cursor = new BodyCursor(answer, scope, grace);
  let first: Chunk | undefined;
  for (;;) {
    if (request.aborted()) return { ok: false, error: env.signal.reason, outcome: await cursor.finish('aborted') };
    let step;
    try {
      step = cursor.next();
    } catch (error) {
      return failed(scope, error, 'iterate', await cursor.finish('error'));
    }
    let result: IteratorResult<unknown>;
    if (isThenable(step)) {
      const settled = await untilAborted(step, request);
      if (settled.kind === 'aborted') continue;
      if (settled.kind === 'error') return failed(scope, settled.error, 'iterate', await cursor.finish('error'));
      result = settled.value;
    } else {
      result = step;
    }
    if (result.done) break;
    if (!isChunk(result.value)) return failed(scope, invalidChunk(result.value), 'iterate', await cursor.finish('error'));
    if (result.value.length > 0) {
      first = result.value;
      break;
    }
  }

  if (response.status === undefined || response.headers === undefined) {
    const error = new ContractError('ERR_CLOSEGUARD_START_NOT_CALLED', 'the body produced output before start() was called');
    return failed(scope, error, 'app', await cursor.finish('error'));
  }
  // The status is final and nothing went out: the request's transaction ends here (a COMMIT that
  // fails is the app's failure, answered 500 instead of the status it started).
  const settling = settleTransactionOf(scope, response.status);
  if (settling !== undefined) {
    try {
      await settling;
    } catch (error) {
      return failed(scope, error, 'app', await cursor.finish('error'));
    }
  }
  response.committed = true;
  const body = new GatewayReadable(cursor, scope, first, options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK_BYTES);
  return { ok: true, status: response.status, headers: response.headers, body };
}

/** What a guard keeps on a scope (its `RequestLeases`), as far as the driver needs it. */
interface TransactionSettler {
  settleTransaction(status: number, failed: boolean): Promise<void> | undefined;
}

/** Ends the request transaction of the guard that wraps the app (`guard.wrap()`), if any. */
function settleTransactionOf(scope: HostScope, status: number): Promise<void> | undefined {
  const leases = scope[leasesSlot] as Partial<TransactionSettler> | undefined;
  return leases?.settleTransaction?.(status, false);
}

/** The app's `start` and what it was told. */
class ResponseState {
  status: number | undefined;
  headers: Headers | undefined;
  committed = false;

  readonly start: StartResponse = (status, headers, error) => {
    if (this.committed) {
      throw new ContractError('ERR_CLOSEGUARD_HEADERS_SENT', 'start() was called after the response began', { cause: error });
    }
    if (this.status !== undefined && error === undefined) {
      throw new ContractError('ERR_CLOSEGUARD_START_TWICE', 'start() was called a second time without an error');
    }
    checkStatus(status);
    checkHeaders(headers, status);
    this.status = status;
    this.headers = headers;
  };
}

async function failed(scope: HostScope, error: unknown, phase: ErrorPhase, outcome: BodyOutcome | Promise<BodyOutcome>): Promise<Driven> {
  signals.requestException.publish({ scope, error, phase });
  return { ok: false, error, outcome: await outcome };
}

/**
 * The request ended while the app's promise was pending: close the body whenever it comes. An app
 * that answered all the same ends its request transaction with its status: rolled back, or
 * committed with `commitAfterHangUp`.
 */
async function abandon(answer: PromiseLike<unknown>, scope: HostScope, grace: number, reason: unknown, response: ResponseState): Promise<Driven> {
  const closed = Promise.resolve(answer).then(
    async (body) => {
      if (response.status !== undefined) await settleTransactionOf(scope, response.status)?.catch((error: unknown) => scope.report(error, 'app'));
      try {
        checkAnswer(body);
      } catch {
        closeStray(body, (error) => scope.report(error, 'close'));
        return 'aborted' as const;
      }
      return new BodyCursor(body, scope, grace).finish('aborted');
    },
    () => 'aborted' as const,
  );
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(resolve, grace, 'timeout');
  });
  const outcome = await Promise.race([closed, expired]).finally(() => clearTimeout(timer));
  // A host that gave up on the request first (its own abortGrace timer, as HostRequest's, closed
  // the scope with 'timeout') may let the app answer before this timer fires: it was late all the same.
  if (outcome === 'timeout' || scope.closeReason === 'timeout') {
    scope.report(new CloseguardError('ERR_CLOSEGUARD_CLOSE_TIMEOUT', `the app was still awaiting ${grace} ms after the request ended`), 'app');
  }
  return { ok: false, error: reason, outcome };
}

/** How the driver learns that the request was aborted. */
interface Abortion {
  aborted(): boolean;
  /** Calls `onAbort` once if the request aborts; returns how to stop listening. */
  listen(onAbort: () => void): () => void;
}

const stillListening = (): void => undefined;

/**
 * A host scope whose signal is the env's (closeguard's hosts) is watched through its own abort
 * callbacks: no AbortController made, no EventTarget listener per await (≈ 1 µs each on Node 20).
 * Any other env is watched through `env.signal`.
 */
function abortableOf(env: HostEnv): Abortion {
  const scope = env.scope as Partial<HostScope>;
  const own = Object.getOwnPropertyDescriptor(env, 'signal');
  // createEnv (@closeguard/node, used by every adapter) makes env.signal a getter of the scope's.
  if (typeof scope.whenAborted === 'function' && typeof scope.aborted === 'boolean' && own?.get !== undefined) {
    return {
      aborted: () => scope.aborted === true,
      listen: (onAbort) => {
        scope.whenAborted!(onAbort);
        return stillListening; // the list goes with the scope; a late call finds the wait settled
      },
    };
  }
  const { signal } = env;
  return {
    aborted: () => signal.aborted,
    listen: (onAbort) => {
      signal.addEventListener('abort', onAbort, { once: true });
      return () => signal.removeEventListener('abort', onAbort);
    },
  };
}

/** Waits for `promise`, or for the request to abort, whichever comes first. */
function untilAborted<T>(promise: PromiseLike<T>, request: Abortion): Promise<Settled<T>> {
  if (request.aborted()) return Promise.resolve({ kind: 'aborted' });
  return new Promise((resolve) => {
    const stop = request.listen(() => resolve({ kind: 'aborted' }));
    promise.then(
      (value) => {
        stop();
        resolve({ kind: 'value', value });
      },
      (error: unknown) => {
        stop();
        resolve({ kind: 'error', error });
      },
    );
  });
}
