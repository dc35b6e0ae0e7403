// Runs one throwaway PostgreSQL for a test run, in its own process, and removes it when the run is
// over — however the run ends. Started by `postgres-launcher.ts` as
// `node --import tsx postgres-supervisor.ts <dir> <parent pid>`; reports over the IPC channel, and
// stops when that channel closes.
//
// Why a separate process: vitest exits on SIGINT/SIGTERM without running global teardown, and
// nothing in-process survives SIGKILL. This process is detached (its own process group, so a
// terminal's Ctrl-C does not reach it) and watches its parent: when the IPC channel closes — the
// kernel closes it whatever killed the parent — it stops PostgreSQL and deletes `<dir>`.
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { prepareBinaries } from './postgres-binaries.ts';
import { PostgresServer, type ServerOptions } from './postgres-server.ts';

/** What the supervisor tells its parent. */
export type SupervisorMessage = { type: 'ready'; url: string; initdbMs: number; startMs: number } | { type: 'failed'; message: string };

/**
 * What the parent may ask once the server is ready (tests of what clients see across a restart):
 * stop the server as a restart does (a fast shutdown: every session is ended) and start it again,
 * on the same port and data. Each is answered with a `CommandReply`.
 */
export type SupervisorCommand = { type: 'stop-server' } | { type: 'start-server' };
export type CommandReply = { type: 'done' } | { type: 'failed'; message: string };

const USER = 'postgres';
const PARENT_POLL_MS = 500;
const STOP_TIMEOUT_MS = 5_000;
const LOG_LINES_KEPT = 60;
const START_ATTEMPTS = 3;

// Settings for a disposable test server: durability off (the directory is deleted anyway), TCP on
// loopback only, no Unix socket (its default directory may not exist or be writable).
const POSTGRES_FLAGS = [
  ['listen_addresses', '127.0.0.1'],
  ['unix_socket_directories', ''],
  ['max_connections', '200'],
  ['fsync', 'off'],
  ['synchronous_commit', 'off'],
  ['full_page_writes', 'off'],
].flatMap(([name, value]) => ['-c', `${name}=${value}`]);

const { dir, parentPid } = parseArguments();
const log: string[] = [];
let server: PostgresServer | undefined;
let initialising: Promise<void> | undefined;
let stopping: Promise<never> | undefined;

// Whatever ends this process, nothing of ours outlives it. We lead our process group (spawned
// detached), so SIGTERM to the group reaches only our helpers — an initdb still running (it then
// deletes what it wrote), tsx's esbuild service — and not us: a listener is in place (below) and
// an exiting process runs no more listeners. Then the directory goes; retries ride out initdb's
// own deletion racing ours.
process.on('exit', () => {
  try {
    process.kill(-process.pid, 'SIGTERM');
  } catch {
    // Not a group leader (started by hand): there is no group of ours to clean.
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});
process.on('SIGTERM', () => void shutdown(0));
// The parent closes the channel to stop us; the kernel closes it for a parent that died.
process.on('disconnect', () => void shutdown(0));
process.on('message', (command: SupervisorCommand) => void obey(command));
process.on('uncaughtException', (error) => {
  remember(`uncaught: ${String(error)}`);
  void shutdown(1);
});
// Belt and braces: a parent that died before the handler above was in place, or a missed close,
// still shows as a changed parent pid.
const watchParent = () => {
  if (!process.connected || process.ppid !== parentPid) void shutdown(0);
};
watchParent();
setInterval(watchParent, PARENT_POLL_MS).unref();

try {
  tell(await run(dir));
} catch (error) {
  tellFailure(error);
  await shutdown(1);
}

async function run(root: string): Promise<SupervisorMessage> {
  // Under root, a copy of the binaries that `nobody` can run (see postgres-binaries.ts).
  const binaries = await prepareBinaries(root);
  const password = randomUUID();
  const options: ServerOptions = {
    binaries,
    databaseDir: join(root, 'data'),
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--no-sync', '--no-instructions', '--encoding=UTF8', '--locale=C'],
    postgresFlags: POSTGRES_FLAGS,
    onLog: remember,
  };
  const initdbStarted = performance.now();
  // A shutdown waits for a running initdb (see below) rather than delete the directory under it.
  await (initialising = new PostgresServer(options).initialise());
  if (stopping) return stopping;
  const startStarted = performance.now();
  const port = await startOnFreePort(options);
  return {
    type: 'ready',
    url: `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`,
    initdbMs: Math.round(startStarted - initdbStarted),
    startMs: Math.round(performance.now() - startStarted),
  };
}

/** Picks the port just before postgres binds it, and another one if something took it meanwhile. */
async function startOnFreePort(options: ServerOptions): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    server = new PostgresServer({ ...options, port });
    try {
      await server.start();
      return port;
    } catch {
      // postgres exited early; the log says why.
      if (stopping) return stopping;
      if (attempt === START_ATTEMPTS) throw new Error(`postgres exited before it was ready (${attempt} attempts)`);
      remember(`postgres did not start on port ${port}; trying another`);
    }
  }
}

/** A port nothing listens on now; postgres binds it a moment later. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}

/** Stops or starts the server (same port, same data) and tells the parent when it is done. */
async function obey(command: SupervisorCommand): Promise<void> {
  let reply: CommandReply = { type: 'done' };
  try {
    if (!server || stopping) throw new Error('no server is running here');
    // stop(): SIGINT, PostgreSQL's fast shutdown. start() fails if the port was taken meanwhile.
    if (command.type === 'stop-server') await server.stop();
    else await server.start();
  } catch (error) {
    reply = { type: 'failed', message: `${command.type}: ${error instanceof Error ? error.message : String(error)}\n${log.slice(-10).join('\n')}` };
  }
  if (process.connected) process.send?.(reply);
}

/**
 * Lets a running initdb finish (so it does not write into a deleted directory), stops postgres,
 * then exits; the exit handler removes the directory. Each wait is bounded. Idempotent.
 */
function shutdown(code: number): Promise<never> {
  stopping ??= (async () => {
    await bounded(initialising?.catch(() => undefined));
    await bounded(server?.stop().catch((error: unknown) => remember(`stop: ${String(error)}`)));
    killLeftoverPostmaster();
    process.exit(code);
  })();
  return stopping;
}

function bounded(step: Promise<unknown> | undefined): Promise<unknown> {
  return Promise.race([step, new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS))]);
}

/** If a stop hung, end the postmaster the hard way (SIGQUIT: immediate shutdown of all backends). */
function killLeftoverPostmaster(): void {
  try {
    const pid = Number.parseInt(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8'), 10);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    // No pid file, or no such process: postgres is gone, which is what we want.
  }
}

function parseArguments(): { dir: string; parentPid: number } {
  const [, , dir, pid] = process.argv;
  const parentPid = Number(pid);
  if (dir && parentPid > 0 && process.send) return { dir, parentPid };
  console.error('usage: node --import tsx postgres-supervisor.ts <dir> <parent pid>, spawned with an IPC channel');
  return process.exit(2);
}

function remember(line: string): void {
  log.push(line.trimEnd());
  if (log.length > LOG_LINES_KEPT) log.shift();
}

function tell(message: SupervisorMessage): void {
  if (process.connected) process.send?.(message);
}

function tellFailure(error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  tell({ type: 'failed', message: `${reason}\n--- postgres log (last lines) ---\n${log.join('\n')}` });
}
