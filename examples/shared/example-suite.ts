// The examples' tests, written once: `describeFrameworkExample()` runs the whole suite of a
// framework example (express-pg, fastify-pg, koa-pg); the helpers below it serve the other
// examples' tests too. Not a *.test.ts file: each example's own test file calls it.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConnectionClosingMiddleware, GuardStats } from '@closeguard/core';
import { backendsFor, databaseUrl } from '@closeguard/conformance';
import type { RunningApp } from './main.ts';
import { EVENT_COUNT, SEED_BALANCES } from './schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** What happens after a response (the connection going back) is waited for, generously: a loaded machine is slow, not wrong. */
export const SETTLED = { timeout: 10_000, interval: 20 };
/** The seeded users, as GET /users answers them. */
export const USERS = [{ id: 1, name: 'Ada' }, { id: 2, name: 'Grace' }, { id: 3, name: 'Linus' }];

export interface FrameworkExample {
  /** The example's directory name: `express-pg`. */
  name: string;
  start(databaseUrl: string): Promise<RunningApp>;
  /** The pool's application_name, to count the example's backends in PostgreSQL. */
  applicationName: string;
  /** The path of the example's server.ts, run as a command. */
  server: string;
  /** The 400's message for `amount: 'ten'`: the example's own check, or the framework's schema validation. */
  badAmountMessage: string;
  /** What answers GET /fail's 500, for the test's name: `the error middleware`. */
  errorHandler: string;
  /** How the example's error answers read: `{ "error": message }` as JSON, or the message as text (Koa's own). */
  errorBody: 'json' | 'text';
}

