// Two variants (bare and guarded) at the same time: both servers share core 1, one wrk each on core 0, both
// saturated. Each server's requests per second of its own CPU time are compared within the round,
// so what slows the machine down (other tenants, frequency) slows both alike; on this machine the
// rounds of one host agree within about 2 %, where interleaved runs (run.ts) vary by 20 %.
// `npx tsx bench/middleware/side-by-side.ts [rounds] [node,express,fastify,koa] [A,B] [memory|pg]`,
// B ÷ A for two kinds of report.ts (default bare,guarded; `bare,floor` and `floor,guarded` split
// the cost between the framework's hooks and closeguard); on `pg` both servers share one
// PostgreSQL (DATABASE_URL, or an embedded one pinned to the load generator's core) and their
// route runs `SELECT 1`. BENCH_NODE picks node. BENCH_CPU_PROF=1 runs both servers under
// `--cpu-prof` and prints, after the ratios, µs of CPU per request by group and by function for
// each kind, summed over the rounds (B − A), over the measured load only: a profile of two servers
// that shared a core at the same moment, where profiles taken one after the other on this machine
// differ by whatever else ran. `(idle)` is time the server waited (the other one ran).
// BENCH_ROOT_A / BENCH_ROOT_B run that kind's server from another checkout (its packages built
// there): the same kind twice, before and after a change, side by side (`guarded,guarded`).
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds } from '../lib/cpu.ts';
import { nodeVersion } from '../lib/machine.ts';
import { waitForQuiet } from '../lib/quiet.ts';
import { bootstrapMedianInterval, median } from '../lib/stats.ts';
import { NODE, ROOT, startServer, type Server } from '../lib/spawn.ts';
import { addProfiles, costTables, readCosts, type Profiled } from './cpu-profile.ts';
import { ensureWrk, runWrk } from './load.ts';
import { LOAD_CORE, SERVER_CORE } from './measure.ts';
import { startDatabase, type Database } from './postgres.ts';
import { HOSTS, needsDatabase, WORKLOADS, type Host, type Kind, type Workload } from './report.ts';

const [roundsArg = '5', hostsArg = HOSTS.join(','), kindsArg = 'bare,guarded', workloadArg = 'memory'] = process.argv.slice(2);
const ROUNDS = Number(roundsArg);
const WARMUP_S = 3;
const MEASURED_S = 6;
// BENCH_CONNECTIONS: wrk connections per server (default 20, twice the pool's max of 10).
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const KINDS = kindsArg.split(',') as [Kind, Kind];
if (KINDS.length !== 2) throw new Error(`side-by-side.ts compares two kinds, as bare,guarded; received ${kindsArg}`);
const WORKLOAD = workloadArg as Workload;
const PROFILE = process.env.BENCH_CPU_PROF === '1';
const ROOTS = [process.env.BENCH_ROOT_A ?? ROOT, process.env.BENCH_ROOT_B ?? ROOT];
const PROFILE_DIR = join(ROOT, '.bench-out', 'side-by-side-profiles');
const SAMPLE_INTERVAL_US = 100;
if (!WORKLOADS.includes(WORKLOAD)) throw new Error(`side-by-side.ts runs on ${WORKLOADS.join(' or ')}; received ${workloadArg}`);

/** Where a server of a round writes its profile, when profiling. */
function profileDir(host: Host, kind: Kind, round: number): string {
  return join(PROFILE_DIR, `${host}-${kind}-${round}`);
}

function profileFlags(dir: string): string[] {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(SAMPLE_INTERVAL_US)];
}

