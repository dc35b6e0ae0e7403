// What the load sends: normal requests, with the faults mixed in at a fixed share.

/** A fault the load injects; each one makes a hand-written app lose a connection (an ORM app, fewer). */
export type Fault = 'throw' | 'reject' | 'hangup-stream' | 'hangup-slow' | 'tx-abort' | 'hand-begin';

/** How the client ends a request: reads the whole answer, or hangs up. */
export type Hangup = 'none' | 'first-chunk' | 'after-delay';

export interface Step {
  method: 'GET' | 'POST';
  path: string;
  hangup: Hangup;
  /** undefined for a normal request. */
  fault: Fault | undefined;
}

export const FAULTS: Readonly<Record<Fault, { step: Omit<Step, 'fault'>; what: string }>> = {
  throw: { step: { method: 'GET', path: '/accounts/7?format=xml', hangup: 'none' }, what: 'handler throws after acquiring' },
  reject: { step: { method: 'GET', path: '/search?q=(', hangup: 'none' }, what: 'async rejection (the query fails)' },
  'hangup-stream': { step: { method: 'GET', path: '/export?rows=100000', hangup: 'first-chunk' }, what: 'client hangs up mid-stream (cursor)' },
  'hangup-slow': { step: { method: 'GET', path: '/report?seconds=0.3', hangup: 'after-delay' }, what: 'client hangs up during a slow query' },
  'tx-abort': { step: { method: 'POST', path: '/transfer?amount=0', hangup: 'none' }, what: 'aborted transaction (error inside BEGIN)' },
  'hand-begin': { step: { method: 'POST', path: '/transfer/by-hand?amount=0', hangup: 'none' }, what: 'BEGIN by hand outside try/finally, then a throw (ORM app)' },
};

/** The faults of the apps written by hand with a pool, in the order they come round. */
export const HAND_WRITTEN_FAULTS: readonly Fault[] = ['throw', 'reject', 'hangup-stream', 'hangup-slow', 'tx-abort'];
/**
 * The faults of the app written with an ORM: the two that still leak a connection there (a
 * transaction begun by hand, a stream on a client of the pool) first, then the others, which the
 * ORM's own checkouts survive.
 */
export const ORM_FAULTS: readonly Fault[] = ['hand-begin', 'hangup-stream', 'throw', 'reject', 'hangup-slow', 'tx-abort'];

const NORMAL: readonly Omit<Step, 'fault'>[] = [
  { method: 'GET', path: '/accounts/42', hangup: 'none' },
  { method: 'GET', path: '/search?q=^account-a', hangup: 'none' },
  { method: 'GET', path: '/export?rows=200', hangup: 'none' },
  { method: 'POST', path: '/transfer?amount=10', hangup: 'none' },
  { method: 'GET', path: '/report?seconds=0.01', hangup: 'none' },
];

/** One request in FAULT_EVERY is a fault: a share of 25 %. */
export const FAULT_EVERY = 4;

/**
 * The same sequence for every run of an app: request i is a fault when i % FAULT_EVERY is the
 * last slot, `faults` taken in turn.
 */
export function planRequests(count: number, faults: readonly Fault[] = HAND_WRITTEN_FAULTS): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < count; i++) {
    const slot = Math.floor(i / FAULT_EVERY);
    if (i % FAULT_EVERY === FAULT_EVERY - 1) {
      const fault = faults[slot % faults.length]!;
      steps.push({ ...FAULTS[fault].step, fault });
    } else {
      steps.push({ ...NORMAL[(i - slot) % NORMAL.length]!, fault: undefined });
    }
  }
  return steps;
}
