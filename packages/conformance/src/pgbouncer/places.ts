// Who PgBouncer runs as, where its files go, and which port it listens on.
import { execFileSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';

/** The account PgBouncer runs as when this process is root. */
export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const UNPRIVILEGED = 'nobody';

/**
 * `nobody`'s ids.
 * @throws Error saying what to do when the machine has no such account.
 */
export function unprivilegedAccount(): Account {
  try {
    const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, UNPRIVILEGED], { encoding: 'utf8', stdio: 'pipe' }), 10);
    return { name: UNPRIVILEGED, uid: id('-u'), gid: id('-g') };
  } catch (error) {
    throw new Error(
      `PgBouncer refuses to run as root, and this machine has no '${UNPRIVILEGED}' account to run it as. ` +
        `Create it (useradd --system --no-create-home ${UNPRIVILEGED}) or run the tests as a normal user.`,
      { cause: error },
    );
  }
}

/**
 * A temporary folder `account` can walk into: the system's (TMPDIR), unless one of its folders
 * shuts the account out (a TMPDIR under /root), then /tmp. This process's own user can always.
 * @throws Error when neither is reachable.
 */
export async function reachableTmpdir(account: Account | undefined): Promise<string> {
  if (!account) return tmpdir();
  for (const candidate of [tmpdir(), '/tmp']) if (await isReachable(candidate, account)) return candidate;
  throw new Error(`PgBouncer runs as '${account.name}' under root, and neither ${tmpdir()} nor /tmp lets it in: point TMPDIR at a folder it can enter (chmod o+x on each folder of the path)`);
}

/** Whether `account` may enter every folder from / down to `path` (the search bit its ids get). */
async function isReachable(path: string, account: Account): Promise<boolean> {
  for (let folder = resolve(path); ; folder = dirname(folder)) {
    const found = await stat(folder).catch(() => undefined);
    if (!found?.isDirectory()) return false;
    const bit = found.uid === account.uid ? 0o100 : found.gid === account.gid ? 0o010 : 0o001;
    if ((found.mode & bit) === 0) return false;
    if (folder === dirname(folder)) return true;
  }
}

/** A loopback port nobody listens on right now (a race with the next bind: the caller retries). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done, fail) => probe.once('error', fail).listen(0, '127.0.0.1', done));
  const address = probe.address();
  await new Promise((done) => probe.close(done));
  if (address === null || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}
