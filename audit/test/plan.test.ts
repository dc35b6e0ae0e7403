import { describe, expect, it } from 'vitest';
import { exampleApps, ORM_MAX_REQUESTS, requestsFor } from '../apps/index.ts';
import { FAULT_EVERY, HAND_WRITTEN_FAULTS, ORM_FAULTS, planRequests } from '../plan.ts';

describe('planRequests(count, faults)', () => {
  it('makes one request in FAULT_EVERY a fault, the faults taken in turn', () => {
    const steps = planRequests(8 * ORM_FAULTS.length, ORM_FAULTS);
    const faults = steps.filter((step) => step.fault !== undefined);
    expect(faults).toHaveLength(steps.length / FAULT_EVERY);
    expect(faults.slice(0, ORM_FAULTS.length).map((step) => step.fault)).toEqual(ORM_FAULTS);
    expect(steps[FAULT_EVERY - 1]!.fault).toBe('hand-begin');
  });

  it('gives the hand-written apps the faults they always had, in the same order', () => {
    expect(planRequests(40)).toEqual(planRequests(40, HAND_WRITTEN_FAULTS));
    expect(planRequests(20).filter((step) => step.fault).map((step) => step.fault)).toEqual(['throw', 'reject', 'hangup-stream', 'hangup-slow', 'tx-abort']);
  });
});

describe('requestsFor(framework, requested)', () => {
  it('sends the hand-written apps what was asked, and the Drizzle app at most ORM_MAX_REQUESTS', () => {
    expect(requestsFor('express', 200)).toBe(200);
    expect(requestsFor('drizzle', 200)).toBe(ORM_MAX_REQUESTS);
    expect(requestsFor('drizzle', 40)).toBe(40);
    expect(exampleApps.drizzle.faults).toBe(ORM_FAULTS);
  });
});
