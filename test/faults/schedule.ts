// What a fault schedule is: overlapping requests, each a plan for its handler and a behaviour for
// its client, against one pool. The arbitraries draw them for fast-check; everything here is plain
// data, so a counterexample prints as it is and replays from its seed.
import fc from 'fast-check';

/** One thing a handler does, in order. Every database step leases on first use (`req.db()`). */
export type Step =
  | { kind: 'lease' }
  | { kind: 'query' }
  /** `SELECT pg_sleep(ms / 1000)`: a query in flight, past abortGrace when long. */
  | { kind: 'sleep'; ms: number }
  /** `BEGIN` and a statement, left open. */
  | { kind: 'transaction-open' }
  /** `BEGIN` and a failing statement (caught): an aborted transaction left behind. */
  | { kind: 'transaction-failed' }
  /** `SELECT pg_terminate_backend(pg_backend_pid())`: the backend dies under the request; its error propagates. */
  | { kind: 'terminate' }
  /** Throws inside the async handler: a rejected promise, before or after leasing. */
  | { kind: 'reject' };

/** How the handler ends once its steps ran. */
export type Ending =
  | { kind: 'json' }
  /**
   * Streams `rows` NDJSON rows of a pg-cursor through the framework's response; with `batchSleepMs`,
   * each read of 100 rows takes that long in PostgreSQL (a slow cursor, still reading past abortGrace).
   */
  | { kind: 'cursor'; rows: number; batchSleepMs: number }
  /** Never settles until the schedule is over (long past abortGrace); its client always hangs up. */
  | { kind: 'stuck' };

/** What the client does with its socket. */
export interface ClientBehaviour {
  /**
   * Destroys the socket this long after sending the request, or after this many response bytes;
   * with a TCP reset (`resetAndDestroy()`) rather than a FIN when `reset`.
   */
  hangUp?: ({ afterMs: number } | { afterBytes: number }) & { reset: boolean };
  /** Pauses reading after the first bytes for this long (a slow reader), then reads on. */
  pauseMs?: number;
}

/** One request of a schedule. */
export interface RequestPlan {
  /** Delay from the schedule's start to sending this request, so requests overlap at random. */
  startMs: number;
  /** Throws synchronously as the handler is entered (before any lease). */
  throwOnEntry: boolean;
  steps: Step[];
  ending: Ending;
  /** After the response closed, leases and queries again from a detached task (a late lease). */
  late: boolean;
  client: ClientBehaviour;
}

/** A schedule: the pool's size and options, and the overlapping requests. */
export interface Schedule {
  max: number;
  healthCheck: boolean;
  requests: RequestPlan[];
}

/** The fault kinds a schedule may draw; a kind left out is never drawn (see `FAULT_KINDS`). */
export type FaultKind =
  | 'sleep'
  | 'transaction-open'
  | 'transaction-failed'
  | 'terminate'
  | 'reject'
  | 'throw-on-entry'
  | 'cursor'
  | 'slow-cursor'
  | 'stuck'
  | 'late-lease'
  | 'hang-up'
  | 'slow-reader';

export const FAULT_KINDS: readonly FaultKind[] = [
  'sleep', 'transaction-open', 'transaction-failed', 'terminate', 'reject', 'throw-on-entry',
  'cursor', 'slow-cursor', 'stuck', 'late-lease', 'hang-up', 'slow-reader',
];

/** Bounds that keep one schedule short: milliseconds, rows, requests. */
export const LIMITS = {
  requests: 8,
  steps: 4,
  startMs: 150,
  sleepMs: 400,
  hangUpMs: 500,
  /** Past the NDJSON rows of a short cursor (≈ 120 bytes a row), so a hang-up can land mid-stream. */
  hangUpBytes: 40_000,
  pauseMs: 300,
  cursorRows: 3_000,
  /** A slow cursor sleeps once a read of 100: at most 5 reads. */
  slowCursorRows: 500,
  max: 3,
} as const;

