// `npm run soak -- [--framework express|fastify|koa] [--requests 1000000] [--faults 10] [--concurrency 16] [--max 10] [--time-limit 1800]`
// A long run, not a test: `--requests` requests (1M by default, `--faults` % of them faults, 10 by default, soak-kinds.ts)
// against one framework's guarded route on PostgreSQL (DATABASE_URL, or one of its own), load
// only to 127.0.0.1 from a child process. Samples the server's heap and PostgreSQL's backends, and
// prints the figures at the end; exits 1 if a promise broke (a leak, a request not finished once,
// an unhandled rejection, something still borrowed).
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { ConnectionClosingMiddleware, signals, type RequestFinishedMessage, type RequestScope, type RequestStartedMessage } from '@closeguard/core';
import { createPool } from '@closeguard/pg';
import { launchPostgres, waitUntil, type LaunchedPostgres } from '@closeguard/conformance';
import { Backends } from './backends.ts';
import { FRAMEWORKS, serve, type Framework } from './hosts.ts';
import { HandlerBook, runPlan } from './plan-runner.ts';
import { SOAK_ABORT_GRACE_MS, SOAK_KINDS } from './soak-kinds.ts';
import type { LoadCounts, LoadMessage, LoadOptions } from './soak-load.ts';

const USAGE = 'usage: npm run soak -- [--framework express|fastify|koa] [--requests N] [--faults PERCENT] [--concurrency C] [--max M] [--time-limit SECONDS]';
const SAMPLE_INTERVAL_MS = 1_000;
const PRINT_EVERY_SAMPLES = 10;
const SETTLE_TIMEOUT_MS = 15_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    framework: { type: 'string', default: 'express' },
    requests: { type: 'string', default: '1000000' },
    faults: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    max: { type: 'string', default: '10' },
    'time-limit': { type: 'string', default: '1800' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!(FRAMEWORKS as readonly string[]).includes(values.framework)) fail(`--framework must be one of ${FRAMEWORKS.join(', ')}`);
const framework = values.framework as Framework;
const requests = positiveInteger('requests', values.requests);
const concurrency = positiveInteger('concurrency', values.concurrency);
const faultPercent = Number(values.faults);
if (!Number.isInteger(faultPercent) || faultPercent < 0 || faultPercent > 100) fail(`--faults must be an integer percent (0 to 100), got ${values.faults}`);
const max = positiveInteger('max', values.max);
const timeLimitMs = positiveInteger('time-limit', values['time-limit']) * 1000;

let postgres: LaunchedPostgres | undefined;
if (process.env.DATABASE_URL === undefined) {
  postgres = await launchPostgres(ROOT);
  process.env.DATABASE_URL = postgres.url;
}
const databaseUrl = process.env.DATABASE_URL;
const backends = await Backends.connect(databaseUrl);
const name = `closeguard-soak-${framework}-${process.pid}`;
const pool = createPool({ connectionString: databaseUrl, application_name: name }, { max });
const guard = new ConnectionClosingMiddleware({ pool, abortGrace: SOAK_ABORT_GRACE_MS });
const book = new HandlerBook();
const lifecycle = watchLifecycle();
const served = await serve(framework, guard, (id, io) => runPlan(SOAK_KINDS[id]!.plan, io, book));

collectGarbage();
const heap = { start: process.memoryUsage().heapUsed, peak: 0, end: 0 };
let backendsPeak = 0;
let counts: LoadCounts | undefined;
let samples = 0;
console.log(`soak: ${framework}, ${requests} requests (${faultPercent} % faults), concurrency ${concurrency}, pool max ${max}, abortGrace ${SOAK_ABORT_GRACE_MS} ms, time limit ${timeLimitMs / 1000} s`);

const started = performance.now();
const sampler = setInterval(() => void sample(), SAMPLE_INTERVAL_MS);
const loadOptions: LoadOptions = { port: served.port, requests, concurrency, faultPercent, timeLimitMs };
const load = fork(fileURLToPath(new URL('./soak-load.ts', import.meta.url)), [JSON.stringify(loadOptions)], { execArgv: ['--import', 'tsx'], cwd: ROOT });
const timedOut = await new Promise<boolean>((resolve, reject) => {
  load.on('message', (message: LoadMessage) => {
    counts = message.counts;
    if (message.type === 'done') resolve(message.timedOut);
  });
  load.once('error', reject);
  load.once('exit', (code) => reject(new Error(`the load process exited (code ${code}) before it was done`)));
});
const elapsedMs = performance.now() - started;
clearInterval(sampler);
await sample();

// Once the load stopped: every request finished, every handler settled, nothing borrowed.
book.openGates();
const settled = await waitUntil(() => lifecycle.live() === 0 && !book.busy && pool.borrowed === 0, SETTLE_TIMEOUT_MS);
const stats = guard.stats();
collectGarbage();
heap.end = process.memoryUsage().heapUsed;
const busyBackends = (await backends.count(name)).busy;
await served.close();
await pool.drain();
await pool.clear();
lifecycle.stop();
await backends.end();
await postgres?.stop();

