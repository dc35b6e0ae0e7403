// Scores the interleaved runs of the driver benchmark pair by pair and formats the tables.
import { bootstrapMedianInterval, median } from '../lib/stats.ts';

export type Variant = 'closeguard' | 'pipeline';

export interface Run {
  variant: Variant;
  generator: string;
  chunkBytes: number;
  chunks: number;
  pair: number;
  bytes: number;
  seconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  /** Share of the machine other processes kept busy just before the run (0–1). */
  busyBefore: number;
}

/** A median with its 95 % bootstrap interval. */
type Estimate = { median: number; low: number; high: number };

export interface Summary {
  chunkBytes: number;
  generator: string;
  pairs: number;
  mibps: Record<Variant, number>;
  cpuPerGiB: Record<Variant, number>;
  nsPerChunk: Record<Variant, number>;
  /** closeguard MiB/s ÷ pipeline MiB/s, per pair: ≥ 0.95 is the goal. */
  throughputRatio: Estimate;
  /** closeguard server CPU ÷ pipeline server CPU, per pair: lower is better. */
  cpuRatio: Estimate;
  /** (closeguard − pipeline) server CPU per chunk in ns, per pair. */
  addedNsPerChunk: Estimate;
}

const GIB = 1024 ** 3;
const mibps = (run: Run): number => run.bytes / 1048576 / run.seconds;
const cpuPerGiB = (run: Run): number => (run.serverCpuSeconds * GIB) / run.bytes;
const nsPerChunk = (run: Run): number => (run.serverCpuSeconds * 1e9) / run.chunks;

function estimate(values: number[]): Estimate {
  const [low, high] = bootstrapMedianInterval(values);
  return { median: median(values), low, high };
}

/** Groups runs by chunk size and generator and scores each closeguard/pipeline pair. */
export function summarize(runs: readonly Run[]): Summary[] {
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const key = `${run.chunkBytes}/${run.generator}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.values()].map((group) => {
    const pairs = [...new Set(group.map((run) => run.pair))].flatMap((pair) => {
      const guarded = group.find((run) => run.pair === pair && run.variant === 'closeguard');
      const bare = group.find((run) => run.pair === pair && run.variant === 'pipeline');
      return guarded && bare ? [{ guarded, bare }] : [];
    });
    const of = (variant: Variant, metric: (run: Run) => number): number =>
      median(group.filter((run) => run.variant === variant).map(metric));
    const both = (metric: (run: Run) => number): Record<Variant, number> => ({
      closeguard: of('closeguard', metric),
      pipeline: of('pipeline', metric),
    });
    return {
      chunkBytes: group[0]!.chunkBytes,
      generator: group[0]!.generator,
      pairs: pairs.length,
      mibps: both(mibps),
      cpuPerGiB: both(cpuPerGiB),
      nsPerChunk: both(nsPerChunk),
      throughputRatio: estimate(pairs.map(({ guarded, bare }) => mibps(guarded) / mibps(bare))),
      cpuRatio: estimate(pairs.map(({ guarded, bare }) => guarded.serverCpuSeconds / bare.serverCpuSeconds)),
      addedNsPerChunk: estimate(pairs.map(({ guarded, bare }) => nsPerChunk(guarded) - nsPerChunk(bare))),
    };
  });
}

const fixed = (digits: number) => (e: Estimate): string =>
  `${e.median.toFixed(digits)} [${e.low.toFixed(digits)}, ${e.high.toFixed(digits)}]`;

/** The summaries as two markdown tables: throughput, and server CPU. */
export function formatTables(node: string, summaries: readonly Summary[]): string {
  const label = (s: Summary): string => `| ${node} | ${s.chunkBytes / 1024} KiB | ${s.generator} | ${s.pairs} |`;
  const throughput = summaries.map(
    (s) =>
      `${label(s)} ${s.mibps.closeguard.toFixed(0)} | ${s.mibps.pipeline.toFixed(0)} | ${fixed(3)(s.throughputRatio)} |`,
  );
  const cpu = summaries.map(
    (s) =>
      `${label(s)} ${s.cpuPerGiB.closeguard.toFixed(2)} / ${s.cpuPerGiB.pipeline.toFixed(2)} | ` +
      `${fixed(3)(s.cpuRatio)} | ${s.nsPerChunk.closeguard.toFixed(0)} / ${s.nsPerChunk.pipeline.toFixed(0)} | ${fixed(0)(s.addedNsPerChunk)} |`,
  );
  return [
    '| node | chunk | generator | pairs | closeguard MiB/s | pipeline MiB/s | throughput ratio [95 % CI] |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...throughput,
    '',
    '| node | chunk | generator | pairs | server CPU s/GiB (closeguard / pipeline) | CPU ratio [95 % CI] | server CPU ns/chunk (closeguard / pipeline) | added ns/chunk [95 % CI] |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...cpu,
  ].join('\n');
}
