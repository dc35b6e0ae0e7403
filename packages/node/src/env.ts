import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { CloseguardError } from '@closeguard/core';
import { type HostEnv, type HostScope } from '@closeguard/core/host';

/** A request as both `node:http` and the `node:http2` compatibility API give it. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** Where a request came from, for `env.host`: the host's name and its native request objects. */
export interface EnvSource {
  name: string;
  native: unknown;
  /** The URL the app sees, when it is not `req.url` (a framework mount strips its prefix). */
  url?: string;
}

/**
 * Builds a gateway env from a Node request (framework adapters use it too). `env.body` reads the
 * request once and throws a 413 `CloseguardError` past `bodyLimit` bytes.
 */
export function createEnv(req: NodeRequest, source: EnvSource, scope: HostScope, bodyLimit: number): HostEnv {
  const url = source.url ?? req.url ?? '/';
  const mark = url.indexOf('?');
  const socket = req.socket as (typeof req.socket & { encrypted?: boolean }) | null;
  return {
    method: req.method ?? 'GET',
    url,
    path: mark === -1 ? url : url.slice(0, mark),
    query: mark === -1 ? '' : url.slice(mark + 1),
    headers: req.headers,
    body: readOnce(req, bodyLimit),
    // A getter: the scope makes its AbortController only when someone reads the signal.
    get signal() {
      return scope.signal;
    },
    remoteAddress: socket?.remoteAddress,
    scheme: socket?.encrypted === true ? 'https' : 'http',
    httpVersion: req.httpVersion,
    scope,
    host: { name: source.name, native: source.native },
  };
}

/** The request body as an async iterable that can be read once and stops at `limit` bytes. */
function readOnce(req: NodeRequest, limit: number): AsyncIterable<Uint8Array> {
  let taken = false;
  return {
    [Symbol.asyncIterator]() {
      if (taken) throw new CloseguardError('ERR_CLOSEGUARD_BODY_CONSUMED', 'env.body was read twice');
      taken = true;
      return readLimited(req, limit);
    },
  };
}

async function* readLimited(req: NodeRequest, limit: number): AsyncGenerator<Uint8Array, void, undefined> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw tooLarge(declared, limit);
  let received = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limit) throw tooLarge(received, limit);
    yield chunk;
  }
}

function tooLarge(size: number, limit: number): CloseguardError {
  return new CloseguardError('ERR_CLOSEGUARD_BODY_TOO_LARGE', `the request body has at least ${size} bytes; the limit is ${limit}`);
}
