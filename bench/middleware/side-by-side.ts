// Two variants (bare and guarded) at the same time: both servers share core 1, one wrk each on core 0, both
// saturated. Each server's requests per second of its own CPU time are compared within the round,
// so what slows the machine down (other tenants, frequency) slows both alike; on this machine the
// rounds of one host agree within about 2 %, where interleaved runs (run.ts) vary by 20 %.
// `npx tsx bench/middleware/side-by-side.ts [rounds] [node,express,fastify,koa] [A,B] [memory|pg]`,
// B ÷ A for two kinds of report.ts (default bare,guarded; `bare,floor` and `floor,guarded` split
// the cost between the framework's hooks and closeguard); on `pg` both servers share one
// PostgreSQL (DATABASE_URL, or an embedded one pinned to the load generator's core) and their
// route runs `SELECT 1`. BENCH_NODE picks node.
import { cpuSeconds } from '../lib/cpu.ts';
import { nodeVersion } from '../lib/machine.ts';
import { waitForQuiet } from '../lib/quiet.ts';
import { bootstrapMedianInterval, median } from '../lib/stats.ts';
import { NODE, startServer, type Server } from '../lib/spawn.ts';
import { ensureWrk, runWrk } from './load.ts';
import { LOAD_CORE, SERVER_CORE } from './measure.ts';
import { startDatabase, type Database } from './postgres.ts';
import { HOSTS, WORKLOADS, type Host, type Kind, type Workload } from './report.ts';

const [roundsArg = '5', hostsArg = HOSTS.join(','), kindsArg = 'bare,guarded', workloadArg = 'memory'] = process.argv.slice(2);
const ROUNDS = Number(roundsArg);
const WARMUP_S = 3;
const MEASURED_S = 6;
// BENCH_CONNECTIONS: wrk connections per server (default 20, twice the pool's max of 10).
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const KINDS = kindsArg.split(',') as [Kind, Kind];
if (KINDS.length !== 2) throw new Error(`side-by-side.ts compares two kinds, as bare,guarded; received ${kindsArg}`);
const WORKLOAD = workloadArg as Workload;
if (!WORKLOADS.includes(WORKLOAD)) throw new Error(`side-by-side.ts runs on ${WORKLOADS.join(' or ')}; received ${workloadArg}`);

/** Requests each server answered per second of its own CPU time while both ran saturated. */
async function round(host: Host, database: Database | undefined): Promise<[number, number]> {
  const servers: Server[] = [];
  const workload = database ? [WORKLOAD, database.url] : [WORKLOAD];
  try {
    for (const kind of KINDS) servers.push(await startServer(SERVER_CORE, 'bench/middleware/server.ts', [`${host}/${kind}`, ...workload]));
    await Promise.all(servers.map((server) => runWrk(LOAD_CORE, server.port, { seconds: WARMUP_S, connections: CONNECTIONS })));
    const before = servers.map((server) => cpuSeconds(server.pid));
    const loads = await Promise.all(servers.map((server) => runWrk(LOAD_CORE, server.port, { seconds: MEASURED_S, connections: CONNECTIONS })));
    return loads.map((load, i) => {
      if (load.socketErrors > 0 || load.non2xx > 0) throw new Error(`${host}: ${load.socketErrors} socket errors, ${load.non2xx} non-2xx`);
      return load.requests / (cpuSeconds(servers[i]!.pid) - before[i]!);
    }) as [number, number];
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

await ensureWrk();
const database = WORKLOAD === 'pg' ? await startDatabase(LOAD_CORE) : undefined;
const pool = database ? `PostgreSQL (${database.origin}), SELECT 1` : 'in-process pool';
console.log(`${nodeVersion(NODE)}, ${pool}, ${ROUNDS} rounds of ${MEASURED_S} s, ${CONNECTIONS} connections per server, both servers on core ${SERVER_CORE}\n`);
const [A, B] = KINDS;
console.log(`| host | ${B} ÷ ${A}, requests per CPU second [95 % CI] | rounds (min – max) | ${A} / ${B} µs of CPU per request |`);
console.log('| --- | --- | --- | --- |');
try {
  for (const host of hostsArg.split(',') as Host[]) {
    const ratios: number[] = [];
    const us: Array<[number, number]> = [];
    for (let i = 0; i < ROUNDS; i++) {
      await waitForQuiet(0.15, 30_000);
      const [a, b] = await round(host, database);
      ratios.push(b / a);
      us.push([1e6 / a, 1e6 / b]);
      console.error(`  ${host} round ${i + 1}/${ROUNDS}: ${(b / a).toFixed(3)}`);
    }
    const [low, high] = bootstrapMedianInterval(ratios);
    const range = `${Math.min(...ratios).toFixed(3)} – ${Math.max(...ratios).toFixed(3)}`;
    const usText = `${median(us.map(([a]) => a)).toFixed(2)} / ${median(us.map(([, b]) => b)).toFixed(2)}`;
    console.log(`| ${host} | **${median(ratios).toFixed(3)}** [${low.toFixed(3)}, ${high.toFixed(3)}] | ${range} | ${usText} |`);
  }
} finally {
  await database?.stop();
}
