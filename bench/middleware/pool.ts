// Pools the rounds of several middleware runs (their raw files from .bench-out/) and prints, per
// guarded variant, the median of the per-round ratios to the bare run of the same round, with a
// 95 % bootstrap interval: server CPU per request at the fixed rate (bare ÷ guarded), and
// saturated requests per second (guarded ÷ bare), as run.ts does for one run. A redone run
// replaces the one before it. Keep each run's file first: every run writes the same path.
// `npx tsx bench/middleware/pool.ts run1.json run2.json …`
import { readFileSync } from 'node:fs';
import { bootstrapMedianInterval, median } from '../lib/stats.ts';

interface Run {
  workload: string;
  variant: string;
  round: number;
  fixed: { requests: number; serverCpuSeconds: number };
  saturated: { requests: number; seconds: number };
}

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: pool.ts <raw run file>…');
const ratios = new Map<string, { cpu: number[]; rps: number[] }>();
for (const file of files) {
  const latest = new Map<string, Run>();
  for (const run of (JSON.parse(readFileSync(file, 'utf8')) as { runs: Run[] }).runs) latest.set(`${run.workload} ${run.variant} ${run.round}`, run);
  for (const run of latest.values()) {
    const [host, kind] = run.variant.split('/');
    if (kind === 'bare') continue;
    const bare = latest.get(`${run.workload} ${host}/bare ${run.round}`);
    if (!bare) continue;
    const key = `${run.workload} | ${run.variant} ÷ ${host}/bare`;
    const entry = ratios.get(key) ?? { cpu: [], rps: [] };
    entry.cpu.push((bare.fixed.serverCpuSeconds / bare.fixed.requests) / (run.fixed.serverCpuSeconds / run.fixed.requests));
    entry.rps.push((run.saturated.requests / run.saturated.seconds) / (bare.saturated.requests / bare.saturated.seconds));
    ratios.set(key, entry);
  }
}
const format = (values: number[]): string => {
  const [low, high] = bootstrapMedianInterval(values);
  return `${median(values).toFixed(3)} [${low.toFixed(3)}, ${high.toFixed(3)}]`;
};
console.log('| pool | ratio | rounds | CPU ratio [95 % CI] | saturated req/s ratio [95 % CI] |');
console.log('| --- | --- | --- | --- | --- |');
for (const [key, { cpu, rps }] of ratios) console.log(`| ${key} | ${cpu.length} | ${format(cpu)} | ${format(rps)} |`);