/** The profile of the measured load: its last MEASURED_S (the server stops right after it). */
function readProfile(dir: string, requests: number): Profiled {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile in ${dir}`);
  return { costs: readCosts(join(dir, file), MEASURED_S), requests };
}

/**
 * Requests each server answered per second of its own CPU time while both ran saturated; with
 * BENCH_CPU_PROF, also each server's profile of the measured load.
 */
async function round(host: Host, database: Database | undefined, index: number): Promise<{ rates: [number, number]; profiles?: Profiled[] }> {
  const servers: Server[] = [];
  const workload = database ? [WORKLOAD, database.url] : [WORKLOAD];
  const dirs = KINDS.map((kind) => profileDir(host, kind, index));
  let rates: [number, number];
  const served = [0, 0];
  try {
    for (const [i, kind] of KINDS.entries()) {
      servers.push(await startServer(SERVER_CORE, 'bench/middleware/server.ts', [`${host}/${kind}`, ...workload], PROFILE ? profileFlags(dirs[i]!) : [], ROOTS[i]));
    }
    await Promise.all(servers.map((server) => runWrk(LOAD_CORE, server.port, { seconds: WARMUP_S, connections: CONNECTIONS })));
    const before = servers.map((server) => cpuSeconds(server.pid));
    const loads = await Promise.all(servers.map((server) => runWrk(LOAD_CORE, server.port, { seconds: MEASURED_S, connections: CONNECTIONS })));
    rates = loads.map((load, i) => {
      if (load.socketErrors > 0 || load.non2xx > 0) throw new Error(`${host}: ${load.socketErrors} socket errors, ${load.non2xx} non-2xx`);
      served[i] = load.requests;
      return load.requests / (cpuSeconds(servers[i]!.pid) - before[i]!);
    }) as [number, number];
  } finally {
    await Promise.all(servers.map((server) => server.stop())); // SIGTERM: node writes the profile as it exits
  }
  return PROFILE ? { rates, profiles: dirs.map((dir, i) => readProfile(dir, served[i]!)) } : { rates };
}

await ensureWrk();
const database = needsDatabase(WORKLOAD) ? await startDatabase(LOAD_CORE) : undefined;
const pool = database ? `PostgreSQL (${database.origin}), SELECT 1` : 'in-process pool';
if (ROOTS[0] !== ROOT || ROOTS[1] !== ROOT) console.log(`A from ${ROOTS[0]}, B from ${ROOTS[1]}`);
console.log(`${nodeVersion(NODE)}, ${pool}, ${ROUNDS} rounds of ${MEASURED_S} s, ${CONNECTIONS} connections per server, both servers on core ${SERVER_CORE}\n`);
const [A, B] = KINDS;
console.log(`| host | ${B} ÷ ${A}, requests per CPU second [95 % CI] | rounds (min – max) | ${A} / ${B} µs of CPU per request |`);
console.log('| --- | --- | --- | --- |');
const profileTables: string[] = [];
try {
  for (const host of hostsArg.split(',') as Host[]) {
    const ratios: number[] = [];
    const us: Array<[number, number]> = [];
    const profiles: Profiled[][] = [[], []];
    for (let i = 0; i < ROUNDS; i++) {
      await waitForQuiet(0.15, 30_000);
      const { rates: [a, b], profiles: pair } = await round(host, database, i);
      pair?.forEach((profile, k) => profiles[k]!.push(profile));
      ratios.push(b / a);
      us.push([1e6 / a, 1e6 / b]);
      console.error(`  ${host} round ${i + 1}/${ROUNDS}: ${(b / a).toFixed(3)}`);
    }
    const [low, high] = bootstrapMedianInterval(ratios);
    const range = `${Math.min(...ratios).toFixed(3)} – ${Math.max(...ratios).toFixed(3)}`;
    const usText = `${median(us.map(([a]) => a)).toFixed(2)} / ${median(us.map(([, b]) => b)).toFixed(2)}`;
    console.log(`| ${host} | **${median(ratios).toFixed(3)}** [${low.toFixed(3)}, ${high.toFixed(3)}] | ${range} | ${usText} |`);
    if (PROFILE) profileTables.push(`### ${host}: µs of CPU per request under --cpu-prof, ${ROUNDS} rounds summed\n\n${costTables(KINDS, profiles.map(addProfiles))}`);
  }
  if (PROFILE) console.log(`\n${profileTables.join('\n\n')}\n\n(profiles in ${PROFILE_DIR})`);
} finally {
  await database?.stop();
}
