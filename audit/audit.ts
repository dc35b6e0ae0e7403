// The audit: for each framework, the example app unguarded then guarded, under the same load.
import { requestsFor } from './apps/index.ts';
import { MODES, type ExampleServer, type Framework, type Mode } from './apps/types.ts';
import type { Database } from './database.ts';
import { runOnce, type RunResult, type RunSettings } from './run.ts';

/** What the audit tells whoever shows its progress. */
export interface ProgressSink {
  /** Before the first run: how many requests the whole audit sends, in how many runs. */
  begin(totalRequests: number, runs: number): void;
  /** A run starts, which sends `requests`. */
  runStarted(framework: Framework, mode: Mode, requests: number): void;
  requestDone(): void;
  runFinished(result: RunResult): void;
}

export interface AuditOptions extends RunSettings {
  frameworks: readonly Framework[];
  database: Database;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Keep each guarded app running after its run (for --serve). */
  keepGuarded?: boolean;
}

/** A guarded example app left running. */
export interface KeptServer extends ExampleServer {
  framework: Framework;
}

export interface AuditResult {
  results: RunResult[];
  kept: KeptServer[];
}

/** Runs every framework in both modes, one run at a time (so runs do not share the CPU). */
export async function runAudit(options: AuditOptions): Promise<AuditResult> {
  const { progress } = options;
  const results: RunResult[] = [];
  const kept: KeptServer[] = [];
  const perRun = options.frameworks.map((framework) => requestsFor(framework, options.requests));
  progress?.begin(perRun.reduce((sum, count) => sum + count, 0) * MODES.length, options.frameworks.length * MODES.length);
  try {
    for (const framework of options.frameworks) {
      for (const mode of MODES) {
        options.signal?.throwIfAborted();
        progress?.runStarted(framework, mode, requestsFor(framework, options.requests));
        const run = await runOnce({
          ...options,
          framework,
          mode,
          keep: mode === 'guarded' && options.keepGuarded === true,
          onOutcome: () => progress?.requestDone(),
        });
        options.signal?.throwIfAborted();
        results.push(run.result);
        if (run.kept) kept.push({ ...run.kept, framework });
        progress?.runFinished(run.result);
      }
    }
  } catch (error) {
    await Promise.all(kept.map((server) => server.close()));
    throw error;
  }
  return { results, kept };
}

/** Whether a guarded run left a connection borrowed or a backend behind: the audit fails. */
export function guardedLeaks(results: readonly RunResult[]): RunResult[] {
  return results.filter((result) => result.mode === 'guarded' && (result.leaked > 0 || result.backends > 0));
}
