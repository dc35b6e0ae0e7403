// pg helpers for tests on the real PostgreSQL: rows streamed from a pg-cursor, a client's backend pid.
import { Readable } from 'node:stream';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { closeCursor } from '@closeguard/pg';

/** What a cursor stream did so far; the route's test reads it. */
export interface CursorProbe {
  /** Cursors opened (on the stream's first read: a stream destroyed before it opens none). */
  opened: number;
  /** Rows read from PostgreSQL. */
  rows: number;
  /** Cursors closed (after `closeCursor()` settled). */
  closed: number;
  /** Called as a cursor starts closing: the connection must still be the request's then. */
  onClosing?: () => void;
  /** Called once a cursor closed. */
  onClosed?: () => void;
}

/** How the cursor reads. Durations in milliseconds. */
export interface CursorOptions {
  /** Sleeps this long in PostgreSQL before each batch of 100 rows: a slow query. Default 0. */
  batchSleep?: number;
}

/** A probe at zero, with the hooks given. */
export function createCursorProbe(hooks: Pick<CursorProbe, 'onClosing' | 'onClosed'> = {}): CursorProbe {
  return { opened: 0, rows: 0, closed: 0, ...hooks };
}

/**
 * The rows of `generate_series(1, count)` (each padded to ~100 bytes) from a pg-cursor on
 * `client`, 100 a read, as NDJSON lines. The cursor opens on the first read and closes with
 * `closeCursor()` in the generator's `finally`: on the last row, a `return()` and a hang-up alike.
 */
export async function* cursorRows(client: pg.ClientBase, count: number, probe: CursorProbe = createCursorProbe(), options: CursorOptions = {}): AsyncGenerator<string> {
  const sleep = (options.batchSleep ?? 0) / 1000;
  probe.opened++;
  const cursor = client.query(new Cursor(
    sleep > 0
      ? 'SELECT g, repeat($1, 100) AS pad, pg_sleep(CASE WHEN g % 100 = 1 THEN $3::float8 ELSE 0 END) AS slept FROM generate_series(1, $2::int) g'
      : 'SELECT g, repeat($1, 100) AS pad FROM generate_series(1, $2::int) g',
    sleep > 0 ? ['x', count, sleep] : ['x', count],
  ));
  try {
    for (let batch = await cursor.read(100); batch.length > 0; batch = await cursor.read(100)) {
      probe.rows += batch.length;
      yield batch.map((row) => `${JSON.stringify(row)}\n`).join('');
    }
  } finally {
    probe.onClosing?.();
    await closeCursor(cursor, client as pg.Client); // pg-cursor's close() alone never settles once the connection died
    probe.closed++;
    probe.onClosed?.();
  }
}

/** `cursorRows()` as a byte `Readable`, the way a route streams it to its framework's response. */
export function ndjsonCursor(client: pg.ClientBase, count: number, probe?: CursorProbe, options?: CursorOptions): Readable {
  return Readable.from(cursorRows(client, count, probe, options), { objectMode: false });
}

/** The pid of the PostgreSQL backend `client` is connected to. */
export async function backendPidOf(client: pg.ClientBase): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}
