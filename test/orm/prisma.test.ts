// Prisma 7 with @prisma/adapter-pg on a pg.Pool: `new PrismaClient({ adapter: new PrismaPg(pool) })`,
// the way its docs set it up. PrismaPg uses the pool as it is only when it is `instanceof pg.Pool`.
import { PrismaPg } from '@prisma/adapter-pg';
import { describeOrm, PLAIN_POOL, NO_LEAKS, runSql } from './harness.ts';
import { loadPrismaClient, type PrismaClientClass } from './prisma-client.ts';

let PrismaClient: PrismaClientClass;

describeOrm({
  title: 'Prisma 7 (@prisma/adapter-pg)',
  async setup() {
    PrismaClient = await loadPrismaClient();
    await runSql('CREATE TABLE IF NOT EXISTS orm_prisma_items (id serial PRIMARY KEY, name text NOT NULL)');
  },
  create(pool) {
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    return {
      async throwInTransaction() {
        await prisma.$transaction(async (tx) => {
          await tx.item.create({ data: { name: 'a' } });
          throw new Error('the route failed inside prisma.$transaction()');
        });
      },
      async handBegin() {
        await prisma.$executeRawUnsafe('BEGIN');
        await prisma.item.create({ data: { name: 'b' } });
        return { begun: true };
      },
      async sleep() {
        await prisma.$executeRawUnsafe('SELECT pg_sleep(60)');
      },
      // Prisma has no streamed or cursor result: findMany() and $queryRaw read the whole result.
      stream: undefined,
      async killedMidTransaction(hold) {
        await prisma.$transaction(async (tx) => {
          const [row] = await tx.$queryRawUnsafe<Array<{ pid: number }>>('SELECT pg_backend_pid() AS pid');
          await hold(row!.pid);
          await tx.item.create({ data: { name: 'e' } });
        });
      },
      async alive() {
        const [row] = await prisma.$queryRawUnsafe<Array<{ one: number }>>('SELECT 1 AS one');
        return row;
      },
      // With a pool of the app's own, $disconnect() leaves it open (disposeExternalPool is off).
      dispose: () => prisma.$disconnect(),
    };
  },
  control: PLAIN_POOL,
  leaks: NO_LEAKS,
});
