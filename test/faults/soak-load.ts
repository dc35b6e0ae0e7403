// The soak's load, in a child process of its own (so the server's heap is measured alone):
// `concurrency` loops send requests over undici's keep-alive connections to 127.0.0.1, each kind
// behaving as soak-kinds.ts says, and report their outcomes to the parent every second (IPC).
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { kindOf, SOAK_KINDS, type LoadBehaviour } from './soak-kinds.ts';

export interface LoadOptions {
  port: number;
  requests: number;
  concurrency: number;
  /** Percent of requests that are faults. */
  faultPercent: number;
  /** Stops sending new requests after this long (milliseconds). */
  timeLimitMs: number;
}

/** Outcomes by kind id: answered by status, hung up by the client, cut by the server. */
export interface LoadCounts {
  sent: number;
  byKind: Array<{ statuses: Record<number, number>; hungUp: number; cut: number }>;
}

export type LoadMessage = { type: 'progress' | 'done'; counts: LoadCounts; timedOut: boolean };

const REPORT_INTERVAL_MS = 1_000;

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
const post = (message: LoadMessage): void => void process.send?.(message);
const counts: LoadCounts = { sent: 0, byKind: SOAK_KINDS.map(() => ({ statuses: {}, hungUp: 0, cut: 0 })) };
const pool = new Pool(`http://127.0.0.1:${options.port}`, { connections: options.concurrency, pipelining: 1 });
const deadline = Date.now() + options.timeLimitMs;
let next = 0;
let timedOut = false;

const reporter = setInterval(() => post({ type: 'progress', counts, timedOut }), REPORT_INTERVAL_MS);
await Promise.all(Array.from({ length: options.concurrency }, loop));
clearInterval(reporter);
await pool.close();
post({ type: 'done', counts, timedOut });
process.disconnect();

async function loop(): Promise<void> {
  while (next < options.requests) {
    if (Date.now() > deadline) {
      timedOut = true;
      return;
    }
    const n = next++;
    const kind = kindOf(n, options.faultPercent);
    counts.sent++;
    await send(n, kind, SOAK_KINDS[kind]!.client);
  }
}

async function send(n: number, kind: number, behaviour: LoadBehaviour): Promise<void> {
  const tally = counts.byKind[kind]!;
  const controller = new AbortController();
  const timer = behaviour.abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), behaviour.abortAfterMs);
  try {
    const { statusCode, body } = await pool.request({ path: `/fault?id=${kind}&n=${n}`, method: 'GET', signal: controller.signal });
    for await (const _chunk of body) {
      if (behaviour.abortAfterFirstChunk === true) controller.abort();
      if (behaviour.chunkDelayMs !== undefined) await sleep(behaviour.chunkDelayMs);
    }
    tally.statuses[statusCode] = (tally.statuses[statusCode] ?? 0) + 1;
  } catch {
    if (controller.signal.aborted) tally.hungUp++;
    else tally.cut++;
  } finally {
    clearTimeout(timer);
  }
}
