// Random fault schedules over Express, Fastify and Koa on the real PostgreSQL (docs/fault-suite.md).
// A few schedules per framework run here; `npm run faults -- --runs 10000` runs many more.
// Replay a failure with the seed and path fast-check prints:
//   FAULTS_SEED=<seed> FAULTS_PATH=<path> npx vitest run test/faults
import { afterAll, beforeAll, describe, it } from 'vitest';
import { databaseUrl } from '@closeguard/conformance';
import { Backends } from './backends.ts';
import { checkSchedules, parseKinds, type CheckOptions } from './check.ts';
import { FRAMEWORKS } from './hosts.ts';

/** Schedules per framework in `npm test`; FAULTS_RUNS overrides. */
const RUNS = Number(process.env.FAULTS_RUNS ?? 25);
/** Bounds each framework's property, shrinking included, so the file fits CI's time on 2 cores. */
const TIME_LIMIT_MS = Number(process.env.FAULTS_TIME_LIMIT_MS ?? 12_000);

function options(): CheckOptions {
  const { FAULTS_SEED: seed, FAULTS_PATH: path, FAULTS_KINDS: kinds } = process.env;
  return {
    runs: RUNS,
    timeLimitMs: TIME_LIMIT_MS,
    ...(seed !== undefined && { seed: Number(seed) }),
    ...(path !== undefined && { path }),
    ...(kinds !== undefined && { kinds: parseKinds(kinds) }),
  };
}

describe('random fault schedules', () => {
  let backends: Backends;
  beforeAll(async () => {
    backends = await Backends.connect(databaseUrl());
  });
  afterAll(() => backends.end());

  describe.each(FRAMEWORKS)('on %s', (framework) => {
    it('give back every connection, finish every request once, and keep serving', async () => {
      await checkSchedules({ framework, databaseUrl: databaseUrl(), backends }, options());
    }, TIME_LIMIT_MS + 60_000); // a failing schedule may wait out its own bounds once more after the limit
  });
});
