import type { RegisteredConnection } from '../contract/types.ts';
import { CloseguardError } from '../contract/errors.ts';
import { leasesFor } from './middleware.ts';
import { currentScope } from '../host/scope.ts';

/**
 * The current request's connection for a pool alias: leased on first use, the same one for the
 * rest of the request, given back by the request (never release it yourself).
 * @throws CloseguardError `ERR_CLOSEGUARD_NO_ASYNC_CONTEXT` when async context is off
 * (`asyncContext: true` turns it on), `ERR_CLOSEGUARD_NO_REQUEST` outside a guarded request,
 * `ERR_CLOSEGUARD_UNKNOWN_ALIAS` for an alias no pool has — synchronously.
 * @example
 * const client = await connection<pg.Client>();
 * const { rows } = await client.query('select now()');
 */
export function connection<T = RegisteredConnection>(alias = 'default'): Promise<T> {
  const scope = currentScope();
  const leases = scope && leasesFor(scope);
  if (!leases) throw new CloseguardError('ERR_CLOSEGUARD_NO_REQUEST', `connection('${alias}') was called outside a guarded request`);
  return leases.get<T>(alias);
}
