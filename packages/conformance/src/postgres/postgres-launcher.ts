// Starts `postgres-supervisor.ts` in its own detached process and waits until its PostgreSQL is
// ready. The supervisor owns the server and its directory and removes both when the IPC channel
// closes: when `stop()` closes it, or when this process dies, however it dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandReply, SupervisorCommand, SupervisorMessage } from './postgres-supervisor.ts';

/** A running throwaway server. `stop()` is idempotent. */
export interface LaunchedPostgres {
  url: string;
  initdbMs: number;
  startMs: number;
  stop(): Promise<void>;
  /** Stops the server as a restart does (a fast shutdown ends every session), keeping its data and port. */
  stopServer(): Promise<void>;
  /** Starts it again after `stopServer()`, on the same port and data; resolves once it accepts connections. */
  startServer(): Promise<void>;
  /** `stopServer()` then `startServer()`. */
  restart(): Promise<void>;
}

// From source (.ts, run through tsx) or from the built package (.js).
const OWN_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const SUPERVISOR = fileURLToPath(new URL(`./postgres-supervisor${OWN_EXTENSION}`, import.meta.url));
const SUPERVISOR_ARGS = OWN_EXTENSION === '.ts' ? ['--import', 'tsx', SUPERVISOR] : [SUPERVISOR];
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 8_000;

/**
 * Starts a fresh PostgreSQL in a new temporary directory on a free loopback port.
 * `cwd` must let `--import tsx` resolve (the repository root).
 */
export async function launchPostgres(cwd: string): Promise<LaunchedPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'closeguard-pg-'));
  // The supervisor runs as this process's user, so it loads from the checkout wherever that is.
  // Under root it runs only initdb and postgres as an unprivileged account (postgres-binaries.ts).
  // The supervisor's own output goes to a file: a pipe to a dead parent would kill it with EPIPE.
  const logPath = join(dir, 'supervisor.log');
  const logFd = openSync(logPath, 'w');
  const child = spawn(process.execPath, [...SUPERVISOR_ARGS, dir, String(process.pid)], {
    cwd,
    detached: true,
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: { ...process.env, HOME: dir, TMPDIR: dir },
  });
  closeSync(logFd);
  try {
    const ready = await whenReady(child);
    const stopServer = () => command(child, { type: 'stop-server' });
    const startServer = () => command(child, { type: 'start-server' });
    const restart = () => stopServer().then(startServer);
    return { url: ready.url, initdbMs: ready.initdbMs, startMs: ready.startMs, stop: once(() => stopSupervisor(child, dir)), stopServer, startServer, restart };
  } catch (error) {
    const output = readOutput(logPath);
    await stopSupervisor(child, dir);
    const message = 'Could not start PostgreSQL for the tests; or set DATABASE_URL to use a running server. The cause follows.';
    throw new Error(output ? `${message}\n${output}` : message, { cause: error });
  }
}

function whenReady(child: ChildProcess): Promise<Extract<SupervisorMessage, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const settle = () => {
      clearTimeout(timer);
      child.off('message', onMessage).off('exit', onExit).off('error', onError);
    };
    const onMessage = (message: SupervisorMessage) => {
      settle();
      if (message.type === 'ready') resolve(message);
      else reject(new Error(message.message));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      settle();
      reject(new Error(`the supervisor exited (code ${code}, signal ${signal}) before PostgreSQL was ready`));
    };
    const onError = (error: Error) => {
      settle();
      reject(error);
    };
    child.on('message', onMessage).on('exit', onExit).on('error', onError);
  });
}

/** Sends the supervisor a command and waits for its reply (one command at a time). */
function command(child: ChildProcess, sent: SupervisorCommand): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      clearTimeout(timer);
      child.off('message', onReply).off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => settle(new Error(`${sent.type}: no answer after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const onReply = (reply: CommandReply) => settle(reply.type === 'failed' ? new Error(reply.message) : undefined);
    const onExit = () => settle(new Error(`${sent.type}: the supervisor exited`));
    child.on('message', onReply).on('exit', onExit);
    if (!child.connected) return settle(new Error(`${sent.type}: the supervisor is stopped`));
    child.send(sent);
  });
}

/**
 * Closing the IPC channel is the stop command (the same signal a dead parent gives). Waits for the
 * supervisor to exit; if it does not in time, it finishes the cleanup alone.
 */
async function stopSupervisor(child: ChildProcess, dir: string): Promise<void> {
  const running = child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  if (running) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.connected) child.disconnect();
    const timedOut = await Promise.race([exited.then(() => false), delay(STOP_TIMEOUT_MS).then(() => true)]);
    // Still running: it will finish on its own, and removing the directory under postgres would not help.
    if (timedOut) return;
  } else {
    quitOrphanedPostmaster(dir);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}

/** A supervisor killed outright (SIGKILL) leaves its postmaster running: end it (immediate shutdown). */
function quitOrphanedPostmaster(dir: string): void {
  try {
    const pid = Number.parseInt(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8'), 10);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    // No pid file, or no such process: no server is left.
  }
}

/** The supervisor's own output (e.g. a module that failed to load); the file may be gone already. */
function readOutput(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
