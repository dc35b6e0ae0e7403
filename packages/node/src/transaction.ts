import { CloseguardError } from '@closeguard/core';
import type { TransactionMode } from '@closeguard/core/host';
import type { NodeRequest } from './env.ts';
import { Exchange } from './exchange.ts';

/**
 * The adapters' `transaction(setting)` route middleware: gives the request `req` its own
 * transaction setting, in every guard it passed (see `RequestLeases.useTransaction()`).
 * @param calledAs how the app called it, for the error message (`transaction`)
 * @throws CloseguardError `ERR_CLOSEGUARD_NO_REQUEST` when no guard let `req` in;
 * `ERR_CLOSEGUARD_TRANSACTION_BEGUN` when the request leased a connection already; CloseguardTypeError
 * `ERR_CLOSEGUARD_INVALID_OPTION` turning transactions on when the guard's pools cannot run them.
 */
export function useTransaction(req: NodeRequest, mode: TransactionMode, calledAs: string): void {
  const exchange = Exchange.of(req);
  if (exchange === undefined || exchange.guard === undefined) {
    throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `${calledAs}() ran on a request connectionClosing() did not let in (mount it before the routes that use it)`);
  }
  exchange.useTransaction(mode);
}
