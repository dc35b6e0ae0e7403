import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware } from '@closeguard/core';
import { createCursorProbe, ndjsonCursor, type DbClient, type GuardedRoute, type ListeningServer } from '@closeguard/conformance';
import { expressHost } from '../../../test/conformance/hosts/express.ts';
import { eventually, GRACE_MS, hangUpMidStream, quiet, useHarness } from './harness.ts';

// The standard routes of the framework conformance, served by the express host in Express's idiom.
const harness = useHarness();
let server: ListeningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const one = async (db: () => Promise<DbClient>): Promise<number | undefined> => (await (await db()).query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one;

describe('the express GuardedHost', () => {
  it('serves json, callback, POST and stream routes, and the error handler sees each error once', async () => {
    const pool = harness.pool(1);
    const guard = new ConnectionClosingMiddleware({ pool, abortGrace: GRACE_MS });
    const failure = new Error('route bug');
    let cursorClosed = 0;
    const routes: GuardedRoute[] = [
      { method: 'GET', path: '/json', kind: 'json', run: (db) => one(db) },
      { method: 'GET', path: '/callback', kind: 'callback', run: (db) => one(db) },
      { method: 'GET', path: '/fail', kind: 'callback', run: async (db) => Promise.reject(await one(db).then(() => failure)) },
      { method: 'GET', path: '/reject', kind: 'json', run: async (db) => Promise.reject(await one(db).then(() => failure)) },
      { method: 'POST', path: '/echo', kind: 'json', run: async (db, input) => ({ body: input.body, one: await one(db), q: input.query.get('q') }) },
      {
        method: 'GET',
        path: '/rows',
        kind: 'stream',
        contentType: 'application/x-ndjson',
        run: async (db) => ndjsonCursor((await db()) as unknown as pg.Client, 1_000_000, createCursorProbe({ onClosed: () => cursorClosed++ })),
      },
    ];
    const errors: unknown[] = [];
    server = await expressHost.listenGuarded({ guard, routes, onError: (error) => errors.push(error), logger: quiet });
    const { url } = server;
    expect(await (await fetch(`${url}/json`)).json()).toBe(1);
    expect(await (await fetch(`${url}/callback`)).json()).toBe(1);
    expect((await fetch(`${url}/fail`)).status).toBe(500);
    expect((await fetch(`${url}/reject`)).status).toBe(500);
    const echo = await fetch(`${url}/echo?q=z`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await echo.json()).toEqual({ body: { a: 1 }, one: 1, q: 'z' });
    await hangUpMidStream(`${url}/rows`);
    await eventually(() => expect(guard.stats().released).toBe(6));
    expect(cursorClosed).toBe(1);
    expect(errors).toEqual([failure, failure]);
    expect(guard.stats().destroyed).toEqual({ unusable: 0, obsolete: 0, abandoned: 0 });
  });
});
