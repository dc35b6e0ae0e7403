// Where the guard's time goes: runs each variant's server under `--cpu-prof` at saturation and
// prints CPU microseconds per request by group of files and by closeguard function.
// `npx tsx bench/middleware/profile.ts [memory|pg] [seconds] [connections] [node|express|fastify|koa]`; BENCH_NODE picks node.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { nodeVersion } from '../lib/machine.ts';
import { buildPackages, DIST_ENV, NODE, ROOT } from '../lib/spawn.ts';
import { costTables, readCosts, type Costs } from './cpu-profile.ts';
import { ensureWrk, runWrk } from './load.ts';
import { LOAD_CORE, SERVER_CORE } from './measure.ts';
import { startDatabase } from './postgres.ts';
import { needsDatabase, variantsOf, type Host, type Variant, type Workload } from './report.ts';

const [workload = 'memory', seconds = '15', connections = '10', host = 'node'] = process.argv.slice(2) as [Workload?, string?, string?, Host?];
const VARIANTS = variantsOf(host, workload);
const WARMUP_S = 2;
const SAMPLE_INTERVAL_US = 100;

/** Serves one variant under `--cpu-prof` for a warm-up and a measured run; returns the profile's costs and the requests served. */
async function profile(variant: Variant, dir: string, databaseUrl: string | undefined): Promise<{ costs: Costs; requests: number }> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const flags = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(SAMPLE_INTERVAL_US)];
  const args = ['-c', String(SERVER_CORE), NODE, ...flags, '--import', 'tsx', 'bench/middleware/server.ts', variant, workload];
  buildPackages();
  const child = spawn('taskset', databaseUrl ? [...args, databaseUrl] : args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: DIST_ENV });
  const exited = once(child, 'exit');
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const port = Number(/^listening (\d+)$/.exec(line)?.[1]);
  const warm = await runWrk(LOAD_CORE, port, { seconds: WARMUP_S, connections: Number(connections) });
  const measured = await runWrk(LOAD_CORE, port, { seconds: Number(seconds), connections: Number(connections) });
  child.kill('SIGTERM'); // the server exits, and node writes the profile
  await exited;
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile in ${dir}`);
  return { costs: readCosts(join(dir, file)), requests: warm.requests + measured.requests };
}

await ensureWrk();
const version = nodeVersion(NODE);
const database = needsDatabase(workload) ? await startDatabase(LOAD_CORE) : undefined;
try {
  const results = [];
  for (const variant of VARIANTS) {
    results.push(await profile(variant, join(ROOT, '.bench-out', 'profiles', version, workload, variant), database?.url));
  }
  const served = results.map(({ requests }, i) => `${VARIANTS[i]} ${requests}`).join(', ');
  console.log(`${version}, ${workload} pool, ${connections} connections, µs of server CPU per request (requests: ${served}; profiles in .bench-out/profiles)\n`);
  console.log(costTables(VARIANTS, results));
} finally {
  await database?.stop();
}
