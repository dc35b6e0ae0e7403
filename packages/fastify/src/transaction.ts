import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import { CloseguardTypeError, type TransactionOptions } from '@closeguard/core';
import { checkTransactionOption, type TransactionMode } from '@closeguard/core/host';
import { useTransaction } from '@closeguard/node';

/** What a route's `config.closeguard` holds. */
export interface CloseguardRouteConfig {
  /** The route's own request-transaction setting: `false` (outside one), `true` or `{ commitOn, commitAfterHangUp }` (inside one). */
  transaction?: boolean | TransactionOptions;
}

const WHERE = "the route's config.closeguard.transaction";

/**
 * A route's own request-transaction setting, in Fastify's idiom: `config: { closeguard: {
 * transaction: false } }` (or `true`, or `{ commitOn, commitAfterHangUp }`). The plugin's onRoute
 * hook checks it once per route — a wrong one fails the route's registration — and gives such a
 * route an onRequest hook of its own, first among its route-level ones, that sets it; routes
 * without it pay nothing.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` naming what is wrong.
 */
export function routeTransaction(routeOptions: RouteOptions): void {
  const mode = modeOf((routeOptions.config as { closeguard?: unknown } | undefined)?.closeguard);
  if (mode === undefined) return;
  const setTransaction = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    try {
      useTransaction(request.raw, mode, WHERE);
    } catch (error) {
      done(error as Error); // Fastify's error path: ERR_CLOSEGUARD_TRANSACTION_BEGUN, a 500
      return;
    }
    done();
  };
  const own = routeOptions.onRequest;
  routeOptions.onRequest = [setTransaction, ...(own === undefined ? [] : [own].flat())];
}

function modeOf(closeguard: unknown): TransactionMode | undefined {
  if (closeguard === undefined) return undefined;
  if (typeof closeguard !== 'object' || closeguard === null) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `the route's config.closeguard must be an object ({ transaction }); received ${closeguard === null ? 'null' : typeof closeguard}`);
  }
  for (const key of Object.keys(closeguard)) {
    if (key !== 'transaction') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `the route's config.closeguard has no setting ${key} (it takes transaction)`);
  }
  return checkTransactionOption((closeguard as CloseguardRouteConfig).transaction, WHERE);
}
