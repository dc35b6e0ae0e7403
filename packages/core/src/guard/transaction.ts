import { CloseguardError } from '../contract/errors.ts';
import type { PoolEntry, Reporter } from './release-policy.ts';
import type { TransactionSettings } from './transaction-options.ts';
import type { CloseReason } from '../contract/types.ts';

/** Request transactions ended, for `stats()`: one per connection a request began one on. */
export interface TransactionCounts {
  committed: number;
  rolledBack: number;
}

/** One connection whose transaction is open. */
interface Open {
  readonly entry: PoolEntry;
  readonly resource: unknown;
}

/**
 * One request's transaction: `BEGIN` on each connection it leases, then one decision, taken once —
 * by `settle()` where the host knows the response's status before anything of it went out, else
 * at the request's end (`finish()`), where an undecided transaction is rolled back.
 *
 * A connection still running a query when `settle()` decides (a cursor that feeds the response's
 * body) cannot take a `COMMIT` before the body is read: it is ended by `finish()`, with the
 * decision, once the body is done — committed only if the response then went out in full.
 */
export class RequestTransaction {
  settings: TransactionSettings;
  readonly #counts: TransactionCounts;
  readonly #scope: Reporter;
  #open: Open[] = [];
  /** Undefined until decided; then whether it commits. */
  #commit: boolean | undefined;
  #finished = false;

  constructor(settings: TransactionSettings, counts: TransactionCounts, scope: Reporter) {
    this.settings = settings;
    this.#counts = counts;
    this.#scope = scope;
  }

  /** Whether the decision was taken: a connection leased from now on runs outside the transaction. */
  get decided(): boolean {
    return this.#commit !== undefined;
  }

  /** Opens the transaction on a connection just leased; rejects as `BEGIN` did. */
  begin(entry: PoolEntry, resource: unknown): Promise<void> {
    return Promise.resolve(entry.policy.begin!(resource)).then(() => {
      // Ended while BEGIN ran (nobody awaited the lease): the release policy rolls it back.
      if (this.#finished) this.#counts.rolledBack++;
      else this.#open.push({ entry, resource });
    });
  }

  /**
   * The response's status is known, nothing of it went out: commits when nothing failed, the
   * status commits and the client is still there (or `commitAfterHangUp`), else rolls back. Once.
   * @returns undefined when nothing is to be done now; else a promise that settles once it is
   * done, rejecting with `ERR_CLOSEGUARD_COMMIT_FAILED` when a COMMIT failed (all was rolled back).
   */
  settle(status: number, failed: boolean, aborted: boolean): Promise<void> | undefined {
    if (this.#commit !== undefined) return undefined;
    this.#commit = !failed && (!aborted || this.settings.commitAfterHangUp) && this.#commitsOn(status);
    // A connection a query still runs on (a cursor the body streams) is ended by finish().
    const now = this.#open.filter(({ entry, resource }) => entry.policy.isBusy?.(resource) !== true);
    if (now.length === 0) return undefined;
    this.#open = this.#open.filter((open) => !now.includes(open));
    return this.#commit ? this.#commitAll(now) : this.#rollbackAll(now);
  }

  /**
   * The request is over: ends what is still open — committed if `settle()` decided so and the
   * response went out in full (or the client left, with `commitAfterHangUp`), else rolled back;
   * connections given up on (timeout, shutdown) are destroyed, which ends theirs. Never rejects.
   */
  finish(reason: CloseReason | undefined): Promise<void> | undefined {
    this.#finished = true;
    const open = this.#open;
    this.#open = [];
    if (open.length === 0) return undefined;
    if (reason === 'timeout' || reason === 'shutdown') {
      this.#counts.rolledBack += open.length; // the release policy destroys them: the database rolls back
      return undefined;
    }
    const complete = reason === 'complete' || (reason === 'aborted' && this.settings.commitAfterHangUp);
    if (this.#commit !== true || !complete) return this.#rollbackAll(open);
    return this.#commitAll(open).catch((error: unknown) => this.#scope.report(error, 'cleanup'));
  }

  #commitsOn(status: number): boolean {
    try {
      return this.settings.commitOn(status) === true;
    } catch (error) {
      this.#scope.report(error, 'hook');
      return false;
    }
  }

  /** Commits one connection after the other; at the first failure, rolls back the rest and rejects. */
  async #commitAll(list: readonly Open[]): Promise<void> {
    for (let i = 0; i < list.length; i++) {
      const { entry, resource } = list[i]!;
      try {
        await entry.policy.commit!(resource);
        this.#counts.committed++;
      } catch (error) {
        this.#counts.rolledBack++;
        this.#commit = false; // those still busy are rolled back by finish()
        await this.#rollbackAll(list.slice(i + 1));
        const what = error instanceof Error ? error.message : String(error);
        throw new CloseguardError('ERR_CLOSEGUARD_COMMIT_FAILED', `the request's COMMIT failed (${what})`, { cause: error });
      }
    }
  }

  /** Rolls back each connection; a failure is reported (the release policy then destroys it). Never rejects. */
  async #rollbackAll(list: readonly Open[]): Promise<void> {
    await Promise.all(list.map(async ({ entry, resource }) => {
      try {
        await entry.policy.rollback!(resource);
      } catch (error) {
        this.#scope.report(error, 'cleanup');
      }
      this.#counts.rolledBack++;
    }));
  }
}
