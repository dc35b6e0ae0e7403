// One fault schedule, end to end: a fresh pool, guard and server; the requests sent at once (each
// after its own start delay) on real sockets; then every promise checked. Plain TypeScript, no test
// runner: the vitest property and the 10,000-schedule script share it.
import { ConnectionClosingMiddleware, signals, type GuardStats, type RequestFinishedMessage, type RequestScope, type RequestStartedMessage } from '@closeguard/core';
import { createPool } from '@closeguard/pg';
import { waitUntil } from '@closeguard/conformance';
import type { Backends } from './backends.ts';
import { rowsIn, send, type ClientOutcome } from './client.ts';
import { serve, type Framework, type Served } from './hosts.ts';
import { HandlerBook, runPlan } from './plan-runner.ts';
import { expectedAnswer, LIMITS, type Schedule } from './schedule.ts';

/** Short, so a hang-up past it destroys the busy connection within the schedule. */
export const ABORT_GRACE_MS = 200;
/** Long past any schedule's work: a request that waits this long for a place is a finding. */
const QUEUE_TIMEOUT_MS = 15_000;
/** How long the books may take to balance once the requests ended: generous, a loaded machine is slow, not wrong. */
const SETTLE_TIMEOUT_MS = 10_000;
const SAMPLE_INTERVAL_MS = 20;

export interface ScheduleContext {
  framework: Framework;
  databaseUrl: string;
  backends: Backends;
}

/** A schedule broke a promise; the message lists each broken one. */
export class ScheduleViolation extends Error {
  constructor(framework: Framework, violations: readonly string[]) {
    super(`${framework}: ${violations.length} broken promise(s)\n  - ${violations.join('\n  - ')}`);
    this.name = 'ScheduleViolation';
  }
}

/** What a schedule that kept every promise went through: its guard's figures and its clients' ends. */
export interface ScheduleReport {
  stats: GuardStats;
  hungUp: number;
  /** Answers read to the end, by status. */
  statuses: Record<number, number>;
}

let schedules = 0;

/**
 * Runs `schedule` on `context.framework` and checks, once its requests ended: every started request
 * finished exactly once, nothing borrowed, no busy backend and none beyond the idle clients, peak
 * backends within max (plus those being torn down), no unhandled rejection, each request answered
 * as its plan earns, and the server still serving.
 * @throws ScheduleViolation listing what broke.
 */
export async function runSchedule(schedule: Schedule, context: ScheduleContext): Promise<ScheduleReport> {
  const name = `closeguard-faults-${context.framework}-${process.pid}-${++schedules}`;
  const pool = createPool({ connectionString: context.databaseUrl, application_name: name }, { max: schedule.max });
  const guard = new ConnectionClosingMiddleware({
    pool,
    abortGrace: ABORT_GRACE_MS,
    healthCheck: schedule.healthCheck,
    queueTimeout: QUEUE_TIMEOUT_MS,
    queueLimit: LIMITS.requests * 2,
  });
  const book = new HandlerBook();
  const lifecycle = watchLifecycle();
  const peak = sampleBackends(context.backends, name);
  const violations: string[] = [];
  const report: ScheduleReport = { stats: guard.stats(), hungUp: 0, statuses: {} };
  let served: Served | undefined;
  try {
    served = await serve(context.framework, guard, (id, io) => runPlan(schedule.requests[id]!, io, book));
    const port = served.port;
    const outcomes = await Promise.all(
      schedule.requests.map(async (plan, id) => {
        await new Promise((resolve) => setTimeout(resolve, plan.startMs));
        return send(port, `/fault?id=${id}`, plan.client);
      }),
    );
    // A stuck handler holds its request until abortGrace after its hang-up: then it must be over.
    if (!(await waitUntil(() => lifecycle.unfinished().length === 0, SETTLE_TIMEOUT_MS))) {
      violations.push(`requests never finished (requestFinished missing): ${lifecycle.unfinished().join(', ')}`);
    }
    book.openGates();
    if (!(await waitUntil(() => !book.busy, SETTLE_TIMEOUT_MS))) {
      violations.push(`handlers never settled: ${book.describe()}`);
    }
    checkAnswers(schedule, outcomes, violations);
    for (const { hungUp, status } of outcomes) {
      if (hungUp) report.hungUp++;
      else if (status !== undefined) report.statuses[status] = (report.statuses[status] ?? 0) + 1;
    }
    await checkBooks(guard, pool, context.backends, name, violations);
    const { peak: backendsPeak } = await peak.stop();
    const destroyed = Object.values(guard.stats().destroyed).reduce((sum, count) => sum + count, 0);
    if (backendsPeak > schedule.max + destroyed) violations.push(`${backendsPeak} backends at once, max ${schedule.max} (+ ${destroyed} destroyed)`);
    violations.push(...lifecycle.finishedTwice(), ...lifecycle.escaped());
    report.stats = guard.stats();
    await checkStillServing(port, violations);
  } finally {
    book.openGates();
    await peak.stop();
    lifecycle.stop();
    if (!(await settlesWithin(teardown(served, pool), SETTLE_TIMEOUT_MS))) violations.push(`the server or the pool did not close within ${SETTLE_TIMEOUT_MS} ms`);
  }
  if (!(await waitUntil(async () => (await context.backends.count(name)).total === 0, SETTLE_TIMEOUT_MS))) {
    violations.push(`backends left after pool.clear(): ${(await context.backends.count(name)).total} (a client lost outside the pool)`);
  }
  if (violations.length > 0) throw new ScheduleViolation(context.framework, violations);
  return report;
}

