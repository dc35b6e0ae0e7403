// The PgBouncer tests run through Debian's pgbouncer (issue 16 asks for the real one). A fresh
// machine of this project's kind does not have it, and npm has no PgBouncer: so, as the report test
// does for Chromium, the tests install Debian's package themselves when they may (as root, or with
// password-less sudo), and otherwise fail saying how to install it.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian's `pgbouncer` package puts the binary. */
export const PGBOUNCER = '/usr/sbin/pgbouncer';
/** apt-get update and the install take well under a minute on this kind of machine; bounded anyway. */
const INSTALL_TIMEOUT_MS = 600_000;

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false);
}

/** How to run a command as root here: directly, through password-less sudo, or not at all. */
async function asRoot(): Promise<string[] | undefined> {
  if (process.getuid?.() === 0) return [];
  const sudo = await run('sudo', ['-n', 'true']).then(() => true, () => false);
  return sudo ? ['sudo', '-n'] : undefined;
}

let installing: Promise<string> | undefined;

/**
 * Resolves to PgBouncer's path once it is installed (Debian's `pgbouncer`, installed with apt-get
 * when missing and this process is root or has password-less sudo).
 * @throws Error naming the command to run, when it is missing and this process may not install it.
 */
export function ensurePgBouncer(): Promise<string> {
  return (installing ??= install().finally(() => {
    installing = undefined;
  }));
}

async function install(): Promise<string> {
  if (await isExecutable(PGBOUNCER)) return PGBOUNCER;
  const prefix = await asRoot();
  if (prefix === undefined || !(await isExecutable('/usr/bin/apt-get'))) {
    throw new Error(`the PgBouncer tests run through Debian's PgBouncer, and ${PGBOUNCER} is missing: install it with \`sudo apt-get install pgbouncer\`, then run the tests again`);
  }
  console.log(`${PGBOUNCER} is missing: installing Debian's pgbouncer package for the PgBouncer tests (apt-get)`);
  const apt = (...args: string[]) => {
    const [command = 'apt-get', ...rest] = [...prefix, 'apt-get', ...args];
    return run(command, rest, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  };
  // Test files run in parallel workers: a second install waits for the first one's dpkg lock.
  await apt('update', '-qq', '-o', 'DPkg::Lock::Timeout=300');
  await apt('install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', 'pgbouncer');
  if (!(await isExecutable(PGBOUNCER))) throw new Error(`apt-get installed pgbouncer, but ${PGBOUNCER} is still missing`);
  return PGBOUNCER;
}
