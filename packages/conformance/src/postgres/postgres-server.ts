// One PostgreSQL cluster in a directory: `initialise()` runs initdb, `start()` runs postgres until
// it accepts connections, `stop()` asks for a fast shutdown. The binaries, and the account they run
// as under root, come from `prepareBinaries` (postgres-binaries.ts). The supervisor owns the process:
// initdb and postgres stay in its process group, so they go when it goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Binaries } from './postgres-binaries.ts';

export interface ServerOptions {
  binaries: Binaries;
  /** Created by `initialise()`; its parent must exist and be the run's own directory. */
  databaseDir: string;
  port?: number;
  user: string;
  password: string;
  authMethod: 'scram-sha-256' | 'md5' | 'password';
  initdbFlags: string[];
  postgresFlags: string[];
  onLog(line: string): void;
}

const READY_LINE = 'database system is ready to accept connections';

export class PostgresServer {
  readonly #options: ServerOptions;
  #process: ChildProcess | undefined;

  constructor(options: ServerOptions) {
    this.#options = options;
  }

  /** Creates the cluster (initdb) in `databaseDir`, owned by the account postgres runs as. */
  async initialise(): Promise<void> {
    const { binaries, databaseDir, user, password, authMethod, initdbFlags } = this.#options;
    const passwordFile = join(dirname(databaseDir), 'initdb-password');
    await mkdir(databaseDir, { mode: 0o700 });
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (binaries.account) {
      await chown(databaseDir, binaries.account.uid, binaries.account.gid);
      await chown(passwordFile, binaries.account.uid, binaries.account.gid);
    }
    try {
      const args = [`--pgdata=${databaseDir}`, `--auth=${authMethod}`, `--username=${user}`, `--pwfile=${passwordFile}`, ...initdbFlags];
      const initdb = this.#spawn(binaries.initdb, args);
      const [code, signal] = await exited(initdb);
      if (code === null && signal === null) throw new Error('initdb could not be run; the log below says why');
      if (code !== 0) throw new Error(`initdb failed (code ${code}, signal ${signal}); its output is in the log below`);
    } finally {
      await rm(passwordFile, { force: true });
    }
  }

  /** Starts postgres on `port`; rejects if it exits before it accepts connections. */
  start(): Promise<void> {
    const { binaries, databaseDir, port, postgresFlags } = this.#options;
    return new Promise((resolve, reject) => {
      const args = ['-D', databaseDir, '-p', String(port ?? 5432), ...postgresFlags];
      const postgres = this.#spawn(binaries.postgres, args, (line) => {
        if (line.includes(READY_LINE)) resolve();
      });
      this.#process = postgres;
      void exited(postgres).then(([code, signal]) => {
        if (this.#process === postgres) this.#process = undefined;
        reject(new Error(`postgres exited (code ${code}, signal ${signal}) before it accepted connections`));
      });
    });
  }

  /** A fast shutdown (SIGINT: every session is ended); resolves when postgres has exited. Idempotent. */
  async stop(): Promise<void> {
    const postgres = this.#process;
    if (!postgres) return;
    const exit = exited(postgres);
    postgres.kill('SIGINT');
    await exit;
    if (this.#process === postgres) this.#process = undefined;
  }

  /** Runs a binary as the account; each line of its output goes to the log, then to `onLine`. */
  #spawn(file: string, args: string[], onLine?: (line: string) => void): ChildProcess {
    const { binaries } = this.#options;
    const log = (line: string) => this.#options.onLog(line);
    const child = spawn(file, args, {
      // Its own directory, not ours: the account may not be able to enter the checkout.
      cwd: dirname(this.#options.databaseDir),
      env: { ...binaries.env, LC_MESSAGES: 'C' }, // the ready line is matched in English
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(binaries.account && { uid: binaries.account.uid, gid: binaries.account.gid }),
    });
    child.on('error', (error) => log(`${file}: ${cannotRun(error, binaries)}`));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        log(line);
        onLine?.(line);
      });
    }
    return child;
  }
}

/**
 * Resolves with the exit code and signal once the process is gone and its output read ('close'),
 * or with [null, null] when the binary could not be started.
 */
function exited(child: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  return new Promise((resolve) => {
    child.once('close', (code, signal) => resolve([code, signal]));
    child.once('error', () => resolve([null, null]));
  });
}

/** What to do when the binary could not be run at all. */
function cannotRun(error: NodeJS.ErrnoException, binaries: Binaries): string {
  if (error.code !== 'EACCES' || !binaries.account) return String(error);
  return (
    `${String(error)}. As root, initdb and postgres run as '${binaries.account.name}' from a copy in the temporary folder: ` +
    `every folder above it must let others in, and its file system must allow running programs (not mounted noexec). ` +
    `Point TMPDIR at such a folder, run as a normal user, or set DATABASE_URL to a running server.`
  );
}
