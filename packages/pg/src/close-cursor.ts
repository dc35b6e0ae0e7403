import type pg from 'pg';
import { stateOf } from './client-state.ts';

/** What `closeCursor()` needs of a cursor: pg-cursor's `close(callback)`. */
export interface ClosableCursor {
  close(callback: (error?: Error) => void): unknown;
}

/**
 * Closes a pg-cursor `cursor` running on `client`, and settles even when the client's connection
 * is gone. pg-cursor's own `close()` waits for a ReadyForQuery that an ended connection never
 * sends: after a hang-up past `abortGrace` (the guard destroys the busy client), a restart or a
 * terminated backend, `await cursor.close()` in a `finally` never returns, and the stream, the
 * generator and the client are held forever. Use this in its place. Never rejects: a close that
 * fails leaves nothing to clean up on this side (the portal dies with its connection or its
 * transaction).
 * @example
 * const cursor = client.query(new Cursor('SELECT * FROM events'));
 * try {
 *   for (let rows = await cursor.read(100); rows.length > 0; rows = await cursor.read(100)) yield rows;
 * } finally {
 *   await closeCursor(cursor, client);
 * }
 */
export function closeCursor(cursor: ClosableCursor, client: pg.Client): Promise<void> {
  // A dead connection has no portal left to close, and would never answer.
  if (stateOf(client)?.broken === true || isEnded(client)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      client.off('end', done);
      client.off('error', done);
      resolve();
    };
    client.once('end', done);
    client.once('error', done);
    try {
      cursor.close(done);
    } catch {
      done();
    }
  });
}

/** Whether the client's socket is gone (a client @closeguard/pg does not watch). */
function isEnded(client: pg.Client): boolean {
  const internals = client as pg.Client & { _ending?: boolean; _ended?: boolean };
  return internals._ending === true || internals._ended === true;
}
