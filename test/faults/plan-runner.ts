// A request's handler, as its plan says: the same work on every framework, which each host wraps in
// its own idiom (hosts.ts). It counts what ran, so the schedule knows when every handler settled.
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { createCursorProbe, ndjsonCursor } from '@closeguard/conformance';
import type { RequestPlan, Step } from './schedule.ts';

/** An error a plan raises on purpose. */
export class FaultError extends Error {
  constructor(what: string) {
    super(`${what} on purpose`);
    this.name = 'FaultError';
  }
}

/** What a handler answers with; the host sends it the framework's way. */
export type Reply = { kind: 'json'; value: unknown } | { kind: 'stream'; stream: Readable };

/** What a host gives a handler: its framework's `db()` sugar, and the raw response's 'close'. */
export interface HandlerIo {
  db(): Promise<pg.Client>;
  onResponseClose(listener: () => void): void;
}

/** The content type of a cursor reply. */
export const NDJSON = 'application/x-ndjson';

/** What the schedule watches of its handlers; gates hold stuck handlers until it opens them. */
export class HandlerBook {
  entered = 0;
  settled = 0;
  lateStarted = 0;
  lateSettled = 0;
  /** The cursors of 'cursor' endings: opened, closed. */
  readonly cursors = createCursorProbe();
  readonly #gates: Array<() => void> = [];
  #open = false;

  /** A promise that resolves when `openGates()` is called (at once if it was). */
  gate(): Promise<void> {
    if (this.#open) return Promise.resolve();
    return new Promise((resolve) => this.#gates.push(resolve));
  }

  /** Opens every gate, now and from now on. */
  openGates(): void {
    this.#open = true;
    this.releaseGates();
  }

  /** Opens the gates handlers wait at now; later ones wait again (the soak unsticks its handlers in turns). */
  releaseGates(): void {
    for (const open of this.#gates.splice(0)) open();
  }

  describe(): string {
    const { entered, settled, lateStarted, lateSettled, cursors } = this;
    return `handlers ${settled}/${entered} settled, late leases ${lateSettled}/${lateStarted}, cursors ${cursors.closed}/${cursors.opened} closed`;
  }

  get busy(): boolean {
    return this.entered !== this.settled || this.lateStarted !== this.lateSettled || this.cursors.opened !== this.cursors.closed;
  }
}

/**
 * Runs `plan` as a route handler would. Throws synchronously when the plan throws on entry (so the
 * host's handler throws synchronously too); otherwise returns the handler's promise.
 */
export function runPlan(plan: RequestPlan, io: HandlerIo, book: HandlerBook): Promise<Reply> {
  book.entered++;
  if (plan.throwOnEntry) {
    book.settled++;
    throw new FaultError('throw on entry');
  }
  if (plan.late) io.onResponseClose(() => void leaseLate(io, book));
  return runSteps(plan, io, book).finally(() => void book.settled++);
}

async function runSteps(plan: RequestPlan, io: HandlerIo, book: HandlerBook): Promise<Reply> {
  for (const step of plan.steps) await runStep(step, io);
  switch (plan.ending.kind) {
    case 'json':
      return { kind: 'json', value: { ok: true } };
    case 'cursor':
      // 100 rows a read, each read sleeping batchSleepMs in PostgreSQL; the cursor opens on the first
      // read (a stream destroyed before it opens none) and closes with closeCursor() in its finally.
      return { kind: 'stream', stream: ndjsonCursor(await io.db(), plan.ending.rows, book.cursors, { batchSleep: plan.ending.batchSleepMs }) };
    case 'stuck': {
      await book.gate();
      // Long past abortGrace: a connection it leased was destroyed, and using it now must fail alone.
      if (plan.steps.length > 0) await (await io.db()).query('SELECT 1');
      return { kind: 'json', value: { ok: 'late' } };
    }
  }
}

async function runStep(step: Step, io: HandlerIo): Promise<void> {
  switch (step.kind) {
    case 'lease':
      await io.db();
      return;
    case 'query':
      await (await io.db()).query('SELECT 1');
      return;
    case 'sleep':
      await (await io.db()).query('SELECT pg_sleep($1)', [step.ms / 1000]);
      return;
    case 'transaction-open': {
      const client = await io.db();
      await client.query('BEGIN');
      await client.query('SELECT 1');
      return;
    }
    case 'transaction-failed': {
      const client = await io.db();
      await client.query('BEGIN');
      await client.query('SELECT 1/0').catch(() => undefined);
      return;
    }
    case 'terminate':
      await (await io.db()).query('SELECT pg_terminate_backend(pg_backend_pid())');
      return;
    case 'reject':
      throw new FaultError('reject');
  }
}

/** A lease after the response closed, from a task nobody awaits: whatever it gets, it must not leak. */
async function leaseLate(io: HandlerIo, book: HandlerBook): Promise<void> {
  book.lateStarted++;
  try {
    await (await io.db()).query('SELECT 1');
  } catch {
    // Refused (the request is over) or failed: either is fine; a lease that is never given back is not.
  } finally {
    book.lateSettled++;
  }
}
