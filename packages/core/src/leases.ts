import { CloseguardError } from './errors.ts';
import { judge, type DestroyCause, type PoolEntry } from './release-policy.ts';
import type { RequestScope } from './types.ts';

/** Counters kept across requests, read by `stats()`. */
export class Ledger {
  leased = 0;
  released = 0;
  destroyed: Record<DestroyCause, number> = { unusable: 0, obsolete: 0, abandoned: 0 };
  abandonedWaits = 0;
  leaksReclaimed = 0;
}

/** What the leases of every request share: the pools, the policy settings, the counters. */
export interface LeaseContext {
  entry(alias: string): PoolEntry;
  readonly ledger: Ledger;
  readonly maxAgeMs: number;
  readonly graceMs: number;
  readonly healthCheck: boolean | ((resource: unknown) => boolean | PromiseLike<boolean>);
}

const HEALTH_CHECK_ATTEMPTS = 3;

/**
 * One request's connections: leased lazily on first use, the same one for the rest of the
 * request, given back exactly once by `end()` when the request is over.
 */
export class RequestLeases {
  readonly scope: RequestScope;
  readonly #context: LeaseContext;
  readonly #held = new Map<string, { entry: PoolEntry; lease: Promise<unknown> }>();
  #ended = false;

  constructor(scope: RequestScope, context: LeaseContext) {
    this.scope = scope;
    this.#context = context;
  }

  /** The request's connection for `alias`, leasing it on first use. */
  get(alias: string): Promise<unknown> {
    const held = this.#held.get(alias);
    if (held) return held.lease;
    if (this.#ended) return Promise.reject(new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', `connection('${alias}') was asked for after the request ended`));
    const entry = this.#context.entry(alias);
    const lease = this.#acquire(entry);
    // The rejection is the caller's to handle; end() must not see it as unhandled.
    lease.catch(() => undefined);
    this.#held.set(alias, { entry, lease });
    return lease;
  }

  /** Gives every connection back, by the release policy. Runs once, when the scope closes. */
  async end(): Promise<void> {
    this.#ended = true;
    await Promise.all([...this.#held.values()].map(({ entry, lease }) => this.#giveBack(entry, lease)));
  }

  async #giveBack(entry: PoolEntry, lease: Promise<unknown>): Promise<void> {
    let resource: unknown;
    try {
      resource = await lease;
    } catch {
      return; // never leased: the wait was abandoned or the acquire failed
    }
    const verdict = await judge(entry, resource, this.scope.closeReason, this.#context, this.scope);
    await giveBack(entry, resource, verdict.action === 'release' ? undefined : verdict.cause, this.#context.ledger, this.scope);
  }

  async #acquire(entry: PoolEntry): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      const resource = await acquireUnlessAborted(entry, this.scope, this.#context.ledger);
      this.#context.ledger.leased++;
      const reused = entry.remember(resource);
      if (!reused || this.#context.healthCheck === false || (await this.#healthy(entry, resource))) return resource;
      await giveBack(entry, resource, 'unusable', this.#context.ledger, this.scope);
      if (attempt >= HEALTH_CHECK_ATTEMPTS) {
        throw new CloseguardError('ERR_CLOSEGUARD_ACQUIRE_TIMEOUT', `${attempt} connections from pool '${entry.alias}' failed the health check`);
      }
    }
  }

  async #healthy(entry: PoolEntry, resource: unknown): Promise<boolean> {
    const check = typeof this.#context.healthCheck === 'function' ? this.#context.healthCheck : entry.policy.check?.bind(entry.policy);
    if (!check) return entry.policy.isUsable?.(resource) !== false;
    try {
      return (await check(resource)) === true;
    } catch {
      return false;
    }
  }
}

/** Acquires from the pool; if the request ends first, the wait is abandoned and a late connection goes straight back. */
function acquireUnlessAborted(entry: PoolEntry, scope: RequestScope, ledger: Ledger): Promise<unknown> {
  const { signal } = scope;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    let abandoned = false;
    const onAbort = (): void => {
      abandoned = true;
      ledger.abandonedWaits++;
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(entry.pool.acquire()).then(
      (resource) => {
        signal.removeEventListener('abort', onAbort);
        if (!abandoned) resolve(resource);
        else void giveBack(entry, resource, undefined, ledger, scope);
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Releases (cause undefined) or destroys a connection; a failure is reported, never thrown. */
export async function giveBack(entry: PoolEntry, resource: unknown, cause: DestroyCause | undefined, ledger: Ledger, scope: RequestScope): Promise<void> {
  try {
    if (cause === undefined) {
      ledger.released++;
      await entry.pool.release(resource);
      return;
    }
    ledger.destroyed[cause]++;
    // A connection given up on may still run a query server-side: stop it before destroying.
    if (cause === 'abandoned' && entry.policy.cancel) await entry.policy.cancel(resource);
    await entry.pool.destroy(resource);
  } catch (error) {
    scope.report(error, 'cleanup');
  }
}
