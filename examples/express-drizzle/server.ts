// The Drizzle example: an Express 5 app written the way Drizzle's docs show it
// (`drizzle({ client: pool })`, db.select(), db.insert(), db.transaction()), on a GuardedPool the
// guard is given too — so every client Drizzle checks out inside a request belongs to that request.
// `npx tsx examples/express-drizzle/server.ts` (uses DATABASE_URL, or starts an embedded PostgreSQL).
import { STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { count, eq, sql, sum } from 'drizzle-orm';
import { drizzle, type NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { getErrorStatus, type ConnectionClosingMiddleware, type LeakReport } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { GuardedPool } from '@closeguard/pg';
import { isCommand, runExample } from '../shared/main.ts';
import { accounts, asOverdraft, batchOf, createTables, delayOf, httpError, newAccountOf, transferOf, transfers, type Transfer } from './schema.ts';

export const APPLICATION_NAME = 'closeguard-example-express-drizzle';
/** After a client hangs up, how long a query still running for it may go on before it is cancelled and its client destroyed. */
export const ABORT_GRACE_MS = 1_000;
/** What the command prints under its URL. */
const ROUTES = ['GET /accounts', 'POST /accounts', 'POST /transfers', 'GET /transfers', 'POST /transfers/batch', 'GET /report?delay=2'];

/** Drizzle's database or one of its transactions: both run the same queries. */
type Db = PgDatabase<NodePgQueryResultHKT>;

export interface Running {
  server: Server;
  url: string;
  pool: GuardedPool;
  guard: ConnectionClosingMiddleware;
  /** Stops taking connections, lets requests in flight finish, then ends the pool. */
  close(): Promise<void>;
}

export async function start(databaseUrl: string, port = 0): Promise<Running> {
  // The one line that differs from Drizzle's docs: `new GuardedPool(…)` where they write `new pg.Pool(…)`.
  const pool = new GuardedPool({ connectionString: databaseUrl, application_name: APPLICATION_NAME, max: 10 });
  pool.on('error', (error) => console.error(`an idle client lost its connection: ${error.message}`));
  const guarded = connectionClosing({ pool, abortGrace: ABORT_GRACE_MS, onLeak: logLeak }); // the same pool, as it is
  const db = drizzle({ client: pool });
  await createTables(pool, db);

  const app = express();
  app.use(guarded); // before every route that uses the database
  app.use(express.json());

  app.get('/accounts', async (_req, res) => {
    res.json(await db.select().from(accounts).orderBy(accounts.id));
  });

  app.post('/accounts', async (req, res) => {
    const account = newAccountOf(req.body); // a 400 checks nothing out
    const [created] = await db.insert(accounts).values(account).returning();
    res.status(201).json(created);
  });

  // Drizzle's transaction: it holds one client for the callback, rolls back on a throw and
  // releases on every path. An overdraft (the balance CHECK) or an unknown account throws in it.
  app.post('/transfers', async (req, res) => {
    const order = transferOf(req.body);
    res.status(201).json(await db.transaction((tx) => transfer(tx, order)));
  });

  app.get('/transfers', async (_req, res) => {
    res.json(await db.select().from(transfers).orderBy(transfers.id));
  });

  // The guarantee: a transaction by hand on a checked-out client, with no try/finally. A transfer
  // that fails half way throws past COMMIT and release(). On a plain pg.Pool the client would stay
  // checked out for good: idle in the transaction, still locking the rows it updated (an unknown
  // account), or in the failed transaction (an overdraft). Here the request takes it back when it
  // is over and destroys it: its transaction ends with its backend, nothing is kept, nothing stays
  // locked, and the leak is reported with this route (onLeak).
  app.post('/transfers/batch', async (req, res) => {
    const orders = batchOf(req.body);
    const client = await pool.connect();
    const tx = drizzle({ client });
    await tx.execute(sql`BEGIN`);
    const made = [];
    for (const order of orders) made.push(await transfer(tx, order));
    await tx.execute(sql`COMMIT`);
    client.release();
    res.status(201).json(made);
  });

  // A slow query (pg_sleep stands in for a heavy report). If the client hangs up while it runs,
  // it is cancelled once ABORT_GRACE_MS is over and its client destroyed: never handed to the next
  // request while it still runs, never left running for nobody.
  app.get('/report', async (req, res) => {
    const delay = delayOf(req.query.delay);
    await db.execute(sql`SELECT pg_sleep(${delay})`);
    const [report] = await db.select({ accounts: count(), total: sum(accounts.balance).mapWith(Number) }).from(accounts);
    res.json(report);
  });

  app.use(onError);

  const server = await listen(app, port);
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pool,
    guard: guarded.guard,
    async close() {
      const stopped = new Promise((resolve) => server.close(resolve));
      await guarded.guard.close(); // 503 to newcomers, wait for the requests in flight, end the pool
      await stopped;
    },
  };
}

/** Moves `amount` from one account to the other and records it, on `db` (inside a transaction). */
async function transfer(db: Db, { from, to, amount }: Transfer) {
  const balance = { id: accounts.id, balance: accounts.balance };
  const [debited] = await db
    .update(accounts)
    .set({ balance: sql`${accounts.balance} - ${amount}` })
    .where(eq(accounts.id, from))
    .returning(balance)
    .catch(asOverdraft);
  const [credited] = await db
    .update(accounts)
    .set({ balance: sql`${accounts.balance} + ${amount}` })
    .where(eq(accounts.id, to))
    .returning(balance);
  if (!debited || !credited) throw httpError(404, 'no such account');
  const [made] = await db.insert(transfers).values({ fromId: from, toId: to, amount }).returning({ id: transfers.id });
  return { id: made!.id, amount, from: debited, to: credited };
}

/** A client checked out in a request and never released: the request took it back and destroyed it. */
function logLeak(leak: LeakReport): void {
  console.warn(`${leak.route ?? 'a request'} never released a client it checked out (held ${leak.heldMs} ms): closeguard took it back and destroyed it.\n${leak.stack}`);
}

/** Error middleware: the error's status, and for a 5xx no internal message (it is logged instead). */
function onError(error: unknown, req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(error);
  const status = getErrorStatus(error);
  if (status >= 500) console.error(`${req.method} ${req.originalUrl} failed: ${String(error)}${causeOf(error)}`);
  res.status(status).json({ error: status < 500 && error instanceof Error ? error.message : STATUS_CODES[status] });
}

/** Drizzle's errors name the query; what PostgreSQL said is their cause. */
function causeOf(error: unknown): string {
  return error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
}

function listen(app: Express, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(server)));
  });
}

if (isCommand(import.meta.url)) await runExample({ start, urls: (running) => running.url, routes: ROUTES });
