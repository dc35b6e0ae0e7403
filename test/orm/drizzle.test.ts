// Drizzle on node-postgres: `drizzle({ client: pool })`, the way its docs set it up.
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { describeOrm, PLAIN_POOL, NO_LEAKS, runSql } from './harness.ts';

const items = pgTable('orm_drizzle_items', { id: serial('id').primaryKey(), name: text('name').notNull() });

describeOrm({
  title: 'Drizzle (drizzle-orm/node-postgres)',
  setup: () => runSql('CREATE TABLE IF NOT EXISTS orm_drizzle_items (id serial PRIMARY KEY, name text NOT NULL)'),
  create(pool) {
    const db = drizzle({ client: pool });
    return {
      async throwInTransaction() {
        await db.transaction(async (tx) => {
          await tx.insert(items).values({ name: 'a' });
          throw new Error('the route failed inside db.transaction()');
        });
      },
      async handBegin() {
        await db.execute(sql`BEGIN`);
        await db.insert(items).values({ name: 'b' });
        return { begun: true };
      },
      async sleep() {
        await db.execute(sql`SELECT pg_sleep(60)`);
      },
      // drizzle-orm/node-postgres offers no stream or cursor (0.45 has iterator() for MySQL only).
      stream: undefined,
      async killedMidTransaction(hold) {
        await db.transaction(async (tx) => {
          const { rows } = await tx.execute<{ pid: number }>(sql`SELECT pg_backend_pid() AS pid`);
          await hold(rows[0]!.pid);
          await tx.insert(items).values({ name: 'e' });
        });
      },
      async alive() {
        const { rows } = await db.execute<{ one: number }>(sql`SELECT 1 AS one`);
        return rows[0];
      },
      dispose: () => Promise.resolve(),
    };
  },
  control: PLAIN_POOL,
  leaks: NO_LEAKS,
});