/** The arbitrary of schedules drawing only the `kinds` given. */
export function scheduleArbitrary(kinds: readonly FaultKind[] = FAULT_KINDS): fc.Arbitrary<Schedule> {
  const has = (kind: FaultKind): boolean => kinds.includes(kind);
  // Plain work is drawn more often than each fault, so a request gets past its first step.
  const steps: fc.WeightedArbitrary<Step>[] = [
    { weight: 4, arbitrary: fc.constant<Step>({ kind: 'lease' }) },
    { weight: 4, arbitrary: fc.constant<Step>({ kind: 'query' }) },
  ];
  if (has('sleep')) steps.push({ weight: 2, arbitrary: fc.integer({ min: 0, max: LIMITS.sleepMs }).map((ms): Step => ({ kind: 'sleep', ms })) });
  for (const kind of ['transaction-open', 'transaction-failed', 'terminate', 'reject'] as const) {
    if (has(kind)) steps.push({ weight: 1, arbitrary: fc.constant<Step>({ kind }) });
  }
  const endings: fc.Arbitrary<Ending>[] = [fc.constant<Ending>({ kind: 'json' })];
  const rows = fc.integer({ min: 1, max: LIMITS.cursorRows });
  if (has('cursor')) endings.push(rows.map((count): Ending => ({ kind: 'cursor', rows: count, batchSleepMs: 0 })));
  if (has('slow-cursor')) {
    const fewRows = fc.integer({ min: 1, max: LIMITS.slowCursorRows });
    endings.push(fc.record({ rows: fewRows, batchSleepMs: fc.integer({ min: 1, max: LIMITS.sleepMs }) }).map(({ rows: count, batchSleepMs }): Ending => ({ kind: 'cursor', rows: count, batchSleepMs })));
  }
  if (has('stuck')) endings.push(fc.constant<Ending>({ kind: 'stuck' }));

  // Most requests are over within a few milliseconds: half the timed hang-ups land there.
  const hangUpMs = fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: LIMITS.hangUpMs }));
  const hangUp: fc.Arbitrary<ClientBehaviour['hangUp']> = fc.oneof(
    fc.record({ afterMs: hangUpMs, reset: fc.boolean() }),
    fc.record({ afterBytes: fc.integer({ min: 0, max: LIMITS.hangUpBytes }), reset: fc.boolean() }),
  );
  const client = fc.record(
    {
      ...(has('hang-up') && { hangUp }),
      ...(has('slow-reader') && { pauseMs: fc.integer({ min: 1, max: LIMITS.pauseMs }) }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<ClientBehaviour>;

  const request = fc
    .record({
      startMs: fc.integer({ min: 0, max: LIMITS.startMs }),
      throwOnEntry: has('throw-on-entry') ? fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) : fc.constant(false),
      steps: fc.array(fc.oneof(...steps), { maxLength: LIMITS.steps }),
      ending: fc.oneof(...endings),
      late: has('late-lease') ? fc.boolean() : fc.constant(false),
      client,
      stuckHangUpMs: hangUpMs,
    })
    .map(({ stuckHangUpMs, ...plan }): RequestPlan => {
      // A stuck handler never answers: only a hang-up in time ends its request.
      if (plan.ending.kind !== 'stuck' || (plan.client.hangUp !== undefined && 'afterMs' in plan.client.hangUp)) return plan;
      return { ...plan, client: { ...plan.client, hangUp: { afterMs: stuckHangUpMs, reset: false } } };
    });

  return fc.record({
    max: fc.integer({ min: 1, max: LIMITS.max }),
    healthCheck: fc.boolean(),
    requests: fc.array(request, { minLength: 1, maxLength: LIMITS.requests }),
  });
}

/** What the client that reads the whole answer must get, from the plan alone. */
export type Expected =
  | { kind: 'ok'; body: 'json' | { rows: number } }
  | { kind: 'error' }
  /** A cursor opened in an aborted transaction fails as the stream starts: headers may be out. */
  | { kind: 'any' };

/** The answer a plan earns when its client reads it all, by walking its steps as PostgreSQL would. */
export function expectedAnswer(plan: RequestPlan): Expected {
  if (plan.throwOnEntry) return { kind: 'error' };
  let transaction: 'none' | 'open' | 'failed' = 'none';
  for (const step of plan.steps) {
    switch (step.kind) {
      case 'lease':
        break;
      case 'reject':
      case 'terminate':
        return { kind: 'error' };
      case 'transaction-open':
      case 'transaction-failed':
      case 'query':
      case 'sleep':
        // Every statement fails in an aborted transaction (BEGIN too).
        if (transaction === 'failed') return { kind: 'error' };
        if (step.kind === 'transaction-open') transaction = 'open';
        if (step.kind === 'transaction-failed') transaction = 'failed';
        break;
    }
  }
  if (plan.ending.kind === 'cursor') return transaction === 'failed' ? { kind: 'any' } : { kind: 'ok', body: { rows: plan.ending.rows } };
  return { kind: 'ok', body: 'json' };
}
