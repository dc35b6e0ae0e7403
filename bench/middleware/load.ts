// The load generator: wrk (C, one thread), pinned to its own core. wrk rather than autocannon:
// autocannon is itself a Node process and costs several times more CPU per request, so on a
// 2-core machine the load side would saturate before a one-core server does; wrk needs no
// devDependency, and its Lua `delay()` hook gives a fixed offered rate (see wrk.lua). The npm
// registry has no wrk, so, as the report test does for Chromium (audit/test/chromium.ts), the
// benchmark installs Debian's package itself when it may (as root, or with password-less sudo)
// and otherwise fails saying how to install it.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./wrk.lua', import.meta.url));
const INSTALL_COMMAND = 'sudo apt-get update && sudo apt-get install -y wrk';
/** apt-get update and the install take well under a minute on this kind of machine. */
const INSTALL_TIMEOUT_MS = 600_000;
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

async function hasWrk(): Promise<boolean> {
  // wrk --version prints its usage and exits 1: only a spawn error means it is missing.
  return run('wrk', ['--version']).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}

/** How to run a command as root here: directly, through password-less sudo, or not at all. */
async function asRoot(): Promise<string[] | undefined> {
  if (process.getuid?.() === 0) return [];
  const sudo = await run('sudo', ['-n', 'true']).then(() => true, () => false);
  return sudo ? ['sudo', '-n'] : undefined;
}

/**
 * Resolves once wrk is on the PATH, installing Debian's package when it is missing and this
 * process may (root or password-less sudo, with apt-get).
 * @throws Error naming the command to run, when wrk is missing and this process may not install it.
 */
export async function ensureWrk(): Promise<void> {
  if (await hasWrk()) return;
  const prefix = await asRoot();
  const apt = await run('apt-get', ['--version']).then(() => true, () => false);
  if (prefix === undefined || !apt) {
    throw new Error(`the benchmark's load generator is wrk, and it is not installed: install it with \`${INSTALL_COMMAND}\` (Debian/Ubuntu; elsewhere your system's wrk package), then run the benchmark again`);
  }
  console.error("wrk is missing: installing Debian's wrk package for the benchmark (apt-get)");
  const aptGet = (...args: string[]) => {
    const [command = 'apt-get', ...rest] = [...prefix, 'apt-get', ...args];
    return run(command, rest, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  };
  await aptGet('update', '-qq');
  await aptGet('install', '-y', '-qq', '--no-install-recommends', 'wrk');
  if (!(await hasWrk())) throw new Error('apt-get installed wrk, but `wrk` is still not on the PATH');
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
