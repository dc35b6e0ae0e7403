import { CloseguardError, type JoinedCheckout } from '@closeguard/core';
import type pg from 'pg';
import { transactionStatus } from './client-state.ts';

/** What a COMMIT or ROLLBACK with no transaction of the checkout's own open becomes: PostgreSQL would only warn. */
const NOTHING = '-- closeguard: no transaction of this checkout is open, nothing to end';

let savepoints = 0;

type Query = (this: unknown, ...args: unknown[]) => unknown;

/**
 * A GuardedPool's checkout inside a transaction request (its policy's `join`): the request's own
 * client behind a Proxy, so that the library's transaction nests in the request's as Django nests
 * `atomic()` — its `BEGIN`/`START TRANSACTION` becomes `SAVEPOINT`, `COMMIT`/`END` becomes `RELEASE
 * SAVEPOINT`, `ROLLBACK`/`ABORT` becomes `ROLLBACK TO SAVEPOINT` (its own `SAVEPOINT`s, Drizzle's
 * nested transactions, nest inside as they are). `release()` rolls back to the savepoint of a
 * transaction the library left open, then ends the checkout: the client stays the request's, and
 * once the request ended the checkout refuses queries (`ERR_CLOSEGUARD_REQUEST_ENDED`). Everything
 * else is the client's own.
 */
export function joinClient(client: pg.Client, checkout: JoinedCheckout): pg.Client {
  /** The savepoint of the library's open transaction (PostgreSQL has one transaction at a time: a BEGIN inside it only warns). */
  let savepoint: string | undefined;
  let released = false;

  const query: Query = (...args) => {
    if (!checkout.active) return refuse(args);
    const [config] = args;
    const text = typeof config === 'string' ? config : isPlainQuery(config) ? config.text : undefined;
    let mapped: string | undefined;
    switch (typeof text === 'string' ? classify(text) : undefined) {
      case 'begin':
        if (savepoint === undefined) mapped = `SAVEPOINT ${(savepoint = `closeguard_${++savepoints}`)}`;
        else mapped = NOTHING;
        break;
      case 'commit':
        // In a failed transaction PostgreSQL answers COMMIT with a rollback: so does the savepoint.
        if (savepoint === undefined) mapped = NOTHING;
        else mapped = `${transactionStatus(client) === 'failed' ? 'ROLLBACK TO' : 'RELEASE'} SAVEPOINT ${savepoint}`;
        savepoint = undefined;
        break;
      case 'rollback':
        mapped = savepoint === undefined ? NOTHING : `ROLLBACK TO SAVEPOINT ${savepoint}`;
        savepoint = undefined;
        break;
    }
    if (mapped === undefined) return (client.query as Query).apply(client, args);
    const replaced = typeof config === 'string' ? mapped : { ...(config as object), text: mapped };
    return (client.query as Query).apply(client, [replaced, ...args.slice(1)]);
  };

  const release = (error?: unknown): void => {
    if (released) return;
    released = true;
    if (savepoint !== undefined && checkout.active) {
      // Left open (no COMMIT, no ROLLBACK): undone, as the release policy rolls back a plain
      // checkout's. Queued on the client before anything the request runs next.
      void client.query(`ROLLBACK TO SAVEPOINT ${savepoint}`).catch(() => undefined);
      savepoint = undefined;
    }
    checkout.release(error);
  };

  const bound = new WeakMap<object, unknown>();
  return new Proxy(client, {
    get(target, key) {
      if (key === 'query') return query;
      if (key === 'release') return release;
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      // The client's own methods run on the client itself (its fields, its listeners).
      let method = bound.get(value);
      if (method === undefined) bound.set(value, (method = (value as Query).bind(target)));
      return method;
    },
  });
}

/** A statement that begins, commits or rolls back a transaction; undefined for anything else. */
function classify(text: string): 'begin' | 'commit' | 'rollback' | undefined {
  const statement = text.trim().replace(/;\s*$/, '').replace(/\s+/g, ' ').toLowerCase();
  if (/^(begin|start transaction)( |$)/.test(statement)) return 'begin';
  if (/^(commit|end)( work| transaction)?$/.test(statement)) return 'commit';
  if (/^(rollback|abort)( work| transaction)?$/.test(statement)) return 'rollback';
  return undefined;
}

/** A query config with its text (not a Submittable: a cursor, a query stream). */
function isPlainQuery(config: unknown): config is { text: unknown } {
  return typeof config === 'object' && config !== null && typeof (config as { submit?: unknown }).submit !== 'function' && 'text' in config;
}

/** A query on a checkout whose request ended: failed as pg fails one on a closed client (callback, Submittable, or promise). */
function refuse(args: unknown[]): unknown {
  const error = new CloseguardError('ERR_CLOSEGUARD_REQUEST_ENDED', 'a GuardedPool client was used after its request ended');
  const [config] = args;
  const submittable = config as { submit?: unknown; handleError?: (error: Error) => void } | null;
  if (typeof submittable?.submit === 'function' && typeof submittable.handleError === 'function') {
    process.nextTick(() => submittable.handleError!(error));
    return config;
  }
  const callback = args.find((arg) => typeof arg === 'function') ?? (config as { callback?: unknown } | null)?.callback;
  if (typeof callback === 'function') {
    process.nextTick(callback, error);
    return undefined;
  }
  return Promise.reject(error);
}
