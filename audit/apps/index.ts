import { HAND_WRITTEN_FAULTS, ORM_FAULTS, type Fault } from '../plan.ts';
import { startDrizzleApp } from './drizzle.ts';
import { createExpressServer } from './express.ts';
import { createFastifyServer } from './fastify.ts';
import { createKoaServer } from './koa.ts';
import { createGenericPool } from './pools.ts';
import type { CreateExampleServer, Framework, StartExampleApp } from './types.ts';

/** An example app and the load it gets. */
export interface ExampleApp {
  start: StartExampleApp;
  /** The faults the plan mixes in, in the order it takes them in turn. */
  faults: readonly Fault[];
  /** At most this many requests a run (default: as many as asked). */
  maxRequests?: number;
}

/**
 * The ORM app's runs are shorter: two of its six faults leak, so a pool of 5 is gone within ~55
 * requests; more would only wait out the connect timeout, and lengthen the audit.
 */
export const ORM_MAX_REQUESTS = 64;

/** A hand-written app on closeguard's generic-pool of pg clients. */
function onGenericPool(create: CreateExampleServer): StartExampleApp {
  return async (mode, settings, port) => {
    const { pool, watched } = createGenericPool(settings);
    try {
      return { server: await create(mode, pool, port), pool: watched };
    } catch (error) {
      await watched.end();
      throw error;
    }
  };
}

/** The example apps, in the order the audit runs them. */
export const exampleApps: Readonly<Record<Framework, ExampleApp>> = {
  express: { start: onGenericPool(createExpressServer), faults: HAND_WRITTEN_FAULTS },
  fastify: { start: onGenericPool(createFastifyServer), faults: HAND_WRITTEN_FAULTS },
  koa: { start: onGenericPool(createKoaServer), faults: HAND_WRITTEN_FAULTS },
  drizzle: { start: startDrizzleApp, faults: ORM_FAULTS, maxRequests: ORM_MAX_REQUESTS },
};

/** How many requests a run of `framework` sends when `requested` are asked for. */
export function requestsFor(framework: Framework, requested: number): number {
  return Math.min(requested, exampleApps[framework].maxRequests ?? requested);
}
