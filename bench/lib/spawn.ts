import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root: child scripts run from here so that `--import tsx` resolves. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The node binary under test: BENCH_NODE, else the one running the benchmarks. */
export const NODE = process.env.BENCH_NODE ?? process.execPath;

/**
 * The servers run the packages as users do, from their built `dist/` (tsc's output): tsx would
 * otherwise compile the sources with esbuild's keepNames, which wraps every named closure in a
 * `__name()` call on every request (≈ 0.5 µs per request in the guard). Built once per run.
 */
const DIST_TSCONFIG = 'bench/tsconfig.dist.json';
/** The environment of a server on the built packages. */
export const DIST_ENV = { ...process.env, TSX_TSCONFIG_PATH: DIST_TSCONFIG };
const built = new Set<string>();

/** Builds the packages of the checkout at `root` (this one by default), once per run. */
export function buildPackages(root = ROOT): void {
  if (built.has(root)) return;
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  built.add(root);
}

/** Starts `node [nodeFlags] --import tsx script …args` pinned to one CPU core, on the built packages of the checkout at `root`. */
function spawnPinned(core: number, script: string, args: readonly string[], nodeFlags: readonly string[] = [], root = ROOT): ChildProcess {
  buildPackages(root);
  const argv = ['-c', String(core), NODE, ...nodeFlags, '--import', 'tsx', script, ...args];
  return spawn('taskset', argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: DIST_ENV });
}

export interface Server {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts a server script pinned to `core` (node run with `nodeFlags`, from the checkout at `root`);
 * it must print `listening <port>` once it listens.
 */
export async function startServer(core: number, script: string, args: readonly string[], nodeFlags: readonly string[] = [], root = ROOT): Promise<Server> {
  const child = spawnPinned(core, script, args, nodeFlags, root);
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([once(lines, 'line'), exited.then(() => [undefined])]);
  const match = /^listening (\d+)$/.exec(String(first[0]));
  if (!match || child.pid === undefined) {
    child.kill();
    throw new Error(`${script} ${args.join(' ')} did not start: ${String(first[0])}`);
  }
  return {
    pid: child.pid, // taskset execs node, so this is the server's own pid
    port: Number(match[1]),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs a script pinned to `core` and returns the JSON it prints on its last line. */
export async function runJson<T>(core: number, script: string, args: readonly string[]): Promise<T> {
  const child = spawnPinned(core, script, args);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  const [code] = (await once(child, 'close')) as [number | null]; // 'close': stdout is drained
  if (code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${String(code)}`);
  return JSON.parse(output.trim().split('\n').at(-1) ?? '') as T;
}
