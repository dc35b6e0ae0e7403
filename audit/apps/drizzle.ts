// The example app on Express 5 written with Drizzle ORM, the way Drizzle's docs show it:
// `drizzle({ client: pool })`, `db.execute(sql…)`, `db.transaction(…)`. The same code runs in both
// modes; only the pool differs: a plain pg.Pool (unguarded), or a GuardedPool given to
// connectionClosing({ pool }) as well (guarded) — the one line of setup.
// Drizzle checks a client out per statement and gives it back itself, so a throw after a query or
// a failed query leaks nothing. What still leaks is where the app checks a client out of the pool
// itself: a transaction begun by hand (Drizzle has none to begin and end apart: drizzle-orm#966),
// its BEGIN outside try/finally as in Drizzle's own transaction() (drizzle-orm#6023, #6241); and a
// streamed result (drizzle-orm/node-postgres streams nothing: pg-query-stream on a client of the
// same pool, piped as its README shows).
import { createServer, STATUS_CODES } from 'node:http';
import { Transform } from 'node:stream';
import { DrizzleQueryError, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import pg from 'pg';
import QueryStream from 'pg-query-stream';
import { getErrorStatus } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { GuardedPool } from '@closeguard/pg';
import { pgPoolConfig, watchPgPool } from './pools.ts';
import { closeServer, listen, type Mode, type StartExampleApp } from './types.ts';
import { EXPORT_SQL, formatAccount, NDJSON, numberParam, stringParam, type Account } from './work.ts';

/**
 * How long the guard waits for a query still running on a checkout the request left behind (the
 * piped stream's, after a hang-up) before it cancels it and destroys the client. Default 5000 ms;
 * shorter here so the run settles before it is measured.
 */
export const ORM_ABORT_GRACE_MS = 250;
/** pg.Pool's message when `connectionTimeoutMillis` passed with no client free. */
const CONNECT_TIMEOUT_MESSAGE = 'timeout exceeded when trying to connect';

/** The routes of work.ts, in Drizzle: the same SQL, through `db.execute()`. */
function routes(app: Express, pool: pg.Pool): void {
  const db = drizzle({ client: pool });
  app.get('/accounts/:id', async (req, res) => {
    const id = numberParam(req.params.id, 1);
    const { rows } = await db.execute<Account & Record<string, unknown>>(
      sql`SELECT id, 'account-' || id AS name, (id * 37) % 1000 AS balance FROM generate_series(1, 1000) id WHERE id = ${id}`,
    );
    res.json(formatAccount(rows[0], req.query.format)); // throws on an unknown format: Drizzle gave its client back already
  });
  app.get('/search', async (req, res) => {
    const pattern = stringParam(req.query.q, '');
    const { rows } = await db.execute( // rejects on a bad pattern: Drizzle gives its client back
      sql`SELECT id, name FROM (SELECT id, 'account-' || md5(id::text) AS name FROM generate_series(1, 200) id) a WHERE name ~ ${pattern} ORDER BY id LIMIT 5`,
    );
    res.json(rows);
  });
  app.get('/export', async (req, res) => {
    // Drizzle streams nothing on node-postgres: a client of the same pool and pg-query-stream.
    const client = await pool.connect();
    const rows = client.query(new QueryStream(EXPORT_SQL, [numberParam(req.query.rows, 100)]));
    rows.on('end', () => client.release()); // never 'end' when the client hangs up
    res.type(NDJSON);
    rows.pipe(toNdjson()).pipe(res); // pipe does not destroy the query stream on a hang-up
  });
  app.get('/report', async (req, res) => {
    await db.execute(sql`SELECT pg_sleep(${numberParam(req.query.seconds, 0.1)}::float8) AS slept`);
    res.json({ report: 'ready' });
  });
  app.post('/transfer', async (req, res) => {
    const amount = numberParam(req.query.amount, 1);
    // Drizzle's transaction: an error inside rolls it back and gives the client back.
    const share = await db.transaction(async (tx) => (await tx.execute(sql`SELECT 1000 / ${amount}::int AS share`)).rows[0]);
    res.json(share);
  });
  app.post('/transfer/by-hand', async (req, res) => {
    // A transaction begun by hand on a client of the pool, its BEGIN outside try/finally.
    const client = await pool.connect();
    const tx = drizzle({ client });
    await tx.execute(sql`BEGIN`);
    const { rows } = await tx.execute(sql`SELECT 1000 / ${numberParam(req.query.amount, 1)}::int AS share`); // no ROLLBACK, no release on error
    await tx.execute(sql`COMMIT`);
    client.release();
    res.json(rows[0]);
  });
}

/** Rows as NDJSON lines. */
function toNdjson(): Transform {
  return new Transform({
    writableObjectMode: true,
    transform(row: unknown, _encoding, done) {
      done(null, `${JSON.stringify(row)}\n`);
    },
  });
}

/** The app's own error handler: the status (Drizzle wraps the driver's error), no internal message. */
function onError(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(error);
  const status = statusOf(error instanceof DrizzleQueryError ? error.cause : error);
  res.status(status).json({ error: STATUS_CODES[status] ?? 'Error' });
}

/** No client free within the connect timeout is a 503, as closeguard's createPool() answers it. */
function statusOf(error: unknown): number {
  return error instanceof Error && error.message === CONNECT_TIMEOUT_MESSAGE ? 503 : getErrorStatus(error);
}

function openPool(mode: Mode, config: pg.PoolConfig): pg.Pool {
  return mode === 'guarded' ? new GuardedPool(config) : new pg.Pool(config);
}

export const startDrizzleApp: StartExampleApp = async (mode, settings, port) => {
  const pool = openPool(mode, pgPoolConfig(settings));
  const watched = watchPgPool(pool);
  const app = express();
  if (mode === 'guarded') app.use(connectionClosing({ pool: pool as GuardedPool, abortGrace: ORM_ABORT_GRACE_MS }));
  routes(app, pool);
  app.use(onError);
  const server = createServer(app);
  try {
    return { server: { port: await listen(server, port), close: () => closeServer(server) }, pool: watched };
  } catch (error) {
    await watched.end();
    throw error;
  }
};
