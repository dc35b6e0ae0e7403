// Driver throughput: closeguard's body driver vs a bare `pipeline(Readable.from(gen), res)`,
// interleaved in pairs of fresh server processes (docs/benchmarks.md, BENCHMARKING.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, ROOT, runJson, startServer } from '../lib/spawn.ts';
import { nodeVersion } from '../lib/machine.ts';
import { waitForQuiet } from '../lib/quiet.ts';
import { formatTables, summarize, type Run, type Variant } from './report.ts';

const SERVER_CORE = 1;
const CLIENT_CORE = 0;
const SERVER = 'bench/driver/server.ts';
const CLIENT = 'bench/driver/client.ts';

const env = process.env;
const MIB = Number(env.BENCH_MIB ?? 1024); // body size of the measured request
const PAIRS = Number(env.BENCH_PAIRS ?? 10);
const WARMUP_MS = Number(env.BENCH_WARMUP_MS ?? 3000);
const CHUNK_SIZES = (env.BENCH_CHUNKS ?? '16384,1024').split(',').map(Number);
const GENERATORS = (env.BENCH_GENERATORS ?? 'sync,async').split(',') as Array<'sync' | 'async'>;
// Before each run, wait up to BENCH_QUIET_WAIT_MS for other processes to leave the machine quiet.
const QUIET_BUSY = 0.15;
const QUIET_WAIT_MS = Number(env.BENCH_QUIET_WAIT_MS ?? 30_000);

interface ClientResult {
  bytes: number;
  seconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
}

/** One measured run: a fresh pinned server, a pinned client that warms it up, then 1 GiB. */
async function measure(variant: Variant, generator: string, chunkBytes: number, pair: number): Promise<Run> {
  const busyBefore = await waitForQuiet(QUIET_BUSY, QUIET_WAIT_MS);
  const server = await startServer(SERVER_CORE, SERVER, [variant, generator, String(chunkBytes)]);
  try {
    const chunks = Math.round((MIB * 1024 * 1024) / chunkBytes);
    const args = [server.port, server.pid, chunks, chunkBytes, WARMUP_MS].map(String);
    const result = await runJson<ClientResult>(CLIENT_CORE, CLIENT, args);
    return { variant, generator, chunkBytes, chunks, pair, ...result, busyBefore };
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const version = nodeVersion(NODE);
  const outDir = join(ROOT, '.bench-out');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `driver-${version}.json`);
  const runs: Run[] = [];
  for (const chunkBytes of CHUNK_SIZES) {
    for (const generator of GENERATORS) {
      for (let pair = 0; pair < PAIRS; pair++) {
        // A B, B A, …: interleaved, and neither variant always runs first.
        const order: Variant[] = pair % 2 === 0 ? ['closeguard', 'pipeline'] : ['pipeline', 'closeguard'];
        for (const variant of order) {
          const result = await measure(variant, generator, chunkBytes, pair);
          runs.push(result);
          console.log(`  ${version} ${describeRun(result)}`);
        }
        // Saved as it goes: a long run that dies still leaves its raw numbers.
        writeFileSync(file, JSON.stringify({ node: version, mib: MIB, pairs: PAIRS, warmupMs: WARMUP_MS, runs }, null, 2));
      }
    }
  }
  console.log(`\nraw runs: ${file}\n`);
  console.log(formatTables(version, summarize(runs)));
}

function describeRun(run: Run): string {
  const mibps = run.bytes / 1048576 / run.seconds;
  return (
    `${run.chunkBytes} B ${run.generator} pair ${run.pair + 1}/${PAIRS} ${run.variant.padEnd(10)} ` +
    `${mibps.toFixed(0).padStart(5)} MiB/s, server CPU ${run.serverCpuSeconds.toFixed(2)} s, ` +
    `client CPU ${run.clientCpuSeconds.toFixed(2)} s, machine ${(run.busyBefore * 100).toFixed(0)} % busy before`
  );
}
