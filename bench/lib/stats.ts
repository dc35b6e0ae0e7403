// Summary statistics for paired benchmark runs (BENCHMARKING.md, step 4).

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * A 95 % percentile-bootstrap interval for the median of `values`: resample with replacement,
 * take each resample's median, keep the 2.5th and 97.5th percentiles. Seeded, so a report can be
 * recomputed from its raw numbers.
 */
export function bootstrapMedianInterval(values: readonly number[], resamples = 10_000, seed = 1): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  const random = mulberry32(seed);
  const medians: number[] = [];
  const sample: number[] = new Array<number>(values.length);
  for (let i = 0; i < resamples; i++) {
    for (let j = 0; j < values.length; j++) sample[j] = values[Math.floor(random() * values.length)]!;
    medians.push(median(sample));
  }
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(resamples * 0.025)]!, medians[Math.ceil(resamples * 0.975) - 1]!];
}

/** A small seeded PRNG (uniform in [0, 1)). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
