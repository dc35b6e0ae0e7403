import { STATUS_CODES } from 'node:http';
import { getErrorStatus } from '@closeguard/core';

/** An error answer as every host sends it: the same status, headers and body on every framework. */
export interface Refusal {
  status: number;
  /** `content-type`, and `retry-after` (seconds) on a 503. Lower-case names. */
  headers: Record<string, string>;
  /** The status text and a newline; the error's stack when exposed (development). */
  body: string;
}

/**
 * The answer to an error that has a status (a closing guard's 503, an oversized body's 413, a
 * contract breach's 500): its status (4xx/5xx, else 500), `Retry-After` on a 503 (the error's
 * `retryAfter`, else 1 second), and a plain-text body that shows no internals unless `expose`.
 * Adapters write it through their framework (`res.status().set().send()`, `reply.code()…`,
 * `ctx.status`/`ctx.body`), so its hooks and loggers see it.
 * @example
 * const { status, headers, body } = refusal(error);
 * reply.code(status).headers(headers).send(body);
 */
export function refusal(error: unknown, expose = false): Refusal {
  const status = getErrorStatus(error);
  const body = expose && error instanceof Error ? `${error.stack ?? error.message}\n` : `${STATUS_CODES[status] ?? 'Error'}\n`;
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (status === 503) headers['retry-after'] = String(retryAfterSeconds(error));
  return { status, headers, body };
}

/** Seconds a client should wait before retrying an overloaded server: the error's, else 1. */
function retryAfterSeconds(error: unknown): number {
  const seconds = (error as { retryAfter?: unknown } | null)?.retryAfter;
  return typeof seconds === 'number' && seconds >= 0 ? Math.ceil(seconds) : 1;
}