/** Each request whose client read it all got what its plan earns. */
function checkAnswers(schedule: Schedule, outcomes: readonly ClientOutcome[], violations: string[]): void {
  outcomes.forEach((outcome, id) => {
    const plan = schedule.requests[id]!;
    if (outcome.timedOut) {
      violations.push(`request ${id}: no answer and no close at all`);
      return;
    }
    if (outcome.hungUp || plan.ending.kind === 'stuck') return;
    const expected = expectedAnswer(plan);
    const seen = `status ${outcome.status}, ${outcome.complete ? 'complete' : 'cut'}`;
    if (expected.kind === 'error' && !(outcome.status === 500 && outcome.complete)) violations.push(`request ${id}: expected a complete 500, got ${seen}`);
    if (expected.kind !== 'ok') return;
    if (!(outcome.status === 200 && outcome.complete)) {
      violations.push(`request ${id}: expected a complete 200, got ${seen}`);
    } else if (expected.body === 'json') {
      if (outcome.body !== '{"ok":true}') violations.push(`request ${id}: expected {"ok":true}, got ${outcome.body.slice(0, 80)}`);
    } else {
      const rows = rowsIn(outcome.body);
      if (rows.length !== expected.body.rows || rows.some((g, index) => g !== index + 1)) violations.push(`request ${id}: expected rows 1..${expected.body.rows}, got ${rows.length} rows`);
    }
  });
}

/** Nothing borrowed, no busy backend, no backend beyond the idle clients, no request left inside. */
async function checkBooks(guard: ConnectionClosingMiddleware, pool: ReturnType<typeof createPool>, backends: Backends, name: string, violations: string[]): Promise<void> {
  let counts = await backends.count(name);
  const balanced = await waitUntil(async () => {
    counts = await backends.count(name);
    const { inFlight, queued } = guard.stats();
    return pool.borrowed === 0 && counts.busy === 0 && counts.total <= pool.available && inFlight === 0 && queued === 0;
  }, SETTLE_TIMEOUT_MS);
  if (balanced) return;
  const { inFlight, queued, leased, released, destroyed } = guard.stats();
  violations.push(
    `books do not balance: pool borrowed ${pool.borrowed} available ${pool.available} size ${pool.size}; ` +
      `backends ${counts.total} (busy ${counts.busy}); guard inFlight ${inFlight} queued ${queued} leased ${leased} released ${released} destroyed ${JSON.stringify(destroyed)}`,
  );
}

/** A plain request still works, with and without the database. */
async function checkStillServing(port: number, violations: string[]): Promise<void> {
  for (const [path, body] of [['/alive', 'alive'], ['/one', '1']] as const) {
    const { status, body: text, complete } = await send(port, path);
    if (status !== 200 || !complete || text !== body) violations.push(`GET ${path} after the schedule: status ${status}, body ${JSON.stringify(text.slice(0, 80))}`);
  }
}

/** Records the requests this schedule started and finished, and what escaped as unhandled. */
function watchLifecycle(): { unfinished(): string[]; finishedTwice(): string[]; escaped(): string[]; stop(): void } {
  const started = new Map<RequestScope, string>();
  const finishes = new Map<RequestScope, RequestFinishedMessage[]>();
  const escaped: unknown[] = [];
  const onStart = ({ scope, url }: RequestStartedMessage): void => void started.set(scope, url);
  const onFinish = (message: RequestFinishedMessage): void => {
    const list = finishes.get(message.scope);
    if (list) list.push(message);
    else finishes.set(message.scope, [message]);
  };
  const onEscaped = (error: unknown): void => void escaped.push(error);
  signals.requestStarted.subscribe(onStart);
  signals.requestFinished.subscribe(onFinish);
  process.on('unhandledRejection', onEscaped);
  return {
    unfinished: () => [...started].filter(([scope]) => !finishes.has(scope)).map(([, url]) => url),
    finishedTwice: () => [...finishes].filter(([, list]) => list.length > 1).map(([scope, list]) => `${started.get(scope) ?? scope.url}: requestFinished ${list.length} times (${list.map((m) => m.reason).join(', ')})`),
    escaped: () => escaped.map((error) => `unhandled rejection: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
    stop() {
      signals.requestStarted.unsubscribe(onStart);
      signals.requestFinished.unsubscribe(onFinish);
      process.off('unhandledRejection', onEscaped);
    },
  };
}

/** Samples how many backends `name` holds until stopped; `stop()` resolves with the peak (idempotent). */
function sampleBackends(backends: Backends, name: string): { stop(): Promise<{ peak: number }> } {
  let peak = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      peak = Math.max(peak, (await backends.count(name).catch(() => ({ total: 0 }))).total);
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { peak };
    },
  };
}

async function teardown(served: Served | undefined, pool: ReturnType<typeof createPool>): Promise<void> {
  await served?.close();
  await pool.drain();
  await pool.clear();
}

/** Whether `promise` settles within `ms` (its outcome is not the question: that it ends is). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
