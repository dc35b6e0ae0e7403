// Knex on a pg.Pool: `knex({ client: 'pg', connectionPool: pool })` (Knex ≥ 3.3 takes an external
// pool, a pg.Pool included, instead of building its own tarn pool from `connection`); .stream()
// needs pg-query-stream.
import { knex } from 'knex';
import { describeOrm, PLAIN_POOL, PLAIN_POOL_STREAMS, NO_LEAKS, ndjson, runSql, STREAM_ROWS } from './harness.ts';

describeOrm({
  title: 'Knex (client pg, connectionPool)',
  setup: () => runSql('CREATE TABLE IF NOT EXISTS orm_knex_items (id serial PRIMARY KEY, name text NOT NULL)'),
  create(pool) {
    const db = knex({ client: 'pg', connectionPool: pool });
    return {
      async throwInTransaction() {
        await db.transaction(async (trx) => {
          await trx('orm_knex_items').insert({ name: 'a' });
          throw new Error('the route failed inside knex.transaction()');
        });
      },
      async handBegin() {
        await db.raw('BEGIN');
        await db('orm_knex_items').insert({ name: 'b' });
        return { begun: true };
      },
      async sleep() {
        await db.raw('SELECT pg_sleep(60)');
      },
      stream: () =>
        ndjson(
          db
            .select(db.raw('g'), db.raw(`repeat('x', 100) AS pad`))
            .from(db.raw('generate_series(1, ?::int) AS g', [STREAM_ROWS]))
            .stream(),
        ),
      async killedMidTransaction(hold) {
        await db.transaction(async (trx) => {
          const { rows } = await trx.raw<{ rows: Array<{ pid: number }> }>('SELECT pg_backend_pid() AS pid');
          await hold(rows[0]!.pid);
          await trx('orm_knex_items').insert({ name: 'e' });
        });
      },
      // knex.transaction() without a callback hands the app a transaction to commit or roll back itself.
      async unendedTransaction() {
        const trx = await db.transaction();
        await trx('orm_knex_items').insert({ name: 'u' });
        return { begun: true };
      },
      async alive() {
        const { rows } = await db.raw<{ rows: Array<{ one: number }> }>('SELECT 1 AS one');
        return rows[0];
      },
      // With connectionPool, destroy() leaves the pool to its owner.
      dispose: () => db.destroy(),
    };
  },
  control: { ...PLAIN_POOL, ...PLAIN_POOL_STREAMS },
  leaks: { ...NO_LEAKS, unendedTransaction: 1 },
});
