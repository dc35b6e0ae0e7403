import { ReadableStream } from 'node:stream/web';
import type { Context } from 'hono';
import type { Exchange } from '@closeguard/node';

/**
 * Hono's chain returned: the request is settled, failed if Hono's `onError` answered an error. A
 * streamed body (`stream()`, `streamText()`, `c.body(readableStream)`) is still the handler's work
 * — its callback may still query — so the response carries it through `holdWebBody()`, and the
 * request goes on until it is read to its end, errored, or cancelled on a hang-up.
 */
export function settle(c: Context, exchange: Exchange): void {
  const res = c.res;
  const body = bodyOf(res);
  if (body instanceof ReadableStream) c.res = new Response(exchange.holdWebBody(body as ReadableStream<Uint8Array>) as never, res);
  exchange.settled(c.error);
}

let cacheKey: symbol | undefined;

/**
 * The body a response was made with, without making it: `@hono/node-server`'s lightweight
 * `Response` keeps `[status, body, headers]` under a private symbol until `.body` is read, which
 * would build a full Response (a stream even for a string) and take the answer off its fast path.
 * Any other Response has built its body already.
 */
function bodyOf(res: Response): unknown {
  cacheKey ??= Object.getOwnPropertySymbols(res).find((key) => key.description === 'cache');
  const cache = cacheKey === undefined ? undefined : (res as unknown as Record<symbol, unknown>)[cacheKey];
  return Array.isArray(cache) ? (cache as unknown[])[1] : res.body;
}
