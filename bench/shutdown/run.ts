// `npm run bench -- shutdown`: how long guard.close({ timeout }) takes when requests outlive it, on
// each framework, against the bound it promises (timeout + abortGrace, plus the bounded cancel and
// destroy of the connections it gives up on). Each run holds three requests that never end by
// themselves: a query in pg_sleep(600), a handler that never settles, and a cursor streamed to a
// client that stopped reading.
import { get, type ClientRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { ConnectionClosingMiddleware } from '@closeguard/core';
import { closeCursor, createPool } from '@closeguard/pg';
import { FRAMEWORKS, serve, type FaultHandler } from '../../test/faults/hosts.ts';
import { startDatabase } from '../middleware/postgres.ts';

const TIMEOUT_MS = 500;
const ABORT_GRACE_MS = 1_000;
const ROUNDS = 3;

/** Request 0 sleeps in a query, 1 never settles, 2 streams a cursor that outlasts any reader. */
const handler: FaultHandler = async (id, io) => {
  const client = await io.db();
  if (id === 0) {
    await client.query('SELECT pg_sleep(600)');
    return { kind: 'json', value: 'slept' };
  }
  if (id === 1) {
    await client.query('SELECT 1');
    return new Promise(() => undefined);
  }
  const cursor = client.query(new Cursor('SELECT g, repeat($1, 100) AS pad FROM generate_series(1, 100000000) g', ['x']));
  async function* rows(): AsyncGenerator<string> {
    try {
      for (let batch = await cursor.read(100); batch.length > 0; batch = await cursor.read(100)) yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
    } finally {
      await closeCursor(cursor, client);
    }
  }
  return { kind: 'stream', stream: Readable.from(rows(), { objectMode: false }) };
};

/** A GET whose client stops reading once the headers arrive. */
function hold(port: number, id: number): Promise<ClientRequest> {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path: `/fault?id=${id}` }, (response) => {
      response.pause();
      response.on('error', () => undefined);
    });
    request.on('error', () => undefined);
    resolve(request);
  });
}

async function activeBackends(url: string, name: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", [name]);
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}

export async function run(): Promise<void> {
  const database = await startDatabase(0);
  console.log(`close({ timeout: ${TIMEOUT_MS} }) with abortGrace ${ABORT_GRACE_MS} ms and three requests that never end by themselves; bound = timeout + abortGrace = ${TIMEOUT_MS + ABORT_GRACE_MS} ms\n`);
  console.log('| framework | round | close() ms | over the bound, ms | released | destroyed (abandoned) | busy backends after |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  try {
    for (const framework of FRAMEWORKS) {
      for (let round = 1; round <= ROUNDS; round++) {
        const name = `closeguard-shutdown-${framework}-${round}`;
        const pool = createPool({ connectionString: database.url, application_name: name }, { max: 4 });
        const guard = new ConnectionClosingMiddleware({ pool, abortGrace: ABORT_GRACE_MS });
        const served = await serve(framework, guard, handler);
        const requests = await Promise.all([0, 1, 2].map((id) => hold(served.port, id)));
        while (pool.borrowed < 3) await new Promise((resolve) => setTimeout(resolve, 10));
        const startedAt = performance.now();
        await guard.close({ timeout: TIMEOUT_MS });
        const closeMs = performance.now() - startedAt;
        const stats = guard.stats();
        const busy = await activeBackends(database.url, name);
        console.log(`| ${framework} | ${round} | ${closeMs.toFixed(0)} | ${(closeMs - TIMEOUT_MS - ABORT_GRACE_MS).toFixed(0)} | ${stats.released} | ${stats.destroyed.abandoned} | ${busy} |`);
        for (const request of requests) request.destroy();
        await served.close();
      }
    }
  } finally {
    await database.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
