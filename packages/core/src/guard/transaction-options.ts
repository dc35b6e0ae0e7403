import { describe } from '../contract/checks.ts';
import { CloseguardTypeError } from '../contract/errors.ts';
import type { PoolEntry } from './release-policy.ts';

/** How a request transaction ends (the `transaction` option, and the adapters' `transaction()`). */
export interface TransactionOptions {
  /** Whether a response with this status commits. Default: 2xx and 3xx commit; 4xx and 5xx roll back. */
  commitOn?: (status: number) => boolean;
  /**
   * Commit all the same when the client hung up before its response went out, if the handler
   * finished and its status commits. Default false: a request whose client left is rolled back.
   */
  commitAfterHangUp?: boolean;
}

/** A request transaction's settings, defaults filled in. */
export interface TransactionSettings {
  readonly commitOn: (status: number) => boolean;
  readonly commitAfterHangUp: boolean;
}

/** A request's transaction setting: its settings, or false (none). */
export type TransactionMode = TransactionSettings | false;

/** The default: 2xx and 3xx commit. */
export function commitsOnSuccess(status: number): boolean {
  return status >= 200 && status < 400;
}

const DEFAULT_TRANSACTION: TransactionSettings = Object.freeze({ commitOn: commitsOnSuccess, commitAfterHangUp: false });
const OPTION_NAMES = new Set(['commitOn', 'commitAfterHangUp']);

/**
 * Checks a `transaction` setting (`true`, `false`, or `{ commitOn, commitAfterHangUp }`) and fills
 * in its defaults; undefined stays undefined.
 * @param name how the caller names it in the message: 'option transaction', 'transaction(setting)'
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` naming what is wrong.
 */
export function checkTransactionOption(value: unknown, name: string): TransactionMode | undefined {
  if (value === undefined) return undefined;
  if (value === false) return false;
  if (value === true) return DEFAULT_TRANSACTION;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${name} must be a boolean or { commitOn, commitAfterHangUp }; received ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!OPTION_NAMES.has(key)) throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${name} has no setting ${key} (it takes commitOn and commitAfterHangUp)`);
  }
  const { commitOn, commitAfterHangUp } = value as TransactionOptions;
  if (commitOn !== undefined && typeof commitOn !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${name}.commitOn must be a function (status) => boolean; received ${describe(commitOn)}`);
  }
  if (commitAfterHangUp !== undefined && typeof commitAfterHangUp !== 'boolean') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${name}.commitAfterHangUp must be a boolean; received ${describe(commitAfterHangUp)}`);
  }
  return Object.freeze({ commitOn: commitOn ?? commitsOnSuccess, commitAfterHangUp: commitAfterHangUp ?? false });
}

/**
 * Why the guard's pools cannot run request transactions, or undefined when they can: each pool's
 * policy must begin, commit and roll back, and a pool that hands out connections by itself must
 * also join its checkouts to the request's transaction.
 */
export function transactionsUnsupported(entries: ReadonlyMap<string, PoolEntry>, checkoutAliases: ReadonlySet<string>): string | undefined {
  for (const [alias, { policy }] of entries) {
    if (!policy.begin || !policy.commit || !policy.rollback) {
      return `pool '${alias}' has no policy that begins, commits and rolls back a transaction (@closeguard/pg's createPool, fromPgPool and GuardedPool have one; another pool needs begin, commit and rollback under poolPolicy)`;
    }
    if (checkoutAliases.has(alias) && !policy.join) {
      return `pool '${alias}' hands out connections by itself but its policy cannot join them to the request's transaction (it needs join under poolPolicy)`;
    }
  }
  return undefined;
}
