import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Headers } from '@closeguard/core';
import { refusal } from './refusal.ts';

/** A response as both `node:http` and the `node:http2` compatibility API give it. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

// HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2); Node drops them with a warning.
const HTTP2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Writes the status and headers; pairs become Node's flat `[name, value, …]` list. */
export function writeHead(res: NodeResponse, status: number, headers: Headers, http2: boolean): void {
  if (!Array.isArray(headers)) {
    const object = headers as Readonly<Record<string, string | readonly string[]>>;
    if (!http2) {
      (res as ServerResponse).writeHead(status, object as Record<string, string | string[]>);
      return;
    }
    const kept: Record<string, string | readonly string[]> = {};
    for (const name in object) if (!HTTP2_FORBIDDEN.has(name.toLowerCase())) kept[name] = object[name]!;
    (res as Http2ServerResponse).writeHead(status, kept as Record<string, string | string[]>);
    return;
  }
  const flat: string[] = [];
  for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
    if (http2 && HTTP2_FORBIDDEN.has(name.toLowerCase())) continue;
    flat.push(name, value);
  }
  if (http2) {
    // The HTTP/2 compatibility API takes objects only: repeat names become lists.
    const merged: Record<string, string | string[]> = {};
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase();
      const previous = merged[name];
      merged[name] = previous === undefined ? flat[i + 1]! : [previous, flat[i + 1]!].flat();
    }
    (res as Http2ServerResponse).writeHead(status, merged);
  } else {
    (res as ServerResponse).writeHead(status, flat);
  }
}

/** Sends an error response (see `refusal()`); an unread request body closes the HTTP/1 connection. */
export function sendError(res: NodeResponse, error: unknown, expose: boolean, requestDone: boolean): void {
  const { status, headers, body } = refusal(error, expose);
  headers['content-length'] = String(Buffer.byteLength(body));
  const http2 = 'stream' in res;
  // An unread request body would be parsed as the next request: close the connection instead.
  if (!requestDone && !http2) headers.connection = 'close';
  writeHead(res, status, headers, http2);
  res.end(body);
}
