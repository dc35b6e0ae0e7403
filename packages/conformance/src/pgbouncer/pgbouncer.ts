// A throwaway PgBouncer in front of a PostgreSQL: its own directory (config, auth file, pidfile), a
// free loopback port, started in the foreground as this process's child and stopped by its pid.
//
// PgBouncer refuses to run as root: under root it runs as `nobody` (`-u nobody`, which it switches
// to after reading its config). Its directory then belongs to `nobody`, in a temporary folder that
// `nobody` can reach: never inside the checkout, which may sit in a private folder (/root: 0700).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { authFile, parseUpstream, pgbouncerIni, urlThrough, type PoolMode } from './config.ts';
import { ensurePgBouncer } from './install.ts';
import { freePort, reachableTmpdir, unprivilegedAccount, type Account } from './places.ts';

/** What to put PgBouncer in front of, and how it pools. */
export interface PgBouncerOptions {
  /** The server's `postgres://user:password@host:port/database`: clients log in as that user, to that database. */
  readonly upstreamUrl: string;
  /** Default `'transaction'`: a server connection per transaction, as most deployments run it. */
  readonly poolMode?: PoolMode;
  /** Server connections per user and database (`default_pool_size`). Default 20. */
  readonly poolSize?: number;
  /** More `[pgbouncer]` settings, written as given (`{ server_round_robin: 1 }`). */
  readonly settings?: Readonly<Record<string, string | number>>;
}

/** A running PgBouncer. `stop()` is idempotent. */
export interface RunningPgBouncer {
  /** The upstream's database through PgBouncer, as the upstream's user. */
  readonly url: string;
  /** PgBouncer's admin console (`SHOW POOLS`, `SHOW SERVERS`: simple queries only). */
  readonly adminUrl: string;
  readonly pid: number;
  /** The end of PgBouncer's log (it logs to stderr): what to quote when it misbehaved. */
  log(): string;
  /** False once PgBouncer exited, stopped or not (a FATAL error ends it). */
  isRunning(): boolean;
  /** Ends PgBouncer (immediate shutdown: its clients are cut) and removes its directory. */
  stop(): Promise<void>;
}

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 20;
/** How much of PgBouncer's log an error quotes. */
const OUTPUT_KEPT = 8_192;

/**
 * Starts PgBouncer (Debian's, installed if missing: see `ensurePgBouncer()`) in front of
 * `upstreamUrl` on a free port, and resolves once it accepts connections.
 * @throws Error with PgBouncer's output when it does not start.
 * @example
 * const bouncer = await startPgBouncer({ upstreamUrl: databaseUrl(), poolMode: 'transaction' });
 * try { … new pg.Pool({ connectionString: bouncer.url }) … } finally { await bouncer.stop(); }
 */
export async function startPgBouncer(options: PgBouncerOptions): Promise<RunningPgBouncer> {
  const upstream = parseUpstream(options.upstreamUrl);
  const binary = await ensurePgBouncer();
  const account = process.getuid?.() === 0 ? unprivilegedAccount() : undefined;
  const dir = await mkdtemp(join(await reachableTmpdir(account), 'closeguard-pgbouncer-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  try {
    const [authPath, iniPath] = [join(dir, 'users.txt'), join(dir, 'pgbouncer.ini')];
    await writePrivate(authPath, authFile(upstream), account);
    if (account) await chown(dir, account.uid, account.gid); // mkdtemp made it 0700: PgBouncer's alone
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      const places = { port, authFile: authPath, pidFile: join(dir, 'pgbouncer.pid') };
      await writePrivate(iniPath, pgbouncerIni(upstream, places, options.poolMode ?? 'transaction', options.poolSize ?? 20, options.settings ?? {}), account);
      const started = await run(binary, iniPath, port, account);
      if ('child' in started) {
        const stop = once(async () => {
          await kill(started.child);
          process.off('exit', removeDir);
          await rm(dir, { recursive: true, force: true });
        });
        return { url: urlThrough(upstream, port, upstream.database), adminUrl: urlThrough(upstream, port, 'pgbouncer'), pid: started.child.pid!, log: started.log, isRunning: () => isRunning(started.child), stop };
      }
      // Someone took the port between freePort() and PgBouncer's bind: another one.
      if (attempt === START_ATTEMPTS || !started.output.includes('Address already in use')) {
        throw new Error(`PgBouncer (${binary}) did not start: ${started.reason}\n${started.output}`);
      }
    }
  } catch (error) {
    process.off('exit', removeDir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A file only PgBouncer's account reads (it holds the server's password). */
async function writePrivate(path: string, text: string, account: Account | undefined): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  if (account) await chown(path, account.uid, account.gid);
}

type Started = { child: ChildProcess; log: () => string } | { reason: string; output: string };

/** Spawns PgBouncer and waits until its port accepts connections, or it exits. */
async function run(binary: string, iniPath: string, port: number, account: Account | undefined): Promise<Started> {
  const child = spawn(binary, [...(account ? ['-u', account.name] : []), iniPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEPT));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // Whatever happens to this process, PgBouncer does not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(`it exited (code ${code}, signal ${signal})`));
    child.once('error', (error) => resolve(error.message));
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const reason = await Promise.race([exited, accepts(port).then((ok) => (ok ? undefined : null))]);
    if (reason === undefined) return { child, log: () => output };
    if (reason !== null) return { reason, output };
    if (Date.now() > deadline) {
      await kill(child);
      return { reason: `its port ${port} refused connections for ${READY_TIMEOUT_MS} ms`, output };
    }
    await sleep(POLL_MS);
  }
}

/** Whether a TCP connection to 127.0.0.1:`port` opens. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM is PgBouncer's immediate shutdown; SIGKILL if it lingers. */
async function kill(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const lingering = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
  if (lingering) {
    child.kill('SIGKILL');
    await exited;
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}
