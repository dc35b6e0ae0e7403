import type { PoolPolicy } from '@closeguard/core';
import type pg from 'pg';
import { cancelQuery } from './cancel.ts';
import { isBusy, stateOf, transactionStatus } from './client-state.ts';

/** How long a ROLLBACK or a health-check `SELECT 1` may take before the client is given up. */
export const RESET_TIMEOUT_MS = 5_000;

/**
 * What ConnectionClosingMiddleware needs to judge a pg client at request end: Django's
 * `close_if_unusable_or_obsolete` plus the busy check and a server-side cancel.
 */
export const pgPolicy: PoolPolicy<pg.Client> = {
  isUsable,
  isBusy,
  createdAt: (client) => stateOf(client)?.createdAt,
  reset(client) {
    const status = transactionStatus(client);
    // Synchronous when there is nothing to do: that is every request that closed its transaction.
    if (status !== 'transaction') return status !== 'failed';
    // The app left a transaction open: roll it back so the next request starts clean.
    return withTimeout(client.query('ROLLBACK'), 'ROLLBACK').then(() => transactionStatus(client) === 'idle');
  },
  async check(client) {
    if (!isUsable(client)) return false;
    await withTimeout(client.query('SELECT 1'), 'SELECT 1');
    return true;
  },
  cancel: cancelQuery,
  begin: (client) => client.query('BEGIN'),
  async commit(client) {
    // PostgreSQL answers COMMIT in a failed transaction with a ROLLBACK, and no error.
    if (transactionStatus(client) === 'failed') {
      await client.query('ROLLBACK');
      throw new Error('a statement failed inside the transaction, so PostgreSQL could only roll it back');
    }
    const { command } = await client.query('COMMIT');
    if (command !== 'COMMIT') throw new Error(`COMMIT ended in ${command}`);
  },
  async rollback(client) {
    // A connection that died ended its transaction with it (the server rolled it back).
    if (stateOf(client)?.broken === true || transactionStatus(client) === 'idle') return;
    await client.query('ROLLBACK');
  },
};

/** False once the client errored, its connection ended, or it sits in a failed transaction. */
export function isUsable(client: pg.Client): boolean {
  return stateOf(client)?.broken !== true && transactionStatus(client) !== 'failed';
}

async function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${RESET_TIMEOUT_MS} ms`)), RESET_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
