// @closeguard/fastify: the Fastify 5 plugin (request.db()) and gateway mounting, on the @closeguard/node bridge.
import type { ConnectionClosingMiddleware, RegisteredConnection } from '@closeguard/core';
import type { CloseguardRouteConfig } from './transaction.ts';

export { connectionClosing } from './connection-closing.ts';
export { gateway } from './gateway.ts';

export type { ConnectionClosingPluginOptions } from './connection-closing.ts';
export type { GatewayPluginOptions } from './gateway.ts';
export type { CloseguardRouteConfig } from './transaction.ts';
export type { GatewayOptions } from '@closeguard/node';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * This request's connection for a pool alias (default 'default'): leased on first use, the
     * same one for the rest of the request, given back when the request is over — never release it.
     * With @closeguard/pg it is a `pg.Client`.
     * @throws CloseguardError `ERR_CLOSEGUARD_NO_REQUEST` on a request `connectionClosing` did not
     * admit, `ERR_CLOSEGUARD_UNKNOWN_ALIAS` for an alias no pool has — synchronously.
     */
    db<T = RegisteredConnection>(alias?: string): Promise<T>;
  }
  interface FastifyContextConfig {
    /**
     * closeguard's settings for this route: `transaction`, its own request-transaction setting —
     * `false` runs it outside one where `connectionClosing` turned them on, `true` (or `{ commitOn,
     * commitAfterHangUp }`) inside one where they are off.
     */
    closeguard?: CloseguardRouteConfig;
  }
  interface FastifyInstance {
    /** The guard `connectionClosing` installed: `stats()`, `track(pool)`; closed by `fastify.close()`. */
    closeguard: ConnectionClosingMiddleware;
  }
}
