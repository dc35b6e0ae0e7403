import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { backendPids, backendsFor, databaseUrl, terminateBackend, waitForBackends } from '@closeguard/conformance';

describe('PostgreSQL for the test run', () => {
  const clients: pg.Client[] = [];
  const connect = async (applicationName: string) => {
    const client = new pg.Client({ connectionString: databaseUrl(), application_name: applicationName });
    clients.push(client);
    client.on('error', () => {}); // a terminated backend reports here; the test checks it by query
    await client.connect();
    return client;
  };

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.end().catch(() => {})));
  });

  it('answers SELECT 1', async () => {
    const client = await connect('closeguard-smoke');
    const result = await client.query<{ one: number }>('SELECT 1 AS one');
    expect(result.rows).toEqual([{ one: 1 }]);
  });

  it('is also given to child processes as DATABASE_URL', () => {
    expect(process.env.DATABASE_URL).toBe(databaseUrl());
  });

  describe('backendsFor(applicationName)', () => {
    it('counts the backends of that application only', async () => {
      await Promise.all([connect('closeguard-count'), connect('closeguard-count'), connect('closeguard-other')]);
      expect(await backendsFor('closeguard-count')).toBe(2);
      expect(await backendsFor('closeguard-none')).toBe(0);
    });

    it('drops to zero once the clients end', async () => {
      const client = await connect('closeguard-ending');
      expect(await backendsFor('closeguard-ending')).toBe(1);
      await client.end();
      await waitForBackends('closeguard-ending', 0);
    });
  });

  describe('terminateBackend(pid)', () => {
    it('cuts that backend off', async () => {
      const client = await connect('closeguard-victim');
      const [pid] = await backendPids('closeguard-victim');
      expect(pid).toBeTypeOf('number');
      expect(await terminateBackend(pid ?? 0)).toBe(true);
      await expect(client.query('SELECT 1')).rejects.toThrow();
      await waitForBackends('closeguard-victim', 0);
    });
  });
});
