import { poolPolicy, type PoolPolicy, type PoolWithPolicy } from './pool.ts';
import type { CloseReason, RequestScope } from './types.ts';

/** Why a connection was destroyed instead of released. */
export type DestroyCause = 'unusable' | 'obsolete' | 'abandoned';

/** What the release policy decided for one connection. */
export type Verdict = { action: 'release' } | { action: 'destroy'; cause: DestroyCause };

/** One pool under its alias, with what the middleware remembers of its connections. */
export class PoolEntry<R = unknown> {
  readonly alias: string;
  readonly pool: PoolWithPolicy<R>;
  readonly policy: PoolPolicy<R>;
  /** When each connection was first handed out, for maxAge when the policy can't tell. */
  readonly #firstSeen = new WeakMap<object, number>();

  constructor(alias: string, pool: PoolWithPolicy<R>) {
    this.alias = alias;
    this.pool = pool;
    this.policy = pool[poolPolicy] ?? {};
  }

  /** Remembers a connection; true when the pool handed it out before (it is reused). */
  remember(resource: R): boolean {
    if (typeof resource !== 'object' || resource === null) return false;
    if (this.#firstSeen.has(resource)) return true;
    this.#firstSeen.set(resource, Date.now());
    return false;
  }

  ageMs(resource: R): number {
    const created = this.policy.createdAt?.(resource) ??
      (typeof resource === 'object' && resource !== null ? this.#firstSeen.get(resource) : undefined);
    return created === undefined ? 0 : Date.now() - created;
  }
}

const POLL_BUSY_MS = 5;

/**
 * Django's `close_if_unusable_or_obsolete`, plus what it lacks: decides, at request end, whether a
 * connection goes back to the pool or is destroyed. A connection still running a query is waited
 * for at most `graceMs`, then destroyed (never released under a running query).
 */
export async function judge<R>(
  entry: PoolEntry<R>,
  resource: R,
  reason: CloseReason | undefined,
  settings: { maxAgeMs: number; graceMs: number },
  scope: RequestScope,
): Promise<Verdict> {
  const { policy } = entry;
  // The code using it did not finish in time: it may still be running a query.
  if (reason === 'timeout') return { action: 'destroy', cause: 'abandoned' };
  if (policy.isUsable?.(resource) === false) return { action: 'destroy', cause: 'unusable' };
  if (policy.isBusy?.(resource) && !(await idleWithin(policy, resource, settings.graceMs))) {
    return { action: 'destroy', cause: 'abandoned' };
  }
  // A query that ended with the connection (a terminated backend) shows only once it is idle.
  if (policy.isUsable?.(resource) === false) return { action: 'destroy', cause: 'unusable' };
  if (settings.maxAgeMs === 0 || entry.ageMs(resource) >= settings.maxAgeMs) return { action: 'destroy', cause: 'obsolete' };
  if (policy.reset) {
    try {
      if (!(await policy.reset(resource))) return { action: 'destroy', cause: 'unusable' };
    } catch (error) {
      scope.report(error, 'cleanup');
      return { action: 'destroy', cause: 'unusable' };
    }
  }
  return { action: 'release' };
}

async function idleWithin<R>(policy: PoolPolicy<R>, resource: R, graceMs: number): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  while (policy.isBusy?.(resource)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_BUSY_MS));
  }
  return true;
}
