import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl } from '../../packages/conformance/src/postgres/index.ts';
import { runAudit, type AuditResult } from '../audit.ts';
import { openDatabase } from '../database.ts';
import { FAULTS } from '../plan.ts';
import { writeReport } from '../report.ts';
import { formatTable, HEADERS } from '../table.ts';
import { CHROMIUM, ensureChromium, INSTALL_TIMEOUT_MS } from './chromium.ts';
import { pngSize } from './png.ts';
import { ROOT, SMALL } from './support.ts';

const run = promisify(execFile);
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars'];
const BROWSER_TIMEOUT_MS = 90_000;

let dir: string;
let audit: AuditResult;
let reportPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'closeguard-audit-report-'));
  const database = await openDatabase(ROOT, databaseUrl());
  try {
    audit = await runAudit({ ...SMALL, frameworks: ['express', 'drizzle'], database });
  } finally {
    await database.stop();
  }
  reportPath = await writeReport(join(dir, 'report'), { results: audit.results, settings: SMALL, database: 'the test run\'s PostgreSQL', finishedAt: new Date() });
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the terminal table', () => {
  it('has the headers and one row per run, unguarded before guarded', () => {
    const lines = formatTable(audit.results).split('\n');
    for (const header of HEADERS) expect(lines[0]).toContain(header);
    const rows = lines.filter((line) => /^(express|drizzle) /.test(line));
    expect(rows.map((line) => line.split(/\s+/).slice(0, 2).join(' '))).toEqual(['express unguarded', 'express guarded', 'drizzle unguarded', 'drizzle guarded']);
  });
});

describe('the HTML report, in a real browser (chromium)', () => {
  beforeAll(ensureChromium, INSTALL_TIMEOUT_MS);

  it('is one self-contained file: no script, no external resource', async () => {
    const html = await readFile(reportPath, 'utf8');
    expect(html).not.toMatch(/<script|<link|<img|\ssrc=|\shref=|@import|url\(/i);
  });

  it('renders to a screenshot of the window size, with content on it', async () => {
    const png = join(dir, 'report.png');
    await run(CHROMIUM, [...CHROMIUM_FLAGS, `--screenshot=${png}`, '--window-size=1200,900', `file://${reportPath}`], { timeout: BROWSER_TIMEOUT_MS });
    const bytes = await readFile(png);
    expect(pngSize(bytes)).toEqual({ width: 1200, height: 900 });
    // A blank 1200×900 page compresses to a few kilobytes; text, a table and charts do not.
    expect((await stat(png)).size).toBeGreaterThan(30_000);
  }, BROWSER_TIMEOUT_MS);

  it('has a table row per run and one SVG chart per run, as the browser parsed them', async () => {
    const { stdout: dom } = await run(CHROMIUM, [...CHROMIUM_FLAGS, '--dump-dom', `file://${reportPath}`], { timeout: BROWSER_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    const rows = [...dom.matchAll(/<tr class="(unguarded|guarded)">\s*<td>(\w+)<\/td>/g)].map((match) => `${match[2]} ${match[1]}`);
    expect(rows).toEqual(['express unguarded', 'express guarded', 'drizzle unguarded', 'drizzle guarded']);
    const headers = [...dom.matchAll(/<th>([^<]*)<\/th>/g)].map((match) => match[1]);
    expect(headers).toEqual([...HEADERS]);
    const charts = [...dom.matchAll(/<figure class="run (unguarded|guarded)">\s*<figcaption>(\w+) /g)].map((match) => `${match[2]} ${match[1]}`);
    expect(charts).toEqual(rows);
    expect(dom.match(/<svg class="chart"/g)).toHaveLength(audit.results.length);
    expect(dom.match(/<polyline /g)).toHaveLength(audit.results.length);
  }, BROWSER_TIMEOUT_MS);

  it('says what the Drizzle app is, and how many of its leaked backends sit idle in a transaction', async () => {
    const html = await readFile(reportPath, 'utf8');
    expect(html).toContain('written with Drizzle ORM');
    expect(html).toContain(FAULTS['hand-begin'].step.path);
    const [, , drizzleUnguarded] = audit.results;
    expect(html).toContain(`drizzle unguarded <span>— ${drizzleUnguarded!.leaked} leaked (${drizzleUnguarded!.idleInTransaction} idle in transaction)`);
  });

  it('marks the unguarded leaks and the guarded zeros', async () => {
    const html = await readFile(reportPath, 'utf8');
    expect(html).toContain('Every guarded run gave back every connection.');
    expect(html.match(/<tr class="guarded">.*?<\/tr>/g)?.every((row) => (row.match(/class="clean">0</g) ?? []).length === 2)).toBe(true);
    expect(html.match(/<tr class="unguarded">.*?<\/tr>/g)?.every((row) => (row.match(/class="leak">/g) ?? []).length === 2)).toBe(true);
  });
});
