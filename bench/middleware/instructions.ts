// Instructions per request over HTTP: each variant's server runs under `valgrind --tool=callgrind`
// with counting off, is warmed up by wrk, then counts (callgrind_control) the main thread's
// instructions over a measured load; instructions ÷ requests served. Unlike CPU time, the count hardly moves with what else runs
// on the machine, so a change of 1 % shows in one run. Under valgrind the server runs ~50× slower,
// so the database and the client are relatively faster than in real runs: compare variants, don't
// read it as a CPU time. Servers run one after the other, each pinned to core 1 at low priority.
// `npx tsx bench/middleware/instructions.ts [memory|pg] [host,…] [kind,…] [runs]`; BENCH_NODE picks
// node; INSTR_WARMUP_S (default 20) and INSTR_MEASURED_S (default 15) the phases.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { nodeVersion } from '../lib/machine.ts';
import { buildPackages, DIST_ENV, NODE, ROOT } from '../lib/spawn.ts';
import { median } from '../lib/stats.ts';
import { ensureWrk, runWrk } from './load.ts';
import { LOAD_CORE, SERVER_CORE } from './measure.ts';
import { startDatabase } from './postgres.ts';
import { needsDatabase, type Host, type Kind, type Variant, type Workload } from './report.ts';

const [workload = 'pg', hostsArg = 'express,fastify,koa', kindsArg = 'bare,guarded', runsArg = '1'] = process.argv.slice(2);
const WARMUP_S = Number(process.env.INSTR_WARMUP_S ?? 20);
const MEASURED_S = Number(process.env.INSTR_MEASURED_S ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const SETTLE_S = 5;
const START_TIMEOUT_MS = 180_000;
const control = promisify(execFile);

/** One server under callgrind: instructions per request over the measured load. */
async function count(variant: Variant, databaseUrl: string | undefined): Promise<{ perRequest: number; requests: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'closeguard-instructions-'));
  buildPackages();
  // --separate-threads: the main thread's count alone (V8's compiler and GC helper threads run on
  // their own schedule, whatever the requests).
  const args = ['-c', String(SERVER_CORE), 'nice', '-n', '10', 'valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'callgrind.out')}`];
  args.push(NODE, '--import', 'tsx', 'bench/middleware/server.ts', variant, workload);
  if (databaseUrl) args.push(databaseUrl);
  const child = spawn('taskset', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: DIST_ENV });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = once(child, 'exit');
  try {
    const timeout = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    clearTimeout(timeout);
    const port = Number(/^listening (\d+)$/.exec(line)?.[1]);
    // valgrind names the process it runs on each line of its log: the pid callgrind_control wants.
    const pid = /^==(\d+)==/m.exec(stderr)?.[1];
    if (pid === undefined || Number.isNaN(port)) throw new Error(`${variant} did not start under valgrind:\n${line}\n${stderr.slice(-2000)}`);
    await runWrk(LOAD_CORE, port, { seconds: WARMUP_S, connections: CONNECTIONS });
    // Counting on, then a first dump (which zeroes the counters) once the re-instrumented code has
    // settled: the measured window is the second dump's, with nothing of the switch in it.
    await control('callgrind_control', ['-i', 'on', pid]);
    await runWrk(LOAD_CORE, port, { seconds: SETTLE_S, connections: CONNECTIONS });
    await control('callgrind_control', ['-d', pid]);
    for (const name of readdirSync(dir)) rmSync(join(dir, name));
    const load = await runWrk(LOAD_CORE, port, { seconds: MEASURED_S, connections: CONNECTIONS });
    await control('callgrind_control', ['-d', pid]);
    const instructions = mainThreadInstructions(dir);
    // wrk gives up on a request after 5 s (a timeout, counted as a socket error): under valgrind a
    // pause may take that long. The server still answered it; only a non-2xx is wrong.
    if (load.non2xx > 0) throw new Error(`${variant}: ${load.non2xx} non-2xx responses`);
    child.kill('SIGTERM');
    await exited;
    return { perRequest: instructions / load.requests, requests: load.requests };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The main thread's instructions in the one dump in `dir`: the `totals:` line of its file for thread 1. */
function mainThreadInstructions(dir: string): number {
  const file = readdirSync(dir).find((name) => /-0*1$/.test(name));
  if (file === undefined) throw new Error(`no callgrind output for thread 1 in ${dir}: ${readdirSync(dir).join(', ')}`);
  const totals = /^totals: (\d+)/m.exec(readFileSync(join(dir, file), 'utf8'))?.[1];
  if (totals === undefined) throw new Error(`no totals in ${file}`);
  return Number(totals);
}

await ensureWrk();
const database = needsDatabase(workload as Workload) ? await startDatabase(LOAD_CORE) : undefined;
const kinds = kindsArg.split(',') as Kind[];
const runs = Number(runsArg);
console.log(`${nodeVersion(NODE)}, ${workload} pool, ${CONNECTIONS} connections, under callgrind: ${WARMUP_S} s warm-up, ${MEASURED_S} s counted, median of ${runs} run(s)\n`);
console.log(`| host | ${kinds.map((kind) => `${kind} instructions/request`).join(' | ')} | ${kinds.slice(1).map((kind) => `${kind} ÷ ${kinds[0]}`).join(' | ')} |`);
console.log(`| --- |${' --- |'.repeat(2 * kinds.length - 1)}`);
try {
  for (const host of hostsArg.split(',') as Host[]) {
    const counts: number[][] = kinds.map(() => []);
    for (let run = 0; run < runs; run++) {
      for (const [i, kind] of kinds.entries()) {
        const { perRequest, requests } = await count(`${host}/${kind}`, database?.url);
        counts[i]!.push(perRequest);
        console.error(`  ${host}/${kind} run ${run + 1}: ${Math.round(perRequest)} instructions/request (${requests} requests)`);
      }
    }
    const medians = counts.map((values) => median(values));
    const ratios = medians.slice(1).map((value) => (medians[0]! / value).toFixed(3));
    console.log(`| ${host} | ${medians.map((value) => Math.round(value).toLocaleString('en')).join(' | ')} | ${ratios.join(' | ')} |`);
  }
} finally {
  await database?.stop();
}
