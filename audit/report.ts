// The HTML report: one self-contained file (inline CSS and SVG, no script, no network).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { escapeXml as escape, renderChart } from './chart.ts';
import { requestsFor } from './apps/index.ts';
import { SAMPLE_EVERY_MS } from './sampler.ts';
import type { RunResult, RunSettings } from './run.ts';
import { HEADERS, tableRows } from './table.ts';
import { renderWhatRan } from './what-ran.ts';

export interface ReportInput {
  results: readonly RunResult[];
  settings: RunSettings;
  /** Where PostgreSQL came from. */
  database: string;
  finishedAt: Date;
}

const COLORS = { unguarded: '#c0392b', guarded: '#1e8449' } as const;

const STYLE = `
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 1160px; padding: 0 1rem; color: #1c2833; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.lead { color: #515a5a; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #d5d8dc; padding: .35rem .5rem; font-size: 14px; text-align: right; white-space: nowrap; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
td.leak { color: ${COLORS.unguarded}; font-weight: 600; } td.clean { color: ${COLORS.guarded}; font-weight: 600; }
.runs { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 1rem 1.5rem; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .2rem; }
figcaption span { font-weight: 400; color: #515a5a; }
.chart { width: 100%; height: auto; background: #fbfcfc; border: 1px solid #e5e8e8; }
.chart .grid { stroke: #e5e8e8; } .chart .axis { font-size: 11px; fill: #707b7c; }
.chart .max { stroke: #7f8c8d; stroke-dasharray: 5 4; } .chart .max-label { font-size: 11px; fill: #7f8c8d; }
ul { padding-left: 1.2rem; } code { font-size: .92em; }
.verdict.fail { color: ${COLORS.unguarded}; } .verdict.pass { color: ${COLORS.guarded}; }
`;

export function renderReport(input: ReportInput): string {
  const { results, settings } = input;
  const leaking = results.filter((result) => result.mode === 'guarded' && (result.leaked > 0 || result.backends > 0));
  const verdict = leaking.length === 0
    ? '<p class="verdict pass">Every guarded run gave back every connection.</p>'
    : `<p class="verdict fail">Guarded runs that leaked: ${leaking.map((r) => escape(r.framework)).join(', ')}.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>closeguard leak audit</title>
<style>${STYLE}</style>
</head>
<body>
<h1>closeguard leak audit</h1>
<p class="lead">${settings.requests} requests per run${ormRequests(results, settings)}, ${settings.concurrency} at once, pool max ${settings.poolMax},
acquire timeout ${settings.acquireTimeoutMs} ms; ${escape(input.database)}; ${escape(input.finishedAt.toISOString())}.</p>
${verdict}
<h2>Results</h2>
${renderTable(results)}
<p>Leaked: connections still borrowed from the pool once the run settled. Backends: the
PostgreSQL backends still connected for them (<code>pg_stat_activity</code> by <code>application_name</code>);
under each chart, how many of those sit idle in a transaction, open or aborted.
Peak: the most connections borrowed at once, of the pool's max. 5xx: answers with a 5xx status, by status (503: no connection within the acquire timeout, or shed by closeguard's backpressure). Latency counts answered requests only.</p>
<h2>Borrowed connections over time</h2>
<p>Sampled every ${SAMPLE_EVERY_MS} ms from the first request until the pool settled; the two runs of a framework share a time axis.</p>
<div class="runs">
${results.map((result) => renderRun(result, endOf(results, result))).join('\n')}
</div>
<h2>What ran</h2>
${renderWhatRan(results)}
</body>
</html>
`;
}

/** The Drizzle app's runs are shorter than --requests: say so. */
function ormRequests(results: readonly RunResult[], settings: RunSettings): string {
  const orm = requestsFor('drizzle', settings.requests);
  return results.some((result) => result.framework === 'drizzle') && orm < settings.requests ? ` (${orm} for drizzle)` : '';
}

function renderTable(results: readonly RunResult[]): string {
  const head = `<tr>${HEADERS.map((header) => `<th>${escape(header)}</th>`).join('')}</tr>`;
  const rows = tableRows(results).map((row, index) =>
    `<tr class="${results[index]!.mode}">${row.map((cell, column) => `<td${leakClass(column, cell)}>${escape(cell)}</td>`).join('')}</tr>`);
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

/** Runs of one framework share a time axis: the guarded run is over while the unguarded one still stalls. */
function endOf(results: readonly RunResult[], result: RunResult): number {
  return Math.max(...results.filter((other) => other.framework === result.framework).map((other) => other.durationMs));
}

/** The leaked and backends cells: red when not 0. */
function leakClass(column: number, cell: string): string {
  if (column !== HEADERS.indexOf('leaked') && column !== HEADERS.indexOf('backends')) return '';
  return cell === '0' ? ' class="clean"' : ' class="leak"';
}

function renderRun(result: RunResult, endMs: number): string {
  const title = `${result.framework} ${result.mode}`;
  const idle = result.idleInTransaction > 0 ? ` (${result.idleInTransaction} idle in transaction)` : '';
  const note = `${result.leaked} leaked${idle}, peak ${result.peak}/${result.poolMax}, ${result.serverErrors} 5xx, ${(result.durationMs / 1000).toFixed(1)} s`;
  return `<figure class="run ${result.mode}"><figcaption>${escape(title)} <span>— ${escape(note)}</span></figcaption>
${renderChart(result.samples, { title: `${title}: borrowed connections over time`, poolMax: result.poolMax, color: COLORS[result.mode], endMs })}
</figure>`;
}

/** Writes `index.html` into `dir` (created if needed); resolves with its absolute path. */
export async function writeReport(dir: string, input: ReportInput): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = resolve(join(dir, 'index.html'));
  await writeFile(path, renderReport(input));
  return path;
}
