import type { Ledger } from './leases.ts';
import { giveBack } from './leases.ts';
import type { LeakReport } from './options.ts';
import { poolPolicy, type PoolLike, type PoolWithPolicy } from './pool.ts';
import { judge, PoolEntry } from './release-policy.ts';
import { activeScope } from '../host/scope.ts';
import { signals } from '../host/signals.ts';
import type { RequestScope } from '../contract/types.ts';

type Held = { scope: RequestScope; stack: string; at: number };

/**
 * A pool that remembers `acquire()` calls made inside a request; whatever is not released by the
 * end of that request is reclaimed (by the release policy) and reported as a leak.
 */
export function createTracker<P extends PoolLike>(pool: P, ledger: Ledger, onLeak: ((leak: LeakReport) => void) | undefined): P {
  const entry = new PoolEntry<unknown>('tracked', pool);
  const held = new Map<unknown, Held>();
  const watched = new WeakSet<RequestScope>();

  const reclaim = async (scope: RequestScope): Promise<void> => {
    for (const [resource, lease] of held) {
      if (lease.scope !== scope) continue;
      held.delete(resource);
      ledger.leaksReclaimed++;
      ledger.leased++; // the guard takes it over: its give-back below keeps leased − released − destroyed balanced
      const leak: LeakReport = { stack: lease.stack, route: scope.route, heldMs: Date.now() - lease.at, alias: entry.alias };
      signals.leak.publish({ scope, ...leak });
      try {
        onLeak?.(leak);
      } catch (error) {
        scope.report(error, 'hook');
      }
      const verdict = await judge(entry, resource, scope.closeReason, { maxAgeMs: Infinity, graceMs: 0 }, scope);
      await giveBack(entry, resource, verdict.action === 'release' ? undefined : verdict.cause, ledger, scope);
    }
  };

  const tracker: PoolLike = {
    async acquire() {
      const scope = activeScope();
      const stack = scope ? (new Error('acquired here').stack ?? '') : '';
      const resource = await pool.acquire();
      if (scope && !scope.closed) {
        held.set(resource, { scope, stack, at: Date.now() });
        if (!watched.has(scope)) {
          watched.add(scope);
          scope.defer(() => reclaim(scope));
        }
      }
      return resource;
    },
    release(resource) {
      held.delete(resource);
      return pool.release(resource);
    },
    destroy(resource) {
      held.delete(resource);
      return pool.destroy(resource);
    },
    drain: () => pool.drain?.() ?? Promise.resolve(),
    clear: () => pool.clear?.() ?? Promise.resolve(),
  };
  for (const name of ['max', 'size', 'available', 'borrowed', 'pending'] as const) {
    Object.defineProperty(tracker, name, { get: () => pool[name], enumerable: true });
  }
  Object.defineProperty(tracker, poolPolicy, { get: () => (pool as PoolWithPolicy<unknown>)[poolPolicy] });
  return tracker as P;
}
