// The load generator: wrk (C, one thread), pinned to its own core. wrk rather than autocannon:
// autocannon is itself a Node process and costs several times more CPU per request, so on a
// 2-core machine the load side would saturate before a one-core server does; wrk needs no
// devDependency, and its Lua `delay()` hook gives a fixed offered rate (see wrk.lua).
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./wrk.lua', import.meta.url));
const INSTALL_HINT = 'wrk is not installed: on Debian/Ubuntu run `apt-get update && apt-get install -y wrk` (as root), then run this benchmark again.';
const TIMEOUT_S = 5;

/** What wrk saw over one run. */
export interface LoadResult {
  requests: number;
  seconds: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
  /** Responses with a status other than 2xx/3xx (e.g. a 503 from admission control). */
  non2xx: number;
  p50Us: number;
  p99Us: number;
}

export interface LoadOptions {
  seconds: number;
  connections: number;
  /** Requests per second offered whatever the latency; 0: as fast as the server answers (saturate). */
  rate?: number;
}

/** Throws with the install command when wrk is missing. */
export function checkWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk --version prints its usage and exits 1: only a spawn error means it is missing.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(INSTALL_HINT, { cause: error });
  }
}

/** Runs wrk pinned to `core` against `http://127.0.0.1:<port>/` and returns its summary. */
export async function runWrk(core: number, port: number, options: LoadOptions): Promise<LoadResult> {
  const args = ['-c', String(core), 'wrk', '-t', '1', '-c', String(options.connections), '-d', `${options.seconds}s`];
  args.push('--timeout', `${TIMEOUT_S}s`, '-s', SCRIPT, `http://127.0.0.1:${port}/`);
  const env = { ...process.env, WRK_RATE: String(options.rate ?? 0) };
  const child = spawn('taskset', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  const [code] = (await once(child, 'close')) as [number | null];
  const summary = output.split('\n').find((line) => line.startsWith('{'));
  if (code !== 0 || summary === undefined) throw new Error(`wrk ${args.slice(3).join(' ')} failed (exit ${String(code)}):\n${output}`);
  const parsed = JSON.parse(summary) as Omit<LoadResult, 'seconds'> & { durationUs: number };
  return {
    requests: parsed.requests,
    seconds: parsed.durationUs / 1e6,
    socketErrors: parsed.socketErrors,
    non2xx: parsed.non2xx,
    p50Us: parsed.p50Us,
    p99Us: parsed.p99Us,
  };
}
