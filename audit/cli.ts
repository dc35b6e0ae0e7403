// The command line: `npm start -- [options]`, parsed with node:util parseArgs.
import { parseArgs } from 'node:util';
import { ORM_MAX_REQUESTS } from './apps/index.ts';
import { FRAMEWORKS, type Framework } from './apps/types.ts';

export interface CliOptions {
  requests: number;
  concurrency: number;
  poolMax: number;
  acquireTimeoutMs: number;
  frameworks: Framework[];
  serve: boolean;
  reportDir: string;
}

export const DEFAULTS: Readonly<CliOptions> = {
  requests: 200,
  concurrency: 10,
  poolMax: 5,
  acquireTimeoutMs: 300,
  frameworks: [...FRAMEWORKS],
  serve: false,
  reportDir: 'report',
};

/** What the command line asks for: a run, the help text, or a usage error (exit code 2). */
export type Command = { kind: 'run'; options: CliOptions } | { kind: 'help' } | { kind: 'usage-error'; message: string };

export const HELP = `Usage: npm start -- [options]

A leak audit on a real PostgreSQL: for each framework, an example app written by hand (acquire and
release, release not in a finally) and the same app with closeguard's adapter run under the same
load and the same injected faults; then how many connections each left borrowed. Last, the app on
Express written with Drizzle ORM, on a plain pg.Pool and on a GuardedPool given to the guard.
PostgreSQL: DATABASE_URL when set, else an embedded server started and removed by the audit.

Options:
  --requests <n>        requests per run (default ${DEFAULTS.requests}); drizzle's runs send at most ${ORM_MAX_REQUESTS}
  --concurrency <n>     requests in flight at once (default ${DEFAULTS.concurrency})
  --pool-max <n>        connections each run's pool may open (default ${DEFAULTS.poolMax})
  --acquire-timeout <ms>  how long a request waits for a connection before its app answers an
                        error (default ${DEFAULTS.acquireTimeoutMs})
  --framework <name>    express, fastify, koa or drizzle (Express with Drizzle ORM); repeat it or
                        give a comma list (default: all)
  --report <dir>        where the HTML report goes (default ${DEFAULTS.reportDir}/)
  --serve               after the audit, keep the guarded apps running until Ctrl-C
  -h, --help            this text

Exits 1 when a guarded run leaked, 2 on a bad option.`;

/** Parses `argv` (without node and the script); never throws. */
export function parseCommand(argv: readonly string[]): Command {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        requests: { type: 'string' },
        concurrency: { type: 'string' },
        'pool-max': { type: 'string' },
        'acquire-timeout': { type: 'string' },
        framework: { type: 'string', multiple: true },
        report: { type: 'string' },
        serve: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return { kind: 'usage-error', message: (error as Error).message };
  }
  if (values.help === true) return { kind: 'help' };
  try {
    return {
      kind: 'run',
      options: {
        requests: count('--requests', values.requests, DEFAULTS.requests, 1),
        concurrency: count('--concurrency', values.concurrency, DEFAULTS.concurrency, 1),
        poolMax: count('--pool-max', values['pool-max'], DEFAULTS.poolMax, 1),
        acquireTimeoutMs: count('--acquire-timeout', values['acquire-timeout'], DEFAULTS.acquireTimeoutMs, 1),
        frameworks: frameworks(values.framework),
        serve: values.serve === true,
        reportDir: reportDir(values.report),
      },
    };
  } catch (error) {
    return { kind: 'usage-error', message: (error as Error).message };
  }
}

function count(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min) {
    throw new Error(`${name} takes a whole number ≥ ${min}; received '${value}'`);
  }
  return parsed;
}

function frameworks(given: string[] | undefined): Framework[] {
  if (given === undefined) return [...DEFAULTS.frameworks];
  const names = given.flatMap((item) => item.split(',')).map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
  const unknown = names.filter((name) => !(FRAMEWORKS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`--framework takes ${FRAMEWORKS.join(', ')}; received '${unknown.join("', '")}'`);
  if (names.length === 0) throw new Error(`--framework takes ${FRAMEWORKS.join(', ')}; received nothing`);
  // In the order the audit always runs them, each once.
  return FRAMEWORKS.filter((name) => names.includes(name));
}

function reportDir(given: string | undefined): string {
  if (given === undefined) return DEFAULTS.reportDir;
  if (given.trim() === '') throw new Error('--report takes a directory; received an empty string');
  return given;
}
