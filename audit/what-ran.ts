// The report's "What ran": the apps, how each is written in both modes, and the faults each gets.
import { escapeXml as escape } from './chart.ts';
import { ORM_ABORT_GRACE_MS } from './apps/drizzle.ts';
import { exampleApps } from './apps/index.ts';
import { FAULT_EVERY, FAULTS, type Fault } from './plan.ts';
import type { RunResult } from './run.ts';

/** What each fault meets in the Drizzle app. */
const IN_DRIZZLE: Readonly<Partial<Record<Fault, string>>> = {
  'hand-begin': 'unguarded, its client leaks, idle in a failed transaction',
  'hangup-stream': 'pg-query-stream on a client of the pool: unguarded, it leaks',
  throw: 'after db.execute(), which gave its client back',
  reject: 'db.execute() rejects and gives its client back',
  'hangup-slow': 'a db.execute() of the pool\'s own',
  'tx-abort': 'inside db.transaction(), which rolls back and gives its client back',
};

/** The faults of an app, in the order they come round, with what each meets in it. */
function faultList(faults: readonly Fault[], notes: Readonly<Partial<Record<Fault, string>>> = {}): string {
  const item = (fault: Fault): string => {
    const { what, step } = FAULTS[fault];
    const note = notes[fault] === undefined ? '' : ` — ${escape(notes[fault])}`;
    return `<li>${escape(what)}: <code>${escape(`${step.method} ${step.path}`)}</code>${note}</li>`;
  };
  return `<ul>\n${faults.map(item).join('\n')}\n</ul>`;
}

const HAND_WRITTEN = `<p>Each framework serves the same example app twice. <strong>Unguarded</strong>: acquire from the pool and
<code>release()</code> by hand, not in a <code>finally</code>; a cursor stream released on <code>'end'</code>
(<code>.pipe(res)</code> in Express); a transaction with no <code>ROLLBACK</code> on error.
<strong>Guarded</strong>: the same routes behind closeguard's adapter, taking their connection from
<code>req.db()</code> / <code>request.db()</code> / <code>ctx.db()</code> and never releasing it.
One request in ${FAULT_EVERY} is a fault, in turn:</p>
${faultList(exampleApps.express.faults)}`;

const WITH_DRIZZLE = `<p><strong>drizzle</strong>: the same app on Express written with Drizzle ORM the way its docs show it
(<code>drizzle({ client: pool })</code>, <code>db.execute(sql\`…\`)</code>, <code>db.transaction()</code>), the
same code in both modes: unguarded on a plain <code>pg.Pool</code>, guarded on a <code>GuardedPool</code>
(<code>@closeguard/pg</code>) also given to <code>connectionClosing({ pool })</code>. Drizzle checks a client out
per statement and gives it back, so a throw after a query, a failed query and an error inside
<code>db.transaction()</code> leak nothing. What leaks is where the app checks a client out of the pool itself:
a transaction begun by hand (Drizzle has no manual transactions), its <code>BEGIN</code> outside
<code>try/finally</code>, which leaves the backend idle in a failed transaction; and a result streamed with
pg-query-stream on a client of the same pool (Drizzle streams nothing on node-postgres), <code>.pipe(res)</code>'d
and released on <code>'end'</code>. Guarded, such a checkout is reclaimed when its request ends (a query still
running on it cancelled after the guard's <code>abortGrace</code>, ${ORM_ABORT_GRACE_MS} ms here) and destroyed. One request in
${FAULT_EVERY} is a fault, in turn:</p>
${faultList(exampleApps.drizzle.faults, IN_DRIZZLE)}`;

/** What ran, for the apps among `results`. */
export function renderWhatRan(results: readonly RunResult[]): string {
  const handWritten = results.some((result) => result.framework !== 'drizzle');
  const drizzle = results.some((result) => result.framework === 'drizzle');
  return [handWritten ? HAND_WRITTEN : '', drizzle ? WITH_DRIZZLE : ''].filter((part) => part !== '').join('\n');
}
