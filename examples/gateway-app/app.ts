// The gateway app — `(env, start) → body` — written once and mounted in node:http, Express, Fastify
// and Koa (hosts.ts). It takes its connection with leasesFor(env.scope): the guard in front of it
// leases it and the request gives it back; the app releases nothing. Its export body is a
// generator whose finally closes the cursor, and every host runs that finally exactly once.
import type pg from 'pg';
import { type GatewayApp, type GatewayBody, type GatewayEnv, type StartResponse } from '@closeguard/core';
import { leasesFor } from '@closeguard/core/host';
import { eventsAsNdjson, USERS_SQL } from '../shared/schema.ts';

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

/** Export bodies the app handed out, and how many of their `finally` blocks ran: the same, once each, whatever happened to the request. */
export interface BodyCounts {
  opened: number;
  closed: number;
}

/** The app and the counts of its export bodies (what the example's test reads). */
export function createGatewayApp(): { app: GatewayApp; bodies: BodyCounts } {
  const bodies: BodyCounts = { opened: 0, closed: 0 };
  const app: GatewayApp = async (env, start) => {
    if (env.method !== 'GET') {
      start(405, { ...TEXT, allow: 'GET' });
      return ['Method Not Allowed\n'];
    }
    switch (env.path) {
      case '/users': {
        const { rows } = await (await connectionOf(env)).query(USERS_SQL);
        start(200, { 'content-type': 'application/json' });
        return [JSON.stringify(rows)];
      }
      case '/export':
        return exportEvents(await connectionOf(env), start, bodies);
      case '/fail':
        // Leases, then throws before start(): the host answers 500; the connection still goes back.
        await (await connectionOf(env)).query('SELECT 1');
        throw new Error('GET /fail fails on purpose');
      default:
        start(404, TEXT);
        return ['Not Found\n'];
    }
  };
  return { app, bodies };
}

/** The events as NDJSON from a pg-cursor. The host closes the body (its finally) on the last row, an error and a hang-up alike. */
function exportEvents(db: pg.Client, start: StartResponse, bodies: BodyCounts): GatewayBody {
  start(200, { 'content-type': 'application/x-ndjson' });
  bodies.opened++;
  return (async function* () {
    try {
      yield* eventsAsNdjson(db); // its own finally closes the cursor (opened on the first read: a body never read opens none)
    } finally {
      bodies.closed++;
    }
  })();
}

/** The request's connection, from the guard in front of the app (`guard.wrap(app)` or an adapter's `connectionClosing`). */
async function connectionOf(env: GatewayEnv): Promise<pg.Client> {
  const leases = leasesFor(env.scope);
  if (!leases) throw new Error('the gateway app needs a guard in front of it: guard.wrap(app), or connectionClosing() before gateway(app)');
  return leases.get<pg.Client>('default');
}
