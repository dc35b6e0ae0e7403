import type { FastifyReply } from 'fastify';
import type { Headers } from '@closeguard/core';
import type { BodyOutcome, Driven, HostEnv } from '@closeguard/core/host';

/** How a gateway request's body ended, and the error when it failed. */
export interface Ending {
  outcome: BodyOutcome;
  error?: unknown;
  /** The error went to Fastify's error path (before the headers): it answers and logs it. */
  answered?: boolean;
}

type Ready = Extract<Driven, { ok: true }>;

/**
 * Sends a driven response through Fastify's reply: status and headers on the reply, the body as
 * a byte Readable given to `reply.send` (Fastify destroys it on a hang-up, which closes the app's
 * body; on an error after the headers it cuts the connection). HEAD, 204 and 304 send no body,
 * and the body is destroyed unread so its close() runs.
 */
export async function sendDriven({ status, headers, body }: Ready, env: HostEnv, reply: FastifyReply): Promise<Ending> {
  const names = headerObject(headers);
  reply.code(status).headers(names);
  try {
    if (env.method === 'HEAD' || status === 204 || status === 304) {
      body.destroy();
      reply.send();
    } else {
      // A response queued behind a pipelined one gets no 'close' when the socket goes first, so
      // Fastify would never destroy the body: the request's abort does.
      if (!reply.raw.socket) env.scope.whenAborted(() => body.destroy());
      reply.send(body);
    }
  } catch (error) {
    // Node refused a header (writeHead throws inside send): answer the error without them.
    body.destroy();
    for (const name of Object.keys(names)) reply.removeHeader(name);
    const outcome = await body.outcome;
    reply.code(500).send(error instanceof Error ? error : new Error(String(error)));
    return { outcome: outcome === 'timeout' ? outcome : 'error', error };
  }
  const outcome = await body.outcome;
  return { outcome, error: body.errored ?? undefined };
}

/** Gateway headers as the object Fastify's `reply.headers()` takes; repeated names become lists. */
function headerObject(headers: Headers): Record<string, string | string[]> {
  const object: Record<string, string | string[]> = {};
  if (!Array.isArray(headers)) {
    for (const [name, value] of Object.entries(headers as Readonly<Record<string, string | readonly string[]>>)) {
      object[name.toLowerCase()] = typeof value === 'string' ? value : [...value];
    }
    return object;
  }
  for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
    const key = name.toLowerCase();
    const previous = object[key];
    object[key] = previous === undefined ? value : [previous, value].flat();
  }
  return object;
}