const sent = counts?.sent ?? 0;
const broken = [
  ...(settled ? [] : [`not settled ${SETTLE_TIMEOUT_MS} ms after the load: ${lifecycle.live()} request(s) unfinished, ${book.describe()}, borrowed ${pool.borrowed}`]),
  ...(lifecycle.finishedTwice() > 0 ? [`${lifecycle.finishedTwice()} request(s) finished more than once`] : []),
  ...(lifecycle.escaped() > 0 ? [`${lifecycle.escaped()} unhandled rejection(s)`] : []),
  ...(lifecycle.leaks() > 0 ? [`${lifecycle.leaks()} leak(s) reported`] : []),
  ...(busyBackends > 0 ? [`${busyBackends} backend(s) still active or idle in transaction`] : []),
];
const destroyed = stats.destroyed.unusable + stats.destroyed.obsolete + stats.destroyed.abandoned;
console.log([
  '',
  `requests: ${sent} in ${(elapsedMs / 1000).toFixed(1)} s, ${(sent / (elapsedMs / 1000)).toFixed(0)} requests/s${timedOut ? ` (stopped at the time limit, ${requests} asked)` : ''}`,
  `faults: ${describeFaults(counts)}`,
  `answers: ${describeAnswers(counts)}`,
  `heap: start ${(heap.start / MB).toFixed(1)} MB, peak ${(heap.peak / MB).toFixed(1)} MB, end ${(heap.end / MB).toFixed(1)} MB (after gc)`,
  `backends: peak ${backendsPeak} (pool max ${max}), busy at end ${busyBackends}`,
  `requests started ${lifecycle.started()}, finished ${lifecycle.finished()}, finished twice ${lifecycle.finishedTwice()}, unhandled rejections ${lifecycle.escaped()}, leaks ${lifecycle.leaks()}`,
  `connections: leased ${stats.leased}, released ${stats.released}, destroyed ${destroyed} (unusable ${stats.destroyed.unusable}, abandoned ${stats.destroyed.abandoned}), ` +
    `outstanding ${stats.leased - stats.released - destroyed}; borrowed at end ${stats.pools.default?.borrowed}; abandoned waits ${stats.abandonedWaits}; shed ${stats.rejected}`,
  broken.length === 0 ? 'every promise kept' : `BROKEN:\n  - ${broken.join('\n  - ')}`,
].join('\n'));
process.exit(broken.length === 0 ? 0 : 1);

async function sample(): Promise<void> {
  heap.peak = Math.max(heap.peak, process.memoryUsage().heapUsed);
  backendsPeak = Math.max(backendsPeak, (await backends.count(name)).total);
  book.releaseGates(); // stuck handlers hung up on long ago: let them finish (and fail on their destroyed connection)
  if (++samples % PRINT_EVERY_SAMPLES === 0 && counts) {
    const seconds = (performance.now() - started) / 1000;
    console.log(`${seconds.toFixed(0)} s: ${counts.sent} sent (${(counts.sent / seconds).toFixed(0)}/s), heap ${(process.memoryUsage().heapUsed / MB).toFixed(1)} MB, backends peak ${backendsPeak}, in flight ${lifecycle.live()}`);
  }
}

function describeFaults(load: LoadCounts | undefined): string {
  if (!load) return 'none sent';
  const total = load.byKind.slice(1).reduce((sum, kind) => sum + Object.values(kind.statuses).reduce((a, b) => a + b, 0) + kind.hungUp + kind.cut, 0);
  const each = load.byKind.slice(1).map((kind, index) => `${SOAK_KINDS[index + 1]!.name} ${Object.values(kind.statuses).reduce((a, b) => a + b, 0) + kind.hungUp + kind.cut}`);
  return `${total} (${((total / Math.max(load.sent, 1)) * 100).toFixed(1)} %): ${each.join(', ')}`;
}

function describeAnswers(load: LoadCounts | undefined): string {
  if (!load) return 'none';
  const statuses = new Map<number, number>();
  let hungUp = 0;
  let cut = 0;
  for (const kind of load.byKind) {
    for (const [status, count] of Object.entries(kind.statuses)) statuses.set(Number(status), (statuses.get(Number(status)) ?? 0) + count);
    hungUp += kind.hungUp;
    cut += kind.cut;
  }
  return `${[...statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status} ×${count}`).join(', ')}, hung up by the client ×${hungUp}, cut by the server ×${cut}`;
}

/** Counts requests as they start and finish (a live set, so a million requests hold no memory), leaks and unhandled rejections. */
function watchLifecycle() {
  const live = new Set<RequestScope>();
  let started = 0;
  let finished = 0;
  let twice = 0;
  let leaks = 0;
  let escaped = 0;
  const onStart = ({ scope }: RequestStartedMessage): void => {
    started++;
    live.add(scope);
  };
  const onFinish = ({ scope }: RequestFinishedMessage): void => {
    finished++;
    if (!live.delete(scope)) twice++;
  };
  const onLeak = (): void => void leaks++;
  const onEscaped = (): void => void escaped++;
  signals.requestStarted.subscribe(onStart);
  signals.requestFinished.subscribe(onFinish);
  signals.leak.subscribe(onLeak);
  process.on('unhandledRejection', onEscaped);
  return {
    live: () => live.size,
    started: () => started,
    finished: () => finished,
    finishedTwice: () => twice,
    leaks: () => leaks,
    escaped: () => escaped,
    stop() {
      signals.requestStarted.unsubscribe(onStart);
      signals.requestFinished.unsubscribe(onFinish);
      signals.leak.unsubscribe(onLeak);
      process.off('unhandledRejection', onEscaped);
    },
  };
}

/** `--expose-gc` (npm run soak passes it): heap figures after a full collection. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`--${flag} must be a positive integer, got ${text}`);
  return value;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}
