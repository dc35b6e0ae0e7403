// Scores the interleaved runs round by round against the bare run of the same round, and
// formats the tables.
import { bootstrapMedianInterval, median } from '../lib/stats.ts';

export const HOSTS = ['node', 'express', 'fastify', 'koa', 'hono'] as const;
/** The server under test: the node host (gateway app) or a framework's own route. */
export type Host = (typeof HOSTS)[number];
/**
 * bare: hand-written acquire … finally release; guarded: ConnectionClosingMiddleware (the
 * framework's `connectionClosing()` and `db()`); async: + AsyncLocalStorage and `connection()`;
 * fastify-postgres: @fastify/postgres's `fastify.pg.connect()` … `release()`; floor (side-by-side.ts
 * only): the bare route plus what any middleware that follows a request to its end pays in that
 * framework, with nothing of closeguard (the same hooks, listener and tracing subscription, empty);
 * untraced (Express, side-by-side.ts only): the floor without router's tracing subscription, that
 * is one more `app.use` layer and a `'close'` listener, the least any end-following middleware costs;
 * hold (frameworks, side-by-side.ts only): the bare route giving its connection back on the
 * response's `'close'` instead of before answering, as the guarantee holds it.
 */
export type Kind = 'bare' | 'guarded' | 'async' | 'fastify-postgres' | 'floor' | 'untraced' | 'hold';
export type Variant = `${Host}/${Kind}`;

/** The variants measured for a host, the bare one first. */
export function variantsOf(host: Host, workload: Workload): Variant[] {
  const kinds: Kind[] = ['bare', 'guarded'];
  if (host === 'node') kinds.push('async');
  if (host === 'fastify' && needsDatabase(workload)) kinds.push('fastify-postgres');
  return kinds.map((kind) => `${host}/${kind}` as const);
}

export const hostOf = (variant: Variant): Host => variant.split('/')[0] as Host;
export const kindOf = (variant: Variant): Kind => variant.split('/')[1] as Kind;
const bareOf = (variant: Variant): Variant => `${hostOf(variant)}/bare`;

export const WORKLOADS = ['memory', 'pg', 'pg-pool', 'drizzle'] as const;
/**
 * memory: an in-process generic-pool of plain objects; pg: `SELECT 1` on PostgreSQL through
 * @closeguard/pg's `createPool()`; pg-pool: the same on a `pg.Pool` through `fromPgPool()` (the
 * pool @fastify/postgres uses, so that Fastify guarded ÷ fastify-postgres compares the guard alone);
 * drizzle: Drizzle's `SELECT 1` on a plain pg.Pool (bare) or on a GuardedPool behind the guard
 * (guarded), frameworks only: what the guarded pool costs an ORM route.
 */
export type Workload = (typeof WORKLOADS)[number];

/** Whether the workload runs on PostgreSQL. */
export const needsDatabase = (workload: Workload): boolean => workload !== 'memory';

/** One load phase of a run, as wrk and /proc saw it. */
export interface Phase {
  requests: number;
  seconds: number;
  serverCpuSeconds: number;
  p99Us: number;
  /** Share of the server's core other processes used meanwhile (0–1). */
  intrusion: number;
}

export interface Run {
  workload: Workload;
  variant: Variant;
  round: number;
  /** Fixed offered rate, below saturation: the primary figure, server CPU per request. */
  fixed: Phase;
  /** As fast as the server goes: requests per second. */
  saturated: Phase;
}

/** A median with its 95 % bootstrap interval. */
export type Estimate = { median: number; low: number; high: number };

export interface Summary {
  workload: Workload;
  variant: Variant;
  rounds: number;
  usPerRequest: number;
  offeredRps: number;
  p99Us: number;
  saturatedRps: number;
  /** bare µs ÷ this variant's µs per request, per round: the throughput one core would reach (≥ 0.97 is the goal). */
  cpuRatio: Estimate;
  /** This variant's µs − bare µs of server CPU per request, per round. */
  addedUs: Estimate;
  /** This variant's saturated req/s ÷ bare's, per round. */
  rpsRatio: Estimate;
}

export const usPerRequest = (phase: Phase): number => (phase.serverCpuSeconds * 1e6) / phase.requests;
export const rps = (phase: Phase): number => phase.requests / phase.seconds;

function estimate(values: number[]): Estimate {
  const [low, high] = bootstrapMedianInterval(values);
  return { median: median(values), low, high };
}

/** One summary per workload and variant; each variant is paired with the bare run of its round. */
export function summarize(runs: readonly Run[]): Summary[] {
  const variants = [...new Set(runs.map((run) => run.variant))];
  return WORKLOADS.flatMap((workload) =>
    variants.flatMap((variant) => {
      const own = runs.filter((run) => run.workload === workload && run.variant === variant);
      if (own.length === 0) return [];
      const pairs = own.flatMap((run) => {
        const bare = runs.find((other) => other.workload === workload && other.variant === bareOf(variant) && other.round === run.round);
        return bare ? [{ run, bare }] : [];
      });
      return [{
        workload,
        variant,
        rounds: own.length,
        usPerRequest: median(own.map((run) => usPerRequest(run.fixed))),
        offeredRps: median(own.map((run) => rps(run.fixed))),
        p99Us: median(own.map((run) => run.fixed.p99Us)),
        saturatedRps: median(own.map((run) => rps(run.saturated))),
        cpuRatio: estimate(pairs.map(({ run, bare }) => usPerRequest(bare.fixed) / usPerRequest(run.fixed))),
        addedUs: estimate(pairs.map(({ run, bare }) => usPerRequest(run.fixed) - usPerRequest(bare.fixed))),
        rpsRatio: estimate(pairs.map(({ run, bare }) => rps(run.saturated) / rps(bare.saturated))),
      }];
    }),
  );
}

const fixed = (digits: number) => (e: Estimate): string =>
  `${e.median.toFixed(digits)} [${e.low.toFixed(digits)}, ${e.high.toFixed(digits)}]`;

/** The summaries as two markdown tables: ratios against bare, then absolute figures. */
export function formatTables(node: string, summaries: readonly Summary[]): string {
  const scored = summaries.filter((s) => kindOf(s.variant) !== 'bare');
  const ratios = scored.map(
    (s) => `| ${node} | ${s.workload} | ${s.variant} ÷ ${bareOf(s.variant)} | ${s.rounds} | ${fixed(3)(s.cpuRatio)} | ${fixed(2)(s.addedUs)} | ${fixed(3)(s.rpsRatio)} |`,
  );
  const absolute = summaries.map(
    (s) =>
      `| ${node} | ${s.workload} | ${s.variant} | ${s.offeredRps.toFixed(0)} | ${s.usPerRequest.toFixed(2)} | ` +
      `${(s.p99Us / 1000).toFixed(2)} | ${s.saturatedRps.toFixed(0)} |`,
  );
  return [
    '| node | pool | ratio | rounds | CPU ratio (bare µs ÷ µs) [95 % CI] | added server CPU µs/request [95 % CI] | saturated req/s ratio [95 % CI] |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...ratios,
    '',
    '| node | pool | variant | fixed rate, req/s | server CPU µs/request | p99 ms at fixed rate | saturated req/s |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...absolute,
  ].join('\n');
}