/** The suite every framework example passes: each route as its README says, each connection given back once. */
export function describeFrameworkExample(example: FrameworkExample): void {
  describe(`examples/${example.name}`, () => {
    describe('start(databaseUrl)', () => {
      let running: RunningApp;
      const post = (body: unknown): Promise<Response> =>
        fetch(`${running.url}/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const expectError = async (response: Response, message: string): Promise<void> => {
        if (example.errorBody === 'json') expect(await response.json()).toEqual({ error: message });
        else expect(await response.text()).toBe(message);
      };

      beforeEach(async () => {
        running = await example.start(databaseUrl());
      });

      // Every test ends with each connection given back once, none borrowed, and no backend beyond the pool's idle clients.
      afterEach(async () => {
        try {
          await vi.waitFor(() => expectEverythingGivenBack(running, example.applicationName), SETTLED);
        } finally {
          await running.close();
        }
      });

      describe('GET /users', () => {
        it('answers the users as JSON and gives the connection back', async () => {
          const response = await fetch(`${running.url}/users`);
          expect(response.status).toBe(200);
          expect(await response.json()).toEqual(USERS);
          await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leased: 1, released: 1 }), SETTLED);
        });
      });

      describe('POST /transfers', () => {
        const afterOneMoved = { from: { id: 1, balance: SEED_BALANCES[1] - 1 }, to: { id: 2, balance: SEED_BALANCES[2] + 1 } };

        it('moves the amount in one transaction and answers 201 with both balances', async () => {
          const response = await post({ from: 1, to: 2, amount: 30 });
          expect(response.status).toBe(201);
          expect(await response.json()).toEqual({ from: { id: 1, balance: SEED_BALANCES[1] - 30 }, to: { id: 2, balance: SEED_BALANCES[2] + 30 } });
        });

        it('answers 409 to an overdraft, destroys the client left in the failed transaction, and moves nothing', async () => {
          const response = await post({ from: 2, to: 1, amount: 1_000 });
          expect(response.status).toBe(409);
          await expectError(response, 'insufficient funds');
          await vi.waitFor(() => expect(running.guard.stats().destroyed.unusable).toBe(1), SETTLED);
          expect(await (await post({ from: 1, to: 2, amount: 1 })).json()).toEqual(afterOneMoved);
        });

        it('answers 404 for an unknown account, and the transaction it left open is rolled back', async () => {
          const response = await post({ from: 1, to: 99, amount: 5 });
          expect(response.status).toBe(404);
          await expectError(response, 'no such account');
          await vi.waitFor(() => expect(running.guard.stats().released).toBe(1), SETTLED);
          expect(await (await post({ from: 1, to: 2, amount: 1 })).json()).toEqual(afterOneMoved);
        });

        it('answers 400 to a malformed transfer without leasing a connection', async () => {
          const response = await post({ from: 1, to: 2, amount: 'ten' });
          expect(response.status).toBe(400);
          await expectError(response, example.badAmountMessage);
          expect(running.guard.stats().leased).toBe(0);
        });
      });

      describe('GET /export', () => {
        it('streams every event as NDJSON', async () => {
          await expectEveryEvent(await fetch(`${running.url}/export`));
        });

        it('gives the connection back once when the client hangs up mid-stream', async () => {
          await hangUpOnFirstData(`${running.url}/export`);
          await vi.waitFor(() => expect(givenBack(running.guard.stats())).toBe(1), SETTLED);
          expect(running.guard.stats().leased).toBe(1);
        });
      });

      describe('GET /fail', () => {
        it(`is answered 500 by ${example.errorHandler}, without the internal message, and the connection goes back`, async () => {
          const response = await fetch(`${running.url}/fail`);
          expect(response.status).toBe(500);
          await expectError(response, 'Internal Server Error');
          await vi.waitFor(() => expect(running.guard.stats()).toMatchObject({ leased: 1, released: 1 }), SETTLED);
        });
      });
    });

    describeCommand(example.server, example.applicationName);
  });
}

/**
 * `server.ts` run as a command, as the README says (with DATABASE_URL set): it listens, answers
 * GET /users at its first URL, and on Ctrl-C exits 0 with no backend left.
 */
export function describeCommand(server: string, applicationName: string): void {
  describe('server.ts run as a command', () => {
    it('listens, answers GET /users, and exits with code 0 on Ctrl-C (SIGINT), leaving no backend', async () => {
      const { child, exited } = spawnExample(server);
      try {
        const url = await listeningUrl(child.stdout);
        const response = await fetch(`${url}/users`);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual(USERS);
        child.kill('SIGINT');
        expect(await exited).toBe(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await vi.waitFor(async () => expect(await backendsFor(applicationName)).toBe(0), SETTLED);
    });
  });
}

/** Runs an example's server.ts as a command (`node --import tsx`) on the tests' database and a free port; `exited` is its exit code. */
export function spawnExample(server: string): { child: ChildProcessByStdio<null, Readable, null>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', server], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl(), PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { child, exited: once(child, 'exit').then(([code]) => code as number | null) };
}

/** Each connection given back once, none borrowed, and no backend beyond the pool's idle clients. */
export async function expectEverythingGivenBack(
  running: { guard: ConnectionClosingMiddleware; pool: Pool<pg.Client> },
  applicationName: string,
): Promise<void> {
  expect(givenBack(running.guard.stats())).toBe(running.guard.stats().leased);
  expect(running.pool.borrowed).toBe(0);
  expect(await backendsFor(applicationName)).toBeLessThanOrEqual(running.pool.available);
}

/** GET /export's answer: 200, NDJSON, every event from the first to the last. */
export async function expectEveryEvent(response: Response): Promise<void> {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
  const lines = (await response.text()).trimEnd().split('\n');
  expect(lines).toHaveLength(EVENT_COUNT);
  expect(JSON.parse(lines[0]!)).toEqual({ id: 1, kind: 'login', at: '2026-01-01T00:01:00.000Z' });
  expect(JSON.parse(lines.at(-1)!)).toMatchObject({ id: EVENT_COUNT });
}

/** Connections given back to the pool: released, or destroyed when unfit. */
export function givenBack(stats: GuardStats): number {
  return stats.released + Object.values(stats.destroyed).reduce((sum, count) => sum + count, 0);
}

/** GETs `url` and hangs up as soon as the first bytes of the body arrive: a client leaving mid-stream. */
export function hangUpOnFirstData(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, (response) => {
      response.once('data', () => {
        request.destroy();
        resolve();
      });
    });
    request.on('error', reject); // before the first data: a real failure (after it, resolve() already won)
  });
}

/** The URL of the example's first "listening on …" line; its later output is drained. */
export async function listeningUrl(output: Readable): Promise<string> {
  let url: string | undefined;
  for await (const line of createInterface({ input: output })) {
    url = /listening on (\S+)/.exec(line)?.[1];
    if (url) break;
  }
  output.resume();
  if (!url) throw new Error('the example exited before it listened');
  return url;
}
