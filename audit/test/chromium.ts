// The report test renders the page in Debian's Chromium (issue 5 asks for a real browser). A fresh
// machine of this project's kind does not have it until the project installs it, and the npm
// registry has no Chromium that installs without a download of its own: so the test installs
// Debian's package itself when it may (as root, or with password-less sudo), and otherwise fails
// saying how to install it.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';
/** apt-get update and the install take about a minute on this kind of machine. */
export const INSTALL_TIMEOUT_MS = 600_000;

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false);
}

/** How to run a command as root here: directly, through password-less sudo, or not at all. */
async function asRoot(): Promise<string[] | undefined> {
  if (process.getuid?.() === 0) return [];
  const sudo = await run('sudo', ['-n', 'true']).then(() => true, () => false);
  return sudo ? ['sudo', '-n'] : undefined;
}

/**
 * Resolves to Chromium's path once it is installed.
 * @throws Error naming the command to run, when it is missing and this process may not install it.
 */
export async function ensureChromium(): Promise<string> {
  if (await isExecutable(CHROMIUM)) return CHROMIUM;
  const prefix = await asRoot();
  if (prefix === undefined || !(await isExecutable('/usr/bin/apt-get'))) {
    throw new Error(`the report test renders the page in Debian's Chromium, and ${CHROMIUM} is missing: install it with \`sudo apt-get install chromium\`, then run the tests again`);
  }
  console.log(`${CHROMIUM} is missing: installing Debian's chromium package for the report test (apt-get, about a minute)`);
  const apt = (...args: string[]) => {
    const [command = 'apt-get', ...rest] = [...prefix, 'apt-get', ...args];
    return run(command, rest, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  };
  await apt('update', '-qq');
  await apt('install', '-y', '-qq', '--no-install-recommends', 'chromium');
  if (!(await isExecutable(CHROMIUM))) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}
