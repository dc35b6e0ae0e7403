import { checkAnswer, checkHeaders, checkStatus, closeStray, describe, isThenable } from './checks.ts';
import { CloseguardTypeError, ContractError } from './errors.ts';
import { guardBody, report, type ResponseProgress } from './validate-body.ts';
import { checkEnv } from './validate-env.ts';
import type { GatewayApp, GatewayBody, GatewayEnv, StartResponse } from './types.ts';

/**
 * Wraps a gateway app so that both sides of the gateway contract are checked at run time — the
 * Node counterpart of Python's `wsgiref.validate`. Each breach throws a `ContractError` whose
 * `code` names the rule, from where the side at fault will see it: the app's `start()` throws into
 * the app, the body's `next()` throws (or rejects) to the host for the app's bad chunks, and the
 * host's own misuse throws from the call it got wrong. For tests and development.
 *
 * @param app the gateway app to check
 * @returns an app with the same behaviour whose body always has a `close()`
 * @throws CloseguardTypeError (a TypeError) `ERR_CLOSEGUARD_INVALID_ARGUMENT` when `app` is not a function.
 * @throws ContractError app side: `ERR_CLOSEGUARD_START_NOT_CALLED`, `…_START_TWICE`,
 * `…_HEADERS_SENT`, `…_INVALID_STATUS`, `…_INVALID_HEADER_NAME`, `…_INVALID_HEADER_VALUE`,
 * `…_CONTENT_TYPE_FORBIDDEN`, `…_INVALID_CHUNK`, `…_BODY_NOT_ITERABLE`; host side:
 * `…_INVALID_ENV`, `…_CLOSE_TWICE`, `…_ITERATE_AFTER_CLOSE`. A body garbage-collected without
 * `close()` cannot throw: `…_BODY_NOT_CLOSED` is published on `signals.requestException`
 * (phase `'close'`) and logged with `console.error`.
 * @example
 * import { validate } from '@closeguard/core';
 * import { requestListener } from '@closeguard/node';
 *
 * http.createServer(requestListener(validate((env, start) => {
 *   start(200, { 'content-type': 'text/plain' });
 *   return ['hello'];
 * })));
 */
export function validate(app: GatewayApp): GatewayApp {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `validate(app) takes a gateway app function; received ${describe(app)}`);
  return (env, start) => {
    checkEnv(env, start);
    const response: ResponseProgress = { started: false, headersSent: false };
    const answer = app(env, guardStart(start, response));
    // A promised body is checked when it arrives; a body given at once stays synchronous.
    return isThenable(answer)
      ? Promise.resolve(answer).then((body) => guardAnswer(body, response, env))
      : guardAnswer(answer, response, env);
  };
}

/** The app's `start`: checks the call against what was already sent, then forwards it to the host. */
function guardStart(start: StartResponse, response: ResponseProgress): StartResponse {
  return (status, headers, error) => {
    if (response.headersSent) {
      throw new ContractError('ERR_CLOSEGUARD_HEADERS_SENT', 'start() was called after the first non-empty chunk went out', { cause: error });
    }
    if (response.started && error === undefined) {
      throw new ContractError('ERR_CLOSEGUARD_START_TWICE', 'start() was called a second time without an error');
    }
    checkStatus(status);
    checkHeaders(headers, status);
    if (error === undefined) start(status, headers);
    else start(status, headers, error);
    response.started = true;
  };
}

/** Checks the app's answer and wraps it; a rejected answer that has a close() is closed first. */
function guardAnswer(answer: unknown, response: ResponseProgress, env: GatewayEnv): GatewayBody {
  try {
    checkAnswer(answer);
  } catch (error) {
    // The host never sees this answer, so it cannot close it: do it here.
    closeStray(answer, (error) => report(error, 'close', env.scope));
    throw error;
  }
  return guardBody(answer, response, env);
}

