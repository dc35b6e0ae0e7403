// One run: one framework, one mode, the plan's load; then what the pool and PostgreSQL still hold.
import { exampleApps, requestsFor } from './apps/index.ts';
import type { AuditPool } from './apps/pools.ts';
import type { ExampleServer, Framework, Mode } from './apps/types.ts';
import type { Database } from './database.ts';
import { runLoad, type Outcome } from './load.ts';
import { planRequests } from './plan.ts';
import { peakOf, startSampler, type Sample } from './sampler.ts';
import { summarize, type Summary } from './summary.ts';

export interface RunSettings {
  requests: number;
  concurrency: number;
  poolMax: number;
  /** How long a request waits for a pool connection before the app answers an error. */
  acquireTimeoutMs: number;
}

export interface RunResult extends Summary {
  framework: Framework;
  mode: Mode;
  poolMax: number;
  /** Connections still borrowed from the pool once the run settled. */
  leaked: number;
  /** Backends PostgreSQL still holds for those connections. */
  backends: number;
  /** Of those backends, the ones idle inside a transaction (open, or aborted by an error). */
  idleInTransaction: number;
  peak: number;
  durationMs: number;
  samples: Sample[];
}

export interface RunOptions extends RunSettings {
  framework: Framework;
  mode: Mode;
  database: Database;
  onOutcome?: (outcome: Outcome) => void;
  signal?: AbortSignal;
  /** Keep the server and its pool running (for --serve); `kept` is set. */
  keep?: boolean;
}

/** After the load: the pool counts as settled at 0 borrowed, or once its count held still this long. */
const SETTLE_QUIET_MS = 600;
const SETTLE_MAX_MS = 3_000;
/** A backend leaves pg_stat_activity a moment after its client ended. */
const BACKENDS_WAIT_MS = 2_000;
const POLL_MS = 20;
let runCount = 0;

/** Runs the load against a fresh app and pool; the server is closed afterwards unless `keep`. */
export async function runOnce(options: RunOptions): Promise<{ result: RunResult; kept?: ExampleServer }> {
  const { framework, mode, database } = options;
  const applicationName = `closeguard-audit-${framework}-${mode}-${process.pid}-${++runCount}`;
  const app = exampleApps[framework];
  const { server, pool } = await app.start(mode, { url: database.url, applicationName, max: options.poolMax, acquireTimeoutMs: options.acquireTimeoutMs });
  try {
    const sampler = startSampler(() => pool.borrowed);
    const steps = planRequests(requestsFor(framework, options.requests), app.faults);
    const outcomes = await runLoad(steps, {
      port: server.port,
      concurrency: options.concurrency,
      ...(options.signal && { signal: options.signal }),
      onOutcome: (_step, outcome) => options.onOutcome?.(outcome),
    });
    await settle(pool);
    const samples = sampler.stop();
    const leaked = pool.borrowed;
    if (!options.keep) await server.close();
    const backends = await leakedBackends(database, applicationName, pool, leaked, options.keep === true);
    const idleInTransaction = backends > 0 ? await database.idleInTransaction(applicationName) : 0;
    const result: RunResult = {
      framework, mode, poolMax: options.poolMax, leaked, backends, idleInTransaction,
      peak: peakOf(samples),
      durationMs: samples.at(-1)?.ms ?? 0,
      samples,
      ...summarize(steps.slice(0, outcomes.length), outcomes),
    };
    if (options.keep) return { result, kept: { port: server.port, close: () => closeKept(server, pool) } };
    await release(database, applicationName, pool, leaked);
    return { result };
  } catch (error) {
    await server.close();
    await release(database, applicationName, pool, pool.borrowed);
    throw error;
  }
}

async function settle(pool: AuditPool): Promise<void> {
  const deadline = performance.now() + SETTLE_MAX_MS;
  let last = pool.borrowed;
  let since = performance.now();
  while (performance.now() < deadline) {
    if (pool.borrowed === 0 && pool.pending === 0) return;
    if (pool.borrowed !== last) {
      last = pool.borrowed;
      since = performance.now();
    } else if (performance.now() - since >= SETTLE_QUIET_MS) return;
    await delay(POLL_MS);
  }
}

/**
 * The backends held for borrowed connections: with the idle ones ended, all that is left. A kept
 * pool keeps its idle connections, so those are counted out instead.
 */
async function leakedBackends(database: Database, applicationName: string, pool: AuditPool, leaked: number, keep: boolean): Promise<number> {
  if (keep) return Math.max(0, (await database.backendsFor(applicationName)) - pool.idle);
  await pool.endIdle();
  const deadline = performance.now() + BACKENDS_WAIT_MS;
  for (;;) {
    const count = await database.backendsFor(applicationName);
    if (count <= leaked || performance.now() > deadline) return count;
    await delay(POLL_MS);
  }
}

/**
 * Gives back what the run holds: a pool with nothing borrowed drains; leaked connections cannot
 * be given back (nobody holds them), so their backends are ended from the server side.
 */
async function release(database: Database, applicationName: string, pool: AuditPool, leaked: number): Promise<void> {
  if (leaked > 0) {
    await database.terminate(applicationName);
    return;
  }
  await pool.end();
}

async function closeKept(server: ExampleServer, pool: AuditPool): Promise<void> {
  await server.close();
  await pool.end();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
