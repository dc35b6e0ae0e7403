import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl } from '../../packages/conformance/src/postgres/index.ts';
import { FRAMEWORKS, type Framework } from '../apps/types.ts';
import { guardedLeaks, runAudit, type AuditResult } from '../audit.ts';
import { ORM_FAULTS } from '../plan.ts';
import { openDatabase, type Database } from '../database.ts';
import { auditBackends, eventually, ROOT, SMALL } from './support.ts';

let database: Database;
/** One audit per framework, shared by the describes that look at it. */
const audits = new Map<Framework, Promise<AuditResult>>();

function auditOf(framework: Framework): Promise<AuditResult> {
  let audit = audits.get(framework);
  if (!audit) audits.set(framework, (audit = runAudit({ ...SMALL, frameworks: [framework], database })));
  return audit;
}

beforeAll(async () => {
  database = await openDatabase(ROOT, databaseUrl());
});

afterAll(async () => {
  await database.stop();
});

describe.each(FRAMEWORKS)('runAudit() on %s', (framework) => {
  let audit: AuditResult;

  beforeAll(async () => {
    audit = await auditOf(framework);
  }, 60_000);

  it('runs the app unguarded, then guarded, under the same load', () => {
    expect(audit.results.map((result) => [result.framework, result.mode])).toEqual([[framework, 'unguarded'], [framework, 'guarded']]);
    for (const result of audit.results) {
      expect(result.requests).toBe(SMALL.requests);
      expect(result.faults).toBe(SMALL.requests / 4);
      expect(result.samples.length).toBeGreaterThan(1);
    }
  });

  describe('unguarded', () => {
    it('leaks connections: some stay borrowed after the run settles', () => {
      const [unguarded] = audit.results;
      expect(unguarded!.leaked).toBeGreaterThan(0);
      expect(unguarded!.backends).toBe(unguarded!.leaked);
      expect(unguarded!.peak).toBe(SMALL.poolMax);
    });

    it('stalls: requests that find the pool empty answer 503 after the acquire timeout', () => {
      const [unguarded] = audit.results;
      expect(unguarded!.statuses[503]).toBeGreaterThan(0);
    });
  });

  describe('guarded', () => {
    it('leaks nothing: no connection borrowed, no backend left', () => {
      const [, guarded] = audit.results;
      expect(guarded!.leaked).toBe(0);
      expect(guarded!.backends).toBe(0);
      expect(guardedLeaks(audit.results)).toEqual([]);
    });

    it('answers every request it was not hung up on, with 500 for the faults (503 only when it sheds)', () => {
      const [, guarded] = audit.results;
      expect(guarded!.noAnswer).toBe(0);
      expect(guarded!.statuses[500]).toBeGreaterThan(0);
      // A hung-up request holds its place until its handler is done, so the backpressure queue may shed.
      expect(Object.keys(guarded!.statuses).filter((status) => status !== '500' && status !== '503')).toEqual([]);
    });
  });

  it('leaves no backend of either run behind once it returns', async () => {
    expect(await eventually(async () => (await auditBackends()) === 0)).toBe(true);
  });
});

describe('runAudit() on drizzle: Express with Drizzle ORM, on a plain pg.Pool and on a GuardedPool', () => {
  let audit: AuditResult;

  beforeAll(async () => {
    audit = await auditOf('drizzle');
  }, 60_000);

  it('sends the ORM faults: a BEGIN by hand and a stream on a client of the pool come first', () => {
    const [unguarded] = audit.results;
    expect(ORM_FAULTS.slice(0, 2)).toEqual(['hand-begin', 'hangup-stream']);
    expect(unguarded!.faults).toBe(SMALL.requests / 4);
    expect(unguarded!.hungUp).toBeGreaterThan(0);
  });

  it('unguarded, the BEGIN left open leaves its backend idle in a failed transaction, still borrowed', () => {
    const [unguarded] = audit.results;
    expect(unguarded!.idleInTransaction).toBeGreaterThan(0);
    expect(unguarded!.idleInTransaction).toBeLessThanOrEqual(unguarded!.backends);
  });

  it('guarded, the same code leaves no backend, idle in a transaction or otherwise', () => {
    const [, guarded] = audit.results;
    expect(guarded!.backends).toBe(0);
    expect(guarded!.idleInTransaction).toBe(0);
  });
});
