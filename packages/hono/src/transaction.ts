import type { Context, MiddlewareHandler, Next } from 'hono';
import type { TransactionOptions } from '@closeguard/core';
import { checkTransactionOption } from '@closeguard/core/host';
import { useTransaction } from '@closeguard/node';
import { bindingsOf } from './connection-closing.ts';

/**
 * Route middleware that gives a route its own request-transaction setting: `transaction(false)`
 * runs it outside a transaction where `connectionClosing({ transaction: true })` turned them on;
 * `transaction()` (or `transaction({ commitOn, commitAfterHangUp })`) runs it inside one where
 * they are off. Put it before anything in the route that calls `c.var.db()`.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` at once when `setting` is wrong. Its
 * requests fail (Hono's onError) with `ERR_CLOSEGUARD_TRANSACTION_BEGUN` when the request leased a
 * connection already, `ERR_CLOSEGUARD_NO_REQUEST` when `connectionClosing()` did not let it in.
 * @example
 * app.get('/report', transaction(false), async (c) => c.body(reportStream(await c.var.db())));
 */
export function transaction(setting: boolean | TransactionOptions = true): MiddlewareHandler {
  const mode = checkTransactionOption(setting, 'transaction(setting)')!;
  return (c: Context, next: Next): Promise<void> => {
    useTransaction(bindingsOf(c).incoming, mode, 'transaction');
    return next();
  };
}
