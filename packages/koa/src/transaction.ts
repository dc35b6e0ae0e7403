import type { Context, Middleware, Next } from 'koa';
import type { TransactionOptions } from '@closeguard/core';
import { checkTransactionOption } from '@closeguard/core/host';
import { useTransaction } from '@closeguard/node';

/**
 * Route middleware that gives a route its own request-transaction setting: `transaction(false)`
 * runs it outside a transaction where `connectionClosing({ transaction: true })` turned them on;
 * `transaction()` (or `transaction({ commitOn, commitAfterHangUp })`) runs it inside one where
 * they are off. Put it before anything in the route that calls `ctx.db()`.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` at once when `setting` is wrong. Its
 * requests fail (Koa's error path) with `ERR_CLOSEGUARD_TRANSACTION_BEGUN` when the request leased
 * a connection already, `ERR_CLOSEGUARD_NO_REQUEST` when `connectionClosing()` did not let it in.
 * @example
 * router.get('/report', transaction(false), async (ctx) => { ctx.body = reportStream(await ctx.db()) });
 */
export function transaction(setting: boolean | TransactionOptions = true): Middleware {
  const mode = checkTransactionOption(setting, 'transaction(setting)')!;
  return (ctx: Context, next: Next): Promise<void> => {
    useTransaction(ctx.req, mode, 'transaction');
    return next();
  };
}
