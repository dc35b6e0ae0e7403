import type { RegisteredConnection } from '@closeguard/core';

export { connectionClosing } from './connection-closing.ts';
export { gateway } from './gateway.ts';
export { transaction } from './transaction.ts';

export type { ConnectionClosing, KoaAdapterOptions } from './connection-closing.ts';
export type { GatewayOptions } from './gateway.ts';

declare module 'koa' {
  interface DefaultContext {
    /**
     * The request's connection for a pool alias (default `'default'`), leased on first use and the
     * same one for the rest of the request; `connectionClosing()` gives it back — never release it
     * yourself. Typed as `pg.Client` with `@closeguard/pg` (see `Register` in `@closeguard/core`).
     * @throws CloseguardError `ERR_CLOSEGUARD_NO_REQUEST` (synchronously) when `connectionClosing()`
     * did not admit this request, `ERR_CLOSEGUARD_UNKNOWN_ALIAS` for an alias no pool has.
     * @example
     * const { rows } = await (await ctx.db()).query('SELECT 1 AS one');
     */
    db<T = RegisteredConnection>(alias?: string): Promise<T>;
  }
}
