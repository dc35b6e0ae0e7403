export { createPool } from './create-pool.ts';
export { fromPgPool } from './from-pg-pool.ts';
export { GuardedPool } from './guarded-pool.ts';
export { pgPolicy } from './policy.ts';
export { cancelQuery } from './cancel.ts';
export { closeCursor } from './close-cursor.ts';
export type { ClosableCursor } from './close-cursor.ts';
export type { GuardedPoolOptions } from './guarded-pool.ts';

import type pg from 'pg';

declare module '@closeguard/core' {
  /** With @closeguard/pg, `connection()` and the adapters' `db()` return a `pg.Client`. */
  interface Register {
    connection: pg.Client;
  }
}
