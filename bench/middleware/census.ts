// What a request creates, per variant: promises, timers, ticks and other async resources,
// listeners added, diagnostics_channel messages — counted (census-hooks.ts) over a saturated run
// and divided by the requests served. Counts, not timings: they do not depend on how busy the
// machine is, so two variants compare exactly, and each line says what a change removes.
// `npx tsx bench/middleware/census.ts [memory|pg] [host,…] [kind,…] [seconds] [connections]`,
// e.g. `… pg express,fastify,koa bare,guarded`; BENCH_NODE picks node. CENSUS_SYSCALLS=1 also
// counts the server's system calls by name (strace -c over the measured run): how many turns of
// the event loop (epoll_wait) and socket reads and writes a request takes. CENSUS_STACKS=Timeout
// (a list of resource types) also counts those by the code that created them.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { nodeVersion } from '../lib/machine.ts';
import { buildPackages, DIST_ENV, NODE, ROOT } from '../lib/spawn.ts';
import { ensureWrk, runWrk } from './load.ts';
import { LOAD_CORE, SERVER_CORE } from './measure.ts';
import { startDatabase } from './postgres.ts';
import { needsDatabase, type Host, type Kind, type Variant, type Workload } from './report.ts';

const [workload = 'pg', hostsArg = 'express,fastify,koa', kindsArg = 'bare,guarded', secondsArg = '3', connectionsArg = '20'] = process.argv.slice(2);
const WARMUP_S = 1;
const TOP = 40;

interface Census {
  resources: Record<string, number>;
  listeners: Record<string, number>;
  published: Record<string, number>;
  syscalls?: Record<string, number>;
}

const SYSCALLS = process.env.CENSUS_SYSCALLS === '1';

/** Attaches strace to `pid` (every thread); `stop()` detaches it and resolves to the calls counted by name. */
function traceSyscalls(pid: number, file: string): { stop(): Promise<Record<string, number>> } {
  const strace = spawn('strace', ['-c', '-f', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  return {
    async stop() {
      strace.kill('SIGINT');
      await once(strace, 'exit');
      const counts: Record<string, number> = {};
      // strace -c: "% time seconds usecs/call calls errors syscall", the errors column may be empty.
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const fields = line.trim().split(/\s+/);
        if (fields.length < 5 || !/^\d/.test(fields[0]!) || fields.at(-1) === 'total') continue;
        counts[fields.at(-1)!] = Number(fields[3]);
      }
      return counts;
    },
  };
}

/** Serves one variant with the census hooks, counts over a saturated run, and divides by the requests served. */
async function census(variant: Variant, databaseUrl: string | undefined): Promise<{ census: Census; requests: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'closeguard-census-'));
  const file = join(dir, 'census.json');
  buildPackages();
  const args = ['-c', String(SERVER_CORE), NODE, '--import', 'tsx', '--import', './bench/middleware/census-hooks.ts', 'bench/middleware/server.ts', variant, workload];
  if (databaseUrl) args.push(databaseUrl);
  const child = spawn('taskset', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...DIST_ENV, CENSUS_OUT: file } });
  try {
    const exited = once(child, 'exit');
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const port = Number(/^listening (\d+)$/.exec(line)?.[1]);
    await runWrk(LOAD_CORE, port, { seconds: WARMUP_S, connections: Number(connectionsArg) });
    child.kill('SIGUSR2'); // start counting
    const strace = SYSCALLS ? traceSyscalls(child.pid!, join(dir, 'strace.txt')) : undefined;
    if (strace) await new Promise((resolve) => setTimeout(resolve, 200)); // attached
    const load = await runWrk(LOAD_CORE, port, { seconds: Number(secondsArg), connections: Number(connectionsArg) });
    const syscalls = await strace?.stop();
    child.kill('SIGTERM');
    await exited;
    const counted = JSON.parse(readFileSync(file, 'utf8')) as Census;
    if (syscalls) counted.syscalls = syscalls;
    // Requests in flight at either end are few (the connections) next to the thousands served.
    return { census: counted, requests: load.requests };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(title: string, variants: readonly Variant[], results: ReadonlyArray<{ census: Census; requests: number }>, pick: (census: Census) => Record<string, number>): string {
  const keys = new Set(results.flatMap(({ census: c }) => Object.keys(pick(c))));
  const rows = [...keys].map((key) => [key, results.map(({ census: c, requests }) => (pick(c)[key] ?? 0) / requests)] as const);
  const last = results.length - 1;
  rows.sort((a, b) => Math.abs(b[1][last]! - b[1][0]!) - Math.abs(a[1][last]! - a[1][0]!) || b[1][last]! - a[1][last]!);
  const totals = results.map(({ census: c, requests }) => Object.values(pick(c)).reduce((sum, n) => sum + n, 0) / requests);
  const fmt = (n: number): string => n.toFixed(2);
  const lines = [
    `| ${title} | ${variants.join(' | ')} | ${variants.at(-1)} − ${variants[0]} |`,
    `| --- |${' --- |'.repeat(variants.length + 1)}`,
    `| **all** | ${totals.map(fmt).join(' | ')} | ${fmt(totals[last]! - totals[0]!)} |`,
    ...rows.slice(0, TOP).map(([key, values]) => `| ${key} | ${values.map(fmt).join(' | ')} | ${fmt(values[last]! - values[0]!)} |`),
  ];
  return lines.join('\n');
}

await ensureWrk();
const database = needsDatabase(workload as Workload) ? await startDatabase(LOAD_CORE) : undefined;
console.log(`${nodeVersion(NODE)}, ${workload} pool, ${connectionsArg} connections, saturated ${secondsArg} s: per request\n`);
try {
  for (const host of hostsArg.split(',') as Host[]) {
    const variants = (kindsArg.split(',') as Kind[]).map((kind): Variant => `${host}/${kind}`);
    const results = [];
    for (const variant of variants) results.push(await census(variant, database?.url));
    console.log(`### ${host} (requests: ${results.map(({ requests }) => requests).join(', ')})\n`);
    console.log(table('async resources created', variants, results, (c) => c.resources), '\n');
    console.log(table('listeners added', variants, results, (c) => c.listeners), '\n');
    console.log(table('diagnostics_channel messages', variants, results, (c) => c.published), '\n');
    if (SYSCALLS) console.log(table('system calls (strace, all threads)', variants, results, (c) => c.syscalls ?? {}), '\n');
  }
} finally {
  await database?.stop();
}
