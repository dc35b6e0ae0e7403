// @closeguard/express: Express 5 middleware (req.db()) and gateway mounting, on the @closeguard/node bridge.
import type { RegisteredConnection } from '@closeguard/core';

export { connectionClosing } from './connection-closing.ts';
export { gateway } from './gateway.ts';
export { transaction } from './transaction.ts';

export type { ConnectionClosingHandler, ExpressConnectionClosingOptions, ExpressHostOptions } from './connection-closing.ts';
export type { GatewayOptions } from '@closeguard/node';
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express declares its request type in this global namespace
  namespace Express {
    interface Request {
      /**
       * The request's connection for a pool alias (default 'default'): leased on first use, the
       * same one for the rest of the request, given back by the request — never release it.
       * Typed as `RegisteredConnection` (`pg.Client` with @closeguard/pg).
       * @throws CloseguardError `ERR_CLOSEGUARD_NO_REQUEST` when connectionClosing() did not admit
       * this request, `ERR_CLOSEGUARD_UNKNOWN_ALIAS` for an alias no pool has — synchronously.
       */
      db<T = RegisteredConnection>(alias?: string): Promise<T>;
    }
  }
}
