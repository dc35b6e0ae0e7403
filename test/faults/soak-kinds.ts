// The soak's requests: nine in ten plain (a lease and a query), one in ten a fault (by default),
// each fault kind in turn. The server runs the plan (plan-runner.ts); the load client behaves as `client` says.
import type { RequestPlan } from './schedule.ts';

/** What the soak's client does with a request (undici, keep-alive). */
export interface LoadBehaviour {
  /** Aborts the request (undici destroys its socket) this long after sending it. */
  abortAfterMs?: number;
  /** Aborts after the first chunk of the body (mid-stream). */
  abortAfterFirstChunk?: boolean;
  /** Waits this long after each chunk of the body (a slow reader). */
  chunkDelayMs?: number;
}

export interface SoakKind {
  name: string;
  /** The handler's plan (its `startMs` and `client` are unused here). */
  plan: RequestPlan;
  client: LoadBehaviour;
}

/** The soak's abortGrace: short, so abandoned connections are destroyed quickly under load. */
export const SOAK_ABORT_GRACE_MS = 50;

function plan(fields: Partial<RequestPlan>): RequestPlan {
  return { startMs: 0, throwOnEntry: false, steps: [], ending: { kind: 'json' }, late: false, client: {}, ...fields };
}

export const PLAIN: SoakKind = { name: 'plain', plan: plan({ steps: [{ kind: 'query' }] }), client: {} };

/** Ten fault kinds, one request in a hundred each. */
export const FAULTS: readonly SoakKind[] = [
  { name: 'reject after a query', plan: plan({ steps: [{ kind: 'query' }, { kind: 'reject' }] }), client: {} },
  { name: 'throw on entry', plan: plan({ throwOnEntry: true }), client: {} },
  { name: 'terminate own backend', plan: plan({ steps: [{ kind: 'terminate' }] }), client: {} },
  { name: 'transaction left open', plan: plan({ steps: [{ kind: 'transaction-open' }] }), client: {} },
  { name: 'aborted transaction', plan: plan({ steps: [{ kind: 'transaction-failed' }] }), client: {} },
  { name: 'hang-up during pg_sleep', plan: plan({ steps: [{ kind: 'sleep', ms: 100 }] }), client: { abortAfterMs: 5 } },
  { name: 'hang-up mid-cursor', plan: plan({ ending: { kind: 'cursor', rows: 2_000, batchSleepMs: 0 } }), client: { abortAfterFirstChunk: true } },
  { name: 'slow reader of a cursor', plan: plan({ ending: { kind: 'cursor', rows: 300, batchSleepMs: 0 } }), client: { chunkDelayMs: 2 } },
  { name: 'late lease', plan: plan({ steps: [{ kind: 'query' }], late: true }), client: {} },
  { name: 'stuck handler, hang-up', plan: plan({ steps: [{ kind: 'lease' }], ending: { kind: 'stuck' } }), client: { abortAfterMs: 5 } },
];

/** The kinds by id: 0 is plain, 1… the faults. */
export const SOAK_KINDS: readonly SoakKind[] = [PLAIN, ...FAULTS];

/** Request `n`'s kind id: `100 - percent` in 100 plain, then the faults in turn (10 %: each once). */
export function kindOf(n: number, percent: number): number {
  const slot = n % 100;
  return slot < 100 - percent ? 0 : ((slot - (100 - percent)) % FAULTS.length) + 1;
}
