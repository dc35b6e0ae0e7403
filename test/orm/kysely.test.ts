// Kysely with its PostgresDialect on a pg.Pool, and pg-cursor for .stream(), the way its docs set it up.
import { Kysely, PostgresDialect, sql } from 'kysely';
import Cursor from 'pg-cursor';
import { describeOrm, PLAIN_POOL, PLAIN_POOL_STREAMS, NO_LEAKS, ndjson, runSql, STREAM_ROWS } from './harness.ts';

interface Database {
  orm_kysely_items: { id: import('kysely').Generated<number>; name: string };
}

describeOrm({
  title: 'Kysely (PostgresDialect)',
  setup: () => runSql('CREATE TABLE IF NOT EXISTS orm_kysely_items (id serial PRIMARY KEY, name text NOT NULL)'),
  create(pool) {
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
    return {
      async throwInTransaction() {
        await db.transaction().execute(async (trx) => {
          await trx.insertInto('orm_kysely_items').values({ name: 'a' }).execute();
          throw new Error('the route failed inside db.transaction().execute()');
        });
      },
      async handBegin() {
        await sql`BEGIN`.execute(db);
        await db.insertInto('orm_kysely_items').values({ name: 'b' }).execute();
        return { begun: true };
      },
      async sleep() {
        await sql`SELECT pg_sleep(60)`.execute(db);
      },
      stream: () =>
        ndjson(
          db
            .selectFrom(sql<{ g: number }>`generate_series(1, ${STREAM_ROWS}::int)`.as('g'))
            .select([sql<number>`g`.as('g'), sql<string>`repeat('x', 100)`.as('pad')])
            .stream(100),
        ),
      async killedMidTransaction(hold) {
        await db.transaction().execute(async (trx) => {
          const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
          await hold(rows[0]!.pid);
          await trx.insertInto('orm_kysely_items').values({ name: 'e' }).execute();
        });
      },
      // db.startTransaction() (Kysely ≥ 0.28) hands the app a transaction to commit or roll back itself.
      async unendedTransaction() {
        const trx = await db.startTransaction().execute();
        await trx.insertInto('orm_kysely_items').values({ name: 'u' }).execute();
        return { begun: true };
      },
      async alive() {
        const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(db);
        return rows[0];
      },
      // db.destroy() would end the pool: the harness owns it.
      dispose: () => Promise.resolve(),
    };
  },
  control: { ...PLAIN_POOL, ...PLAIN_POOL_STREAMS },
  leaks: { ...NO_LEAKS, unendedTransaction: 1 },
});
