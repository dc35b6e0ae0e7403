// `npm run faults -- [--runs 10000] [--seed 42] [--framework koa] [--path P] [--kinds a,b] [--jobs 2] [--no-shrink]`
// Runs many random fault schedules (docs/fault-suite.md) outside vitest, on DATABASE_URL or on a
// PostgreSQL of its own. The seed is printed first, so even an interrupted run can be replayed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchPostgres, type LaunchedPostgres } from '@closeguard/conformance';
import { Backends } from './backends.ts';
import { checkSchedules, DEFAULT_KINDS, parseKinds } from './check.ts';
import { FRAMEWORKS, type Framework } from './hosts.ts';
import { Tally } from './tally.ts';

const USAGE = 'usage: npm run faults -- [--runs N] [--seed S] [--path P] [--framework express|fastify|koa] [--kinds a,b] [--jobs J] [--no-shrink]';
const PROGRESS_EVERY = 100;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string' },
    path: { type: 'string' },
    framework: { type: 'string' },
    kinds: { type: 'string' },
    jobs: { type: 'string', default: '1' },
    'no-shrink': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const runs = positiveInteger('runs', values.runs);
const jobs = positiveInteger('jobs', values.jobs);
const seed = values.seed === undefined ? (Date.now() ^ (process.pid << 16)) | 0 : Number(values.seed);
if (!Number.isInteger(seed)) fail(`--seed must be an integer, got ${values.seed}`);
const frameworks: readonly Framework[] = values.framework === undefined ? FRAMEWORKS : [checkFramework(values.framework)];
const kinds = values.kinds === undefined ? DEFAULT_KINDS : parseKinds(values.kinds);
if (values.path !== undefined && jobs > 1) fail('--path replays one schedule: leave --jobs out');

let postgres: LaunchedPostgres | undefined;
if (process.env.DATABASE_URL === undefined) {
  postgres = await launchPostgres(ROOT);
  process.env.DATABASE_URL = postgres.url;
}
const databaseUrl = process.env.DATABASE_URL;
let passed: boolean;
try {
  passed = jobs > 1 ? await runJobs() : await runHere();
} finally {
  await postgres?.stop();
}
process.exit(passed ? 0 : 1);

/** Runs every framework's schedules in this process; resolves whether all passed. */
async function runHere(): Promise<boolean> {
  console.log(`faults: ${runs} schedule(s) per framework on ${frameworks.join(', ')}, seed ${seed}${values.path === undefined ? '' : `, path ${values.path}`}; kinds ${kinds.join(', ')}`);
  const backends = await Backends.connect(databaseUrl);
  try {
    for (const framework of frameworks) {
      const started = performance.now();
      let passed = 0;
      const tally = new Tally();
      try {
        await checkSchedules({ framework, databaseUrl, backends }, {
          runs,
          seed,
          kinds,
          shrink: !values['no-shrink'],
          ...(values.path !== undefined && { path: values.path }),
          onPass: (report) => {
            tally.add(report);
            // Shrinking runs schedules too: past `runs`, these are the shrinker's.
            if (++passed % PROGRESS_EVERY === 0) console.log(`${framework}: ${passed} passed of ${runs} (${rate(passed, started)} schedules/s)`);
          },
        });
        console.log(`${framework}: ${passed} schedule(s) passed in ${seconds(started)} s (seed ${seed})\n  ${tally.describe()}`);
      } catch (error) {
        console.error(`${framework}: FAILED after ${passed} passing schedule(s) in ${seconds(started)} s; replay with\n` +
          `  npm run faults -- --framework ${framework} --seed ${seed} --path <path below>${values.kinds === undefined ? '' : ` --kinds ${values.kinds}`}\n`);
        console.error(error instanceof Error ? `${error.message}\n${error.cause instanceof Error ? error.cause.message : ''}` : error);
        return false;
      }
    }
    return true;
  } finally {
    await backends.end();
  }
}

/** Splits the runs over `jobs` processes, each with its own seed (seed + job); resolves whether all passed. */
async function runJobs(): Promise<boolean> {
  console.log(`faults: ${jobs} jobs, seeds ${seed}..${seed + jobs - 1}`);
  const share = Math.ceil(runs / jobs);
  const results = await Promise.all(Array.from({ length: jobs }, (_, job) => {
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--runs', String(share), '--seed', String(seed + job)];
    if (values.framework !== undefined) args.push('--framework', values.framework);
    if (values.kinds !== undefined) args.push('--kinds', values.kinds);
    if (values['no-shrink']) args.push('--no-shrink');
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, DATABASE_URL: databaseUrl } });
    return new Promise<boolean>((resolve) => child.on('exit', (code) => resolve(code === 0)));
  }));
  return results.every(Boolean);
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a positive integer, got ${text}`);
  return value;
}

function checkFramework(name: string): Framework {
  if (!(FRAMEWORKS as readonly string[]).includes(name)) fail(`--framework must be one of ${FRAMEWORKS.join(', ')}, got ${name}`);
  return name as Framework;
}

function rate(count: number, started: number): string {
  return (count / ((performance.now() - started) / 1000)).toFixed(1);
}

function seconds(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}
