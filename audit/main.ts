// `npm start`: the leak audit. Starts PostgreSQL (or uses DATABASE_URL), runs every framework's
// example app unguarded and guarded, prints the table, writes the HTML report, and leaves nothing
// behind — also on Ctrl-C and on errors. Exit code: 0 clean, 1 a guarded run leaked (or the audit
// failed), 2 a bad option, 130 interrupted.
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { guardedLeaks, runAudit, type KeptServer } from './audit.ts';
import { HELP, parseCommand, type CliOptions } from './cli.ts';
import { openDatabase, type Database } from './database.ts';
import { createProgress } from './progress.ts';
import { writeReport } from './report.ts';
import { formatTable } from './table.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXIT = { ok: 0, leaked: 1, failed: 1, usage: 2, interrupted: 130 } as const;
/** A signal this soon after the first is the same Ctrl-C, forwarded again (by npm, ~30 ms later). */
const REPEATED_SIGNAL_MS = 1_000;

async function main(argv: readonly string[]): Promise<number> {
  const command = parseCommand(argv);
  if (command.kind === 'help') {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  if (command.kind === 'usage-error') {
    process.stderr.write(`closeguard audit: ${command.message}\nRun \`npm start -- --help\` for the options.\n`);
    return EXIT.usage;
  }
  return audit(command.options);
}

async function audit(options: CliOptions): Promise<number> {
  const progress = createProgress(process.stderr);
  const controller = new AbortController();
  let database: Database | undefined;
  let kept: KeptServer[] = [];
  let serving: (() => void) | undefined;
  let firstSignalAt: number | undefined;
  const cleanUp = async (): Promise<void> => {
    await Promise.allSettled(kept.map((server) => server.close()));
    await database?.stop();
  };
  const onSignal = (): void => {
    if (firstSignalAt !== undefined) {
      // npm forwards the terminal's Ctrl-C again: only a second Ctrl-C of the user's means "leave
      // now" (the supervisor still removes PostgreSQL).
      if (performance.now() - firstSignalAt > REPEATED_SIGNAL_MS) process.exit(EXIT.interrupted);
      return;
    }
    firstSignalAt = performance.now();
    if (serving) return serving(); // --serve: Ctrl-C ends the wait, and cleanup runs as usual
    progress.stop();
    process.stderr.write('\nInterrupted: stopping the apps and PostgreSQL…\n');
    controller.abort();
    void cleanUp().finally(() => process.exit(EXIT.interrupted));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    process.stderr.write(process.env.DATABASE_URL ? 'Using DATABASE_URL.\n' : 'Starting an embedded PostgreSQL…\n');
    database = await openDatabase(ROOT);
    const started = performance.now();
    const settings = { requests: options.requests, concurrency: options.concurrency, poolMax: options.poolMax, acquireTimeoutMs: options.acquireTimeoutMs };
    const result = await runAudit({ ...settings, frameworks: options.frameworks, database, progress, signal: controller.signal, keepGuarded: options.serve });
    kept = result.kept;
    progress.stop();
    process.stdout.write(`\n${formatTable(result.results)}\n\n`);
    const path = await writeReport(options.reportDir, { results: result.results, settings, database: database.origin, finishedAt: new Date() });
    process.stdout.write(`Report: ${path}  (audit ran ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
    const leaking = guardedLeaks(result.results);
    process.stdout.write(leaking.length === 0
      ? 'Guarded: no connection leaked. Unguarded: see the leaked columns.\n'
      : `FAILED: guarded runs leaked: ${leaking.map((run) => `${run.framework} (${run.leaked} borrowed, ${run.backends} backends)`).join(', ')}\n`);
    if (options.serve) await serve(kept, (stop) => (serving = stop));
    return leaking.length === 0 ? EXIT.ok : EXIT.leaked;
  } catch (error) {
    progress.stop();
    if (controller.signal.aborted) return new Promise<number>(() => undefined); // onSignal exits once cleaned up
    // inspect() prints the causes too: why PostgreSQL did not start is in the launcher's cause.
    process.stderr.write(`closeguard audit failed: ${inspect(error)}\n`);
    return EXIT.failed;
  } finally {
    if (!controller.signal.aborted) await cleanUp();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

/** Prints where the guarded apps listen and waits for Ctrl-C. */
async function serve(kept: readonly KeptServer[], onStop: (stop: () => void) => void): Promise<void> {
  const lines = kept.map((server) => `  ${server.framework.padEnd(8)} http://127.0.0.1:${server.port}/accounts/42`);
  process.stdout.write(`\nGuarded apps, until Ctrl-C (try /search?q=^account-a, /export?rows=5, POST /transfer?amount=0):\n${lines.join('\n')}\n`);
  await new Promise<void>((resolve) => onStop(resolve));
  process.stderr.write('\nStopping the apps and PostgreSQL…\n');
}

process.exitCode = await main(process.argv.slice(2));
