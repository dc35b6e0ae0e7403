// The clients the guarded cases use, in the host's protocol: requests answered in full, hang-ups,
// a slow upload, a reader that stops reading. HTTP/1.1 here (fetch, node:http, a raw socket);
// HTTP/2 in cleartext in http2-clients.ts.
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { hangUpMidStream, hangUpWhen } from '../support/hang-up.ts';
import type { Protocol } from '../support/http.ts';
import { getHttp2, hangUpMidStreamHttp2, hangUpWhenHttp2, pausedReaderHttp2, postJsonHttp2, startSlowUploadHttp2 } from './http2-clients.ts';

/** A JSON body of exactly 64 bytes, as a slow client uploads it. */
const SLOW_BODY = JSON.stringify({ pad: 'x'.repeat(54) });

/** A response's status, Retry-After and body text. */
export interface GetResult {
  status: number;
  retryAfter: string | null;
  text: string;
}

/**
 * How a client hangs up: its own request alone (HTTP/2: RST_STREAM with NGHTTP2_CANCEL, the
 * session goes on) or its whole connection (HTTP/1: the socket; HTTP/2: the session, every stream on it).
 */
export type HangUp = 'stream' | 'connection';

/** A POST whose body is in flight: `finish()` sends the rest and resolves with the response's status. */
export interface SlowUpload {
  finish(): Promise<number>;
}

/** A response its client stopped reading: `drain()` reads on and resolves whether it ended whole (false: the server cut it). */
export interface PausedReader {
  drain(): Promise<boolean>;
}

/** The guarded cases' client side, in one protocol. URLs are `http://127.0.0.1:port/path?query`. */
export interface GuardedClient {
  /** The ways a client of this protocol hangs up; the hang-up cases run once for each. */
  readonly hangUps: readonly HangUp[];
  /** A GET answered in full; rejects when the response is cut. */
  get(url: string): Promise<GetResult>;
  /** A POST of `value` as JSON, answered in full. */
  postJson(url: string, value: unknown): Promise<GetResult>;
  /** Sends a GET and hangs up `how` once `ready()` holds (polled); rejects if it never does. */
  hangUpWhen(url: string, ready: () => boolean | Promise<boolean>, how: HangUp): Promise<void>;
  /** Sends a GET and hangs up `how` as soon as the first bytes of the body arrive. */
  hangUpMidStream(url: string, how: HangUp): Promise<void>;
  /** Starts a POST of a 64-byte JSON body and sends only its first byte: the request is in the server, its body unread. */
  startSlowUpload(url: string): Promise<SlowUpload>;
  /** A GET whose client reads the headers, then stops reading. */
  pausedReader(url: string): Promise<PausedReader>;
}

const http1Client: GuardedClient = {
  hangUps: ['connection'],
  get,
  postJson: async (url, value) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), text: await response.text() };
  },
  hangUpWhen: (url, ready) => hangUpWhen(url, ready),
  hangUpMidStream: (url) => hangUpMidStream(url),
  startSlowUpload,
  pausedReader,
};

const http2Client: GuardedClient = {
  hangUps: ['stream', 'connection'],
  get: getHttp2,
  postJson: postJsonHttp2,
  hangUpWhen: hangUpWhenHttp2,
  hangUpMidStream: hangUpMidStreamHttp2,
  startSlowUpload: (url) => startSlowUploadHttp2(url, SLOW_BODY),
  pausedReader: pausedReaderHttp2,
};

/** The client side for a host's protocol. */
export function clientFor(protocol: Protocol): GuardedClient {
  return protocol === 'http2' ? http2Client : http1Client;
}

/** What a hang-up case's title says about `how`: nothing when the protocol has one way to hang up. */
export function hangUpTitle(client: GuardedClient, how: HangUp): string {
  if (client.hangUps.length === 1) return '';
  return how === 'stream' ? ' (RST_STREAM)' : ' (the whole session)';
}

/** A GET's status, Retry-After and body text. */
async function get(url: string): Promise<GetResult> {
  const response = await fetch(url);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text: await response.text() };
}

/**
 * Starts a POST of a 64-byte JSON body on a raw socket and sends only its first byte: the request
 * is in the server, its body unread, for as long as the test likes. `finish()` sends the rest and
 * resolves with the response's status.
 */
async function startSlowUpload(url: string): Promise<SlowUpload> {
  const { hostname, port, pathname: path } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${SLOW_BODY.length}\r\nConnection: close\r\n\r\n${SLOW_BODY[0]}`);
  let received = '';
  const response = new Promise<number>((resolve) => {
    socket.on('data', (chunk: Buffer) => void (received += chunk.toString()));
    socket.once('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1])));
  });
  return {
    finish: () => {
      socket.write(SLOW_BODY.slice(1));
      return response;
    },
  };
}

/**
 * A GET whose client reads the headers, then stops reading. `drain()` reads on and resolves when
 * the connection is closed (a paused socket sees the server's end only once it reads up to it),
 * with whether the response ended whole.
 */
function pausedReader(url: string): Promise<PausedReader> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, (response) => {
      response.pause();
      const closed = new Promise<boolean>((done) => response.socket.once('close', () => done(response.complete)));
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
