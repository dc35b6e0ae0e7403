import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const SAMPLE_MS = 500;
const POLL_MS = 2000;

/** Busy and total jiffies over all CPUs, from the first line of /proc/stat. */
function cpuJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** The share of the whole machine (0–1) that was busy over the next `ms` milliseconds. */
export async function machineBusy(ms = SAMPLE_MS): Promise<number> {
  const before = cpuJiffies();
  await sleep(ms);
  const after = cpuJiffies();
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}

/**
 * Waits (at most `maxWaitMs`) until other work leaves the machine at most `threshold` busy, so a
 * run does not start while, say, a test suite shares its cores. Returns the last reading.
 */
export async function waitForQuiet(threshold: number, maxWaitMs: number): Promise<number> {
  const until = Date.now() + maxWaitMs;
  let busy = await machineBusy();
  while (busy > threshold && Date.now() < until) {
    await sleep(POLL_MS);
    busy = await machineBusy();
  }
  return busy;
}
