// Prisma 7's client for test/orm/prisma.test.ts, generated offline from prisma/schema.prisma into
// node_modules/.cache (gitignored, out of tsc's and eslint's way) and compiled to JavaScript there,
// since Node loads files under node_modules itself. Generated again only when the schema or
// Prisma's version changes.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA = fileURLToPath(new URL('./prisma/schema.prisma', import.meta.url));
const OUTPUT = join(ROOT, 'node_modules/.cache/closeguard-orm/prisma'); // the schema's `output`
const STAMP = join(OUTPUT, '.schema-hash');

/** The part of the generated client the tests use. */
export interface PrismaItems {
  item: { create(args: { data: { name: string } }): Promise<unknown> };
  $executeRawUnsafe(query: string): Promise<number>;
  $queryRawUnsafe<T = unknown>(query: string): Promise<T>;
}

export interface PrismaLike extends PrismaItems {
  $transaction<T>(run: (tx: PrismaItems) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}

export type PrismaClientClass = new (options: { adapter: unknown }) => PrismaLike;

/** Generates the client if needed and loads its `PrismaClient` class. */
export async function loadPrismaClient(): Promise<PrismaClientClass> {
  const require = createRequire(import.meta.url);
  const cli = require.resolve('prisma/build/index.js');
  const { version } = require('prisma/package.json') as { version: string };
  const hash = createHash('sha256').update(await readFile(SCHEMA)).update(version).digest('hex');
  const fresh = existsSync(STAMP) && (await readFile(STAMP, 'utf8')) === hash;
  if (!fresh) {
    // Generate never runs the schema engine, but the CLI looks for it first and would download it.
    await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', SCHEMA], {
      cwd: ROOT,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    });
    await compile(OUTPUT);
    await writeFile(join(OUTPUT, 'package.json'), '{ "type": "module" }\n');
    await writeFile(STAMP, hash);
  }
  const module = (await import(pathToFileURL(join(OUTPUT, 'client.js')).href)) as { PrismaClient: PrismaClientClass };
  return module.PrismaClient;
}

/** Compiles every generated .ts file beside itself to .js (types stripped, imports already say .js). */
async function compile(directory: string): Promise<void> {
  for (const entry of await readdir(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    await writeFile(file.replace(/\.ts$/, '.js'), outputText);
  }
}
