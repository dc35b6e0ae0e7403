// A real client on a real socket (node:net): sends one HTTP/1.1 request, then reads, pauses or
// destroys the socket as its behaviour says. Nothing here waits on a timer to decide an outcome:
// the socket's own 'close' ends every request.
import { connect } from 'node:net';
import type { ClientBehaviour } from './schedule.ts';

/** How a request ended, seen from the client. */
export interface ClientOutcome {
  /** The status line's code, when the head arrived. */
  status: number | undefined;
  /** Every byte received after the head (chunked framing included). */
  body: string;
  /** The client destroyed the socket before the answer was complete. */
  hungUp: boolean;
  /** The answer was complete: its Content-Length reached, or its last chunk. */
  complete: boolean;
  /** Nothing ended the request within `CLIENT_TIMEOUT_MS`: the client gave up. */
  timedOut: boolean;
}

/** A request no server event ends within this long is reported, never waited on forever. */
export const CLIENT_TIMEOUT_MS = 20_000;

/** Sends `GET path` to 127.0.0.1:`port` with `Connection: close`; resolves when the socket closed. */
export function send(port: number, path: string, behaviour: ClientBehaviour = {}): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let received = 0;
    let paused = false;
    const outcome: ClientOutcome = { status: undefined, body: '', hungUp: false, complete: false, timedOut: false };
    const timers: NodeJS.Timeout[] = [];

    const hangUp = (): void => {
      if (socket.destroyed) return;
      outcome.complete = isComplete(Buffer.concat(chunks).toString('latin1'));
      if (outcome.complete) return; // the answer beat the hang-up: the server closes the socket itself
      outcome.hungUp = true;
      if (behaviour.hangUp?.reset === true) socket.resetAndDestroy();
      else socket.destroy();
    };

    socket.setNoDelay(true);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const hang = behaviour.hangUp;
    if (hang !== undefined && 'afterMs' in hang) timers.push(setTimeout(hangUp, hang.afterMs));
    timers.push(setTimeout(() => {
      outcome.timedOut = true;
      socket.destroy();
    }, CLIENT_TIMEOUT_MS));

    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (hang !== undefined && 'afterBytes' in hang && received >= hang.afterBytes) {
        hangUp();
        return;
      }
      if (behaviour.pauseMs !== undefined && !paused) {
        paused = true;
        socket.pause();
        timers.push(setTimeout(() => socket.resume(), behaviour.pauseMs));
      }
    });
    socket.on('error', () => undefined); // a reset from the server is an outcome, read below
    socket.on('close', () => {
      for (const timer of timers) clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (status) outcome.status = Number(status[1]);
      outcome.body = head === -1 ? '' : text.slice(head + 4);
      if (!outcome.hungUp) outcome.complete = isComplete(text);
      resolve(outcome);
    });
  });
}

/** Whether `text` (head and body) holds a whole answer. */
function isComplete(text: string): boolean {
  const head = text.indexOf('\r\n\r\n');
  if (head === -1) return false;
  const headers = text.slice(0, head).toLowerCase();
  const length = /\r\ncontent-length: *(\d+)/.exec(headers);
  if (length) return text.length - head - 4 >= Number(length[1]);
  if (/\r\ntransfer-encoding: *chunked/.test(headers)) return text.endsWith('\r\n0\r\n\r\n') || text.slice(head + 4) === '0\r\n\r\n';
  return false;
}

/** The `g` of each NDJSON row in a cursor answer's body, in order. */
export function rowsIn(body: string): number[] {
  return [...body.matchAll(/\{"g":(\d+),/g)].map((match) => Number(match[1]));
}
