import { CloseguardError, CloseguardTypeError } from '../contract/errors.ts';
import { leasesFor } from './middleware.ts';
import { checkTransactionOption, type TransactionOptions } from './transaction-options.ts';
import type { GatewayMiddleware } from '../contract/types.ts';

/**
 * A gateway middleware that gives the requests of the app it wraps their own transaction setting,
 * as the adapters' `transaction()` does for a route: `false` runs them outside a request
 * transaction under a guard whose `transaction` option is on (a long report that streams, a
 * webhook that must keep what it wrote whatever it answers); `true` (or `{ commitOn,
 * commitAfterHangUp }`) runs them inside one under a guard where it is off. Wrap the app inside
 * the guard, before anything in it leases a connection.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` at once when `setting` is wrong; its
 * requests fail with `ERR_CLOSEGUARD_NO_REQUEST` when no guard let them in, and as
 * `useTransaction()` says when the pools cannot run transactions or a connection was leased already.
 * @example
 * http.createServer(requestListener(guard.wrap(route({ '/report': transaction(false)(reportApp), '/orders': ordersApp }))));
 */
export function transaction(setting: boolean | TransactionOptions = true): GatewayMiddleware {
  const mode = checkTransactionOption(setting, 'transaction(setting)')!;
  return (app) => {
    if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `transaction(setting)(app) takes a gateway app function; received ${typeof app}`);
    return (env, start) => {
      const leases = leasesFor(env.scope);
      if (leases === undefined) throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', 'transaction() served a request no guard let in (wrap the app in guard.wrap() around it)');
      leases.useTransaction(mode);
      return app(env, start);
    };
  };
}
