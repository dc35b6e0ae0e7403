import { connect } from 'node:net';
import type pg from 'pg';

const CANCEL_REQUEST_CODE = 80877102;
const CANCEL_TIMEOUT_MS = 2_000;

type Keyed = pg.Client & { processID?: number | null; secretKey?: number | null; host?: string; port?: number };

/**
 * Asks PostgreSQL to cancel the query running on `client`, as psql's Ctrl-C does: a CancelRequest
 * on a new connection. Destroying the client alone would leave the query running server-side
 * until it next writes to the socket. Resolves when the server closed that connection, or after
 * a bound; never rejects.
 */
export function cancelQuery(client: pg.Client): Promise<void> {
  const { processID, secretKey, host = 'localhost', port = 5432 } = client as Keyed;
  if (typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve();
  return new Promise((resolve) => {
    const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, CANCEL_TIMEOUT_MS);
    socket.once('connect', () => {
      const request = Buffer.alloc(16);
      request.writeInt32BE(16, 0);
      request.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      request.writeInt32BE(processID, 8);
      request.writeInt32BE(secretKey, 12);
      socket.end(request);
    });
    socket.once('close', done);
    socket.once('error', done);
  });
}
