// The guard's hot path, step by step (see hot-path.ts): wall-clock ns per request on a pinned core,
// and instructions per request under `valgrind --tool=callgrind` — repeatable whatever else the
// machine runs. Instructions per request are the difference between a long and a short run, so
// start-up and warm-up cancel out. valgrind runs at the lowest priority, so it can share a core
// with a benchmark without disturbing it; BENCH_TIMED_RUNS=0 skips the timings (which cannot),
// BENCH_COUNT_REPEATS=0 the instruction counts.
// `npx tsx bench/middleware/count.ts`; BENCH_NODE picks node, BENCH_STEPS the steps; hot-path.ts's
// HOT_PATH_* variables pass through (HOT_PATH_REAL=1 BENCH_STEPS=plain,hosted: a framework route on pg).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nodeVersion } from '../lib/machine.ts';
import { buildPackages, DIST_ENV, NODE, ROOT, runJson } from '../lib/spawn.ts';
import { startDatabase } from './postgres.ts';
import { median } from '../lib/stats.ts';

const ALL_STEPS = ['bare', 'listener', 'weakmap', 'defer', 'opened', 'guarded', 'async', 'plain', 'hosted']; // as in hot-path.ts
// BENCH_STEPS=bare,guarded counts only those (the first is the baseline).
const STEPS = process.env.BENCH_STEPS?.split(',') ?? ALL_STEPS;
const SCRIPT = 'bench/middleware/hot-path.ts';
const CORE = Number(process.env.BENCH_CORE ?? 1);
const TIMED_ITERATIONS = 300_000;
const TIMED_RUNS = Number(process.env.BENCH_TIMED_RUNS ?? 5);
// Under valgrind: the same warm-up for both runs, then SHORT or LONG measured iterations; the
// difference is taken REPEATS times (garbage collections and JIT tier-ups land unevenly).
const WARMUP = 10_000;
const SHORT = 10_000;
const LONG = 60_000;
const REPEATS = Number(process.env.BENCH_COUNT_REPEATS ?? 3);

// BENCH_COUNT_MAIN=1: the main thread's instructions only (V8's compiler and GC helper threads,
// which run on their own schedule, left out: steadier when two variants differ by little).
const MAIN_ONLY = process.env.BENCH_COUNT_MAIN === '1';

/** Instructions node executes for `iterations` requests of `step` (after the fixed warm-up). */
async function instructions(step: string, iterations: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'closeguard-count-'));
  const output = MAIN_ONLY ? ['--separate-threads=yes', `--callgrind-out-file=${join(dir, 'callgrind.out')}`] : ['--callgrind-out-file=/dev/null'];
  const args = ['-n', '19', 'valgrind', '--tool=callgrind', ...output, NODE, '--import', 'tsx', SCRIPT, step, String(iterations), String(WARMUP)];
  buildPackages();
  const { stderr } = await promisify(execFile)('nice', args, { cwd: ROOT, env: DIST_ENV, maxBuffer: 64 * 1024 * 1024 });
  const mainFile = MAIN_ONLY ? readdirSync(dir).find((name) => /-0*1$/.test(name)) : undefined;
  const main = mainFile === undefined ? undefined : /^totals: (\d+)/m.exec(readFileSync(join(dir, mainFile), 'utf8'))?.[1];
  rmSync(dir, { recursive: true, force: true });
  const collected = MAIN_ONLY ? main : /Collected : (\d+)/.exec(stderr)?.[1];
  if (collected === undefined) throw new Error(`valgrind printed no instruction count:\n${stderr.slice(-2000)}`);
  return Number(collected);
}

async function nsPerRequest(step: string): Promise<number> {
  const runs: number[] = [];
  if (TIMED_RUNS === 0) return Number.NaN;
  for (let i = 0; i < TIMED_RUNS; i++) {
    runs.push((await runJson<{ nsPerRequest: number }>(CORE, SCRIPT, [step, String(TIMED_ITERATIONS)])).nsPerRequest);
  }
  return median(runs);
}

// hot-path.ts on @closeguard/pg's pool needs a PostgreSQL: a throwaway one unless DATABASE_URL names one.
const usesPg = process.env.HOT_PATH_REAL === '1' || process.env.HOT_PATH_PG === '1';
const database = usesPg ? await startDatabase(0) : undefined;
if (database) (DIST_ENV as NodeJS.ProcessEnv).DATABASE_URL = database.url;
console.log(`${nodeVersion(NODE)}: per request, median of ${TIMED_RUNS} runs of ${TIMED_ITERATIONS} on core ${CORE}; instructions = median of ${REPEATS} × (I(${LONG}) − I(${SHORT})) / ${LONG - SHORT}\n`);
console.log('| step | ns/request | + ns vs bare | instructions/request | + instructions vs bare |');
console.log('| --- | --- | --- | --- | --- |');
let bare: { ns: number; ir: number } | undefined;
for (const step of STEPS) {
  const ns = await nsPerRequest(step);
  const differences: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const [short, long] = await Promise.all([instructions(step, SHORT), instructions(step, LONG)]);
    differences.push((long - short) / (LONG - SHORT));
  }
  const ir = median(differences); // NaN when REPEATS is 0
  bare ??= { ns, ir };
  console.log(`| ${step} | ${ns.toFixed(0)} | ${(ns - bare.ns).toFixed(0)} | ${ir.toFixed(0)} | ${(ir - bare.ir).toFixed(0)} |`);
}
await database?.stop();
