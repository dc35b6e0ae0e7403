import type { BodyOutcome } from './cursor.ts';
import type { CloseReason } from '../contract/types.ts';

/**
 * Why a request's scope closes, from how it went — the one rule every host applies: a body given
 * up on at an `await` ends it 'timeout' (its connections are destroyed); then a failure wins (also
 * one that cut the response); then a response that did not go out in full means the client left.
 * @param finished the response went out in full
 * @param failed the handler chain or the body failed
 * @param outcome how a gateway body ended, when one was served
 * @example
 * void scope.close(closeReason(res.writableFinished, failed, await body.outcome));
 */
export function closeReason(finished: boolean, failed: boolean, outcome?: BodyOutcome): CloseReason {
  if (outcome === 'timeout') return 'timeout';
  if (failed || outcome === 'error') return 'error';
  return finished ? 'complete' : 'aborted';
}
