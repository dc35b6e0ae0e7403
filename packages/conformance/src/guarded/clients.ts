// Clients the guarded cases need beyond fetch(): a slow upload, a reader that stops reading.
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';

/** A JSON body of exactly 64 bytes, as a slow client uploads it. */
const SLOW_BODY = JSON.stringify({ pad: 'x'.repeat(54) });

/** A GET's status, Retry-After and body text. */
export async function get(url: string): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const response = await fetch(url);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text: await response.text() };
}

/**
 * Starts a POST of a 64-byte JSON body on a raw socket and sends only its first byte: the request
 * is in the server, its body unread, for as long as the test likes. `finish()` sends the rest and
 * resolves with the response's status line.
 */
export async function startSlowUpload(url: string, path: string): Promise<{ finish(): Promise<string>; socket: Socket }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${SLOW_BODY.length}\r\nConnection: close\r\n\r\n${SLOW_BODY[0]}`);
  let received = '';
  const response = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => void (received += chunk.toString()));
    socket.once('close', () => resolve(received.split('\r\n')[0] ?? ''));
  });
  return {
    socket,
    finish: () => {
      socket.write(SLOW_BODY.slice(1));
      return response;
    },
  };
}

/**
 * A GET whose client reads the headers, then stops reading. `drain()` reads on and resolves when
 * the connection is closed (a paused socket sees the server's end only once it reads up to it).
 */
export function pausedReader(url: string): Promise<{ drain(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, (response) => {
      response.pause();
      const closed = new Promise<void>((done) => response.socket.once('close', () => done()));
      response.on('error', () => undefined); // 'aborted': the server cut the body, as it should
      resolve({
        drain: () => {
          response.resume();
          return closed;
        },
      });
    });
    request.once('error', reject);
  });
}
