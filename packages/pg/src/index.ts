export { createPool } from './create-pool.ts';
export { fromPgPool } from './from-pg-pool.ts';
export { pgPolicy } from './policy.ts';
export { cancelQuery } from './cancel.ts';
