// The guarded cases' clients over HTTP/2 in cleartext (h2c, prior knowledge): each request on a
// session of its own, as `fetch` opens a connection per concurrent request. A hang-up is either
// the stream's (RST_STREAM with NGHTTP2_CANCEL, as a browser's aborted fetch) or the session's
// (its socket destroyed with every stream on it).
import { once } from 'node:events';
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { waitFor } from '../support/wait.ts';
import type { GetResult, HangUp, PausedReader, SlowUpload } from './clients.ts';

const POLL_TIMEOUT_MS = 10_000;

/** A session to `url`'s origin; a reset from the server is what some cases expect, not a failure. */
async function openSession(url: string): Promise<ClientHttp2Session> {
  const session = connect(new URL(url).origin);
  session.on('error', () => undefined);
  await once(session, 'connect');
  return session;
}

/** Sends a request for `url`'s path and query on `session`. */
function request(session: ClientHttp2Session, url: string, headers: OutgoingHttpHeaders = {}, endStream = true): ClientHttp2Stream {
  const { pathname, search } = new URL(url);
  const stream = session.request({ ':method': 'GET', ':path': pathname + search, ...headers }, { endStream });
  stream.on('error', () => undefined); // a reset stream: its 'close' tells the rest
  return stream;
}

/**
 * Reads a whole response; rejects when it was cut: closed before its headers, or reset with an
 * error code (Node's client cannot tell a reset with NO_ERROR from END_STREAM: servers must not cut with it).
 */
function readResponse(stream: ClientHttp2Stream): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    let status: number | undefined;
    let retryAfter: string | null = null;
    let ended = false;
    const chunks: Buffer[] = [];
    stream.once('response', (headers) => {
      status = Number(headers[':status']);
      const value = headers['retry-after'];
      retryAfter = value === undefined ? null : String(value);
    });
    stream.on('data', (chunk: Buffer) => void chunks.push(chunk));
    stream.once('end', () => (ended = true));
    stream.once('close', () => {
      if (status !== undefined && ended && stream.rstCode === constants.NGHTTP2_NO_ERROR) resolve({ status, retryAfter, text: Buffer.concat(chunks).toString('utf8') });
      else reject(new Error(`the response was cut (status ${String(status)}, RST_STREAM code ${String(stream.rstCode)})`));
    });
  });
}

/** A request on a session of its own, answered in full; the session is closed after it. */
async function exchange(url: string, headers?: OutgoingHttpHeaders, body?: string): Promise<GetResult> {
  const session = await openSession(url);
  try {
    const stream = request(session, url, headers, body === undefined);
    if (body !== undefined) stream.end(body);
    return await readResponse(stream);
  } finally {
    session.close();
  }
}

/** A GET's status, Retry-After and body text; rejects when the response is cut. */
export function getHttp2(url: string): Promise<GetResult> {
  return exchange(url);
}

/** A POST of a JSON body. */
export function postJsonHttp2(url: string, value: unknown): Promise<GetResult> {
  const body = JSON.stringify(value);
  return exchange(url, { ':method': 'POST', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body);
}

/** Hangs up the stream (RST_STREAM, then the session ends) or the whole session. */
function hangUp(session: ClientHttp2Session, stream: ClientHttp2Stream, how: HangUp): void {
  if (how === 'stream') {
    stream.close(constants.NGHTTP2_CANCEL);
    session.close(); // GOAWAY after the reset: the session ends once the stream is gone
  } else {
    session.destroy();
  }
}

/** Sends a GET and hangs up `how` as soon as the first bytes of the body arrive. */
export async function hangUpMidStreamHttp2(url: string, how: HangUp): Promise<void> {
  const session = await openSession(url);
  const stream = request(session, url);
  await new Promise<void>((resolve) => {
    stream.once('data', () => {
      hangUp(session, stream, how);
      resolve();
    });
    stream.once('close', () => resolve());
  });
}

/** Sends a GET and hangs up `how` once `ready()` holds (polled). */
export async function hangUpWhenHttp2(url: string, ready: () => boolean | Promise<boolean>, how: HangUp): Promise<void> {
  const session = await openSession(url);
  const stream = request(session, url);
  stream.resume();
  try {
    await waitFor(`the hang-up condition of ${url}`, ready, POLL_TIMEOUT_MS);
  } finally {
    hangUp(session, stream, how);
  }
}

/** Starts a POST of `body` and sends only its first byte; `finish()` sends the rest and resolves with the status. */
export async function startSlowUploadHttp2(url: string, body: string): Promise<SlowUpload> {
  const session = await openSession(url);
  const stream = request(session, url, { ':method': 'POST', 'content-type': 'application/json', 'content-length': String(body.length) }, false);
  stream.write(body[0]);
  const response = readResponse(stream).finally(() => session.close());
  return {
    finish: async () => {
      stream.end(body.slice(1));
      return (await response).status;
    },
  };
}

/** A GET whose client reads the headers, then stops reading; `drain()` reads on and resolves whether the response ended whole. */
export async function pausedReaderHttp2(url: string): Promise<PausedReader> {
  const session = await openSession(url);
  const stream = request(session, url);
  const whole = readResponse(stream).then(
    () => true,
    () => false,
  );
  await once(stream, 'response');
  stream.pause();
  return {
    drain: () => {
      stream.resume();
      return whole.finally(() => session.close());
    },
  };
}
