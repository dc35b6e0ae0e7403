// The embedded PostgreSQL must start whoever runs the tests and wherever the checkout is: as root in
// a private folder (/root/app, a `mktemp -d` folder: 0700), where `nobody` cannot enter.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBinaries } from '../src/postgres/postgres-binaries.ts';
import { launchPostgres, type LaunchedPostgres } from '../src/postgres/postgres-launcher.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('launchPostgres(cwd)', () => {
  describe('from a checkout in a folder only its owner can enter', () => {
    let folder: string;
    let postgres: LaunchedPostgres;

    beforeAll(async () => {
      // mkdtemp makes the folder 0700. The checkout in it reaches this repository's packages
      // through a link, as `--import tsx` resolves them from `cwd`.
      folder = await mkdtemp(join(tmpdir(), 'closeguard-private-'));
      const checkout = join(folder, 'app');
      await mkdir(checkout);
      await symlink(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
      postgres = await launchPostgres(checkout);
    });

    afterAll(async () => {
      await postgres?.stop();
      await rm(folder, { recursive: true, force: true });
    });

    it('starts a PostgreSQL that answers', async () => {
      expect(await withBackend(postgres.url, () => Promise.resolve('answered'))).toBe('answered');
    });

    it('runs it as nobody under root (initdb and postgres refuse root), else as this user', async () => {
      const expected = process.getuid?.() === 0 ? Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })) : process.getuid?.();
      expect(await withBackend(postgres.url, ownerOf)).toBe(expected);
    });
  });
});

describe('prepareBinaries(dir)', () => {
  // npm may skip the package's install script, which makes libicuuc.so.60 → libicuuc.so.60.2 and
  // the like; postgres cannot load without them, so they are made in `dir` and must lead somewhere.
  it('makes library links that each lead to a library', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'closeguard-binaries-'));
    try {
      const binaries = await prepareBinaries(dir);
      const links = await readdir(join(dir, 'lib'));
      expect(links).toContain('libicuuc.so.60');
      const targets = await Promise.all(links.map((name) => stat(join(dir, 'lib', name))));
      expect(targets.every((target) => target.isFile())).toBe(true);
      expect(binaries.env.LD_LIBRARY_PATH?.split(':')[0]).toBe(join(dir, 'lib'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Connects, and hands `use` the pid of the server process serving this connection while it lives. */
async function withBackend<T>(url: string, use: (pid: number) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return await use(result.rows[0]!.pid);
  } finally {
    await client.end();
  }
}

/** The real uid of a process, from /proc/<pid>/status ("Uid:\treal\teffective\t…"). */
async function ownerOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}
