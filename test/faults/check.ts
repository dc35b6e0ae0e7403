// The property: every drawn schedule keeps every promise (run-schedule.ts). fast-check draws the
// schedules from a seed and, on a failure, shrinks to a minimal one and prints the seed and path
// that replay it: the vitest file and `npm run faults` both run it through here.
import fc from 'fast-check';
import type { Framework } from './hosts.ts';
import { runSchedule, type ScheduleContext, type ScheduleReport } from './run-schedule.ts';
import { FAULT_KINDS, scheduleArbitrary, type FaultKind } from './schedule.ts';

/**
 * Fault kinds a known defect makes fail today, so `npm test` leaves them out (the script can still
 * draw them with `--kinds`); each says what fails and how to replay it.
 */
export const DISABLED_KINDS: ReadonlyMap<FaultKind, string> = new Map<FaultKind, string>([
  // None today. 'slow-cursor' was, until routes closed their cursors with @closeguard/pg's closeCursor():
  // pg-cursor's own close() never settles once the connection died.
]);

/** The kinds drawn by default: all but the disabled ones. */
export const DEFAULT_KINDS: readonly FaultKind[] = FAULT_KINDS.filter((kind) => !DISABLED_KINDS.has(kind));

export interface CheckOptions {
  runs: number;
  /** fast-check's seed (printed on failure); random when absent. */
  seed?: number;
  /** With `seed`: starts from the counterexample at this path (printed on failure) and shrinks on from it. */
  path?: string;
  kinds?: readonly FaultKind[];
  /** Bounds the whole property, shrinking included: past it, fast-check reports what it has. */
  timeLimitMs?: number;
  /** Shrink a failure to a minimal schedule (default true). */
  shrink?: boolean;
  /** Called after each schedule that passed, with what it went through. */
  onPass?: (report: ScheduleReport) => void;
}

/** Checks `options.runs` random schedules on `context.framework`; rejects with fast-check's report. */
export async function checkSchedules(context: ScheduleContext, options: CheckOptions): Promise<void> {
  const property = fc.asyncProperty(scheduleArbitrary(options.kinds ?? DEFAULT_KINDS), async (schedule) => {
    const report = await runSchedule(schedule, context); // not inside onPass?.(…): that would skip it without onPass
    options.onPass?.(report);
  });
  await fc.assert(property, {
    numRuns: options.runs,
    ...(options.seed !== undefined && { seed: options.seed }),
    ...(options.path !== undefined && { path: options.path }),
    ...(options.shrink === false && { endOnFailure: true }),
    ...(options.timeLimitMs !== undefined && { plugins: [fc.interruptAfterTimeLimit(options.timeLimitMs)] }),
  });
}

/** Parses `--kinds a,b` / FAULTS_KINDS: every name must be a fault kind. */
export function parseKinds(text: string): FaultKind[] {
  const kinds = text.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
  const unknown = kinds.filter((kind) => !(FAULT_KINDS as readonly string[]).includes(kind));
  if (unknown.length > 0) throw new TypeError(`unknown fault kind ${unknown.join(', ')}; known: ${FAULT_KINDS.join(', ')}`);
  return kinds as FaultKind[];
}

export type { Framework };
