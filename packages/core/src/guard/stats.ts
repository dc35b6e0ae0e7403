import type { AdmissionStats } from './admission.ts';
import type { Ledger } from './leases.ts';
import type { PoolEntry } from './release-policy.ts';

/** One pool's figures, as the pool reports them (undefined when it does not). */
export interface PoolStats {
  max: number | undefined;
  size: number | undefined;
  available: number | undefined;
  borrowed: number | undefined;
  pending: number | undefined;
}

/** What `guard.stats()` returns. */
export interface GuardStats extends AdmissionStats {
  /** Connections handed to requests. */
  leased: number;
  /** Connections given back to their pool. */
  released: number;
  /** Connections destroyed: unusable (errored, aborted transaction, failed check), obsolete (maxAge), abandoned (still busy after a hang-up). */
  destroyed: { unusable: number; obsolete: number; abandoned: number };
  /** Requests that left while waiting for a connection. */
  abandonedWaits: number;
  /** Hand-acquired connections reclaimed at request end (`track()`). */
  leaksReclaimed: number;
  /**
   * Request transactions ended (the `transaction` option): one per connection a request began one
   * on, committed, or rolled back (also a failed COMMIT, and a connection destroyed with it open).
   */
  transactions: { committed: number; rolledBack: number };
  pools: Record<string, PoolStats>;
}

export function collectStats(admission: AdmissionStats, ledger: Ledger, entries: ReadonlyMap<string, PoolEntry>): GuardStats {
  const pools: Record<string, PoolStats> = {};
  for (const [alias, { pool }] of entries) {
    pools[alias] = { max: pool.max, size: pool.size, available: pool.available, borrowed: pool.borrowed, pending: pool.pending };
  }
  return {
    ...admission,
    leased: ledger.leased,
    released: ledger.released,
    destroyed: { ...ledger.destroyed },
    abandonedWaits: ledger.abandonedWaits,
    leaksReclaimed: ledger.leaksReclaimed,
    transactions: { ...ledger.transactions },
    pools,
  };
}
