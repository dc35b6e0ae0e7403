// Progress on stderr: a bar on a terminal, plain lines otherwise (CI logs, pipes).
import cliProgress from 'cli-progress';
import type { ProgressSink } from './audit.ts';
import type { RunResult } from './run.ts';

/** Plain mode prints a line each time a run passes another quarter of its requests. */
const PLAIN_STEPS = 4;

export interface Progress extends ProgressSink {
  /** Takes the bar off the screen (also on Ctrl-C). */
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  return stream.isTTY ? barProgress(stream) : plainProgress(stream);
}

function barProgress(stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar(
    { stream, format: ' {bar} {percentage}% | {value}/{total} requests | {run}', hideCursor: true, clearOnComplete: true, fps: 12 },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  let active = false;
  return {
    begin(total) {
      bar.start(total, 0, { run: 'starting' });
      active = true;
    },
    runStarted(framework, mode) {
      bar.update({ run: `${framework} ${mode}` });
    },
    requestDone() {
      bar.update(++done);
    },
    runFinished(result) {
      bar.update({ run: `${result.framework} ${result.mode}: settling` });
    },
    stop() {
      if (active) bar.stop();
      active = false;
    },
  };
}

function plainProgress(stream: NodeJS.WriteStream): Progress {
  let run = 0;
  let runs = 0;
  let done = 0;
  let requestsPerRun = 0;
  const write = (line: string): void => void stream.write(`${line}\n`);
  return {
    begin(_total, runCount) {
      runs = runCount;
    },
    runStarted(framework, mode, requests) {
      done = 0;
      requestsPerRun = requests;
      write(`[${++run}/${runs}] ${framework} ${mode}: started`);
    },
    requestDone() {
      done++;
      const step = Math.max(1, Math.ceil(requestsPerRun / PLAIN_STEPS));
      if (done % step === 0 && done < requestsPerRun) write(`  ${done}/${requestsPerRun} requests`);
    },
    runFinished(result) {
      write(`  done: ${result.requests} requests, ${result.serverErrors} 5xx, ${summaryOf(result)}`);
    },
    stop() {},
  };
}

function summaryOf(result: RunResult): string {
  return `${result.leaked} connection(s) leaked, ${(result.durationMs / 1000).toFixed(1)} s`;
}
