import { poolPolicy, type PoolPolicy, type PoolWithPolicy } from './pool.ts';
import type { CloseReason, RequestScope } from '../contract/types.ts';

/** Why a connection was destroyed instead of released. */
export type DestroyCause = 'unusable' | 'obsolete' | 'abandoned';

/** Where the release policy reports a failed rollback or give-back: the request's scope, or a pool's own logger outside requests. */
export type Reporter = Pick<RequestScope, 'report'>;

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

  /** Whether leases must remember connections: for the health check of reused ones, or for maxAge when the policy can't tell a connection's age. */
  remembers(settings: { maxAgeMs: number; healthCheck: unknown }): boolean {
    return settings.healthCheck !== false || (settings.maxAgeMs !== Infinity && this.policy.createdAt === undefined);
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
export function judge<R>(
  entry: PoolEntry<R>,
  resource: R,
  reason: CloseReason | undefined,
  settings: Settings,
  scope: Reporter,
): Verdict | Promise<Verdict> {
  const { policy } = entry;
  // The code using it did not finish in time (or shutdown stopped waiting for it): it may still be running a query.
  if (reason === 'timeout' || reason === 'shutdown') return ABANDONED;
  if (policy.isUsable?.(resource) === false) return UNUSABLE;
  if (policy.isBusy?.(resource)) return waitThenJudge(entry, resource, settings, scope);
  return judgeIdle(entry, resource, settings, scope);
}

/** Whether `judge()` decided at once (the common case: no promise, no extra turn of the loop). */
export function isVerdict(value: Verdict | Promise<Verdict>): value is Verdict {
  return !(value instanceof Promise);
}

type Settings = { maxAgeMs: number; graceMs: number };

const RELEASE: Verdict = Object.freeze({ action: 'release' });
const UNUSABLE: Verdict = Object.freeze({ action: 'destroy', cause: 'unusable' });
const OBSOLETE: Verdict = Object.freeze({ action: 'destroy', cause: 'obsolete' });
const ABANDONED: Verdict = Object.freeze({ action: 'destroy', cause: 'abandoned' });

async function waitThenJudge<R>(entry: PoolEntry<R>, resource: R, settings: Settings, scope: Reporter): Promise<Verdict> {
  if (!(await idleWithin(entry.policy, resource, settings.graceMs))) return ABANDONED;
  // A query that ended with the connection (a terminated backend) shows only once it is idle.
  if (entry.policy.isUsable?.(resource) === false) return UNUSABLE;
  return judgeIdle(entry, resource, settings, scope);
}

function judgeIdle<R>(entry: PoolEntry<R>, resource: R, settings: Settings, scope: Reporter): Verdict | Promise<Verdict> {
  const { maxAgeMs } = settings;
  if (maxAgeMs === 0 || (maxAgeMs !== Infinity && entry.ageMs(resource) >= maxAgeMs)) return OBSOLETE;
  if (!entry.policy.reset) return RELEASE;
  let reset: boolean | PromiseLike<boolean>;
  try {
    reset = entry.policy.reset(resource);
  } catch (error) {
    scope.report(error, 'cleanup');
    return UNUSABLE;
  }
  if (typeof reset === 'boolean') return reset ? RELEASE : UNUSABLE;
  return Promise.resolve(reset).then(
    (clean) => (clean ? RELEASE : UNUSABLE),
    (error: unknown) => {
      scope.report(error, 'cleanup');
      return UNUSABLE;
    },
  );
}

async function idleWithin<R>(policy: PoolPolicy<R>, resource: R, graceMs: number): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  while (policy.isBusy?.(resource)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_BUSY_MS));
  }
  return true;
}
