import { pipeline, type Readable } from 'node:stream';
import type { GatewayApp, Headers, Logger } from '@closeguard/core';
import { drive, type BodyOutcome, type DriveOptions, type HostEnv } from '@closeguard/core/host';
import type { Exchange } from './exchange.ts';

/**
 * The few calls that write a gateway app's answer through a framework, so its own response path
 * (compression, loggers, error handlers) sees it. One object per host, shared by every request:
 * `target` is the request's native object (`res`, Fastify's `reply`, Koa's `ctx`).
 */
export interface GatewayWriter<Target> {
  /**
   * Sends the status, the headers and the body: a byte `Readable` to stream (the framework must
   * destroy it when the client hangs up and cut the connection when it errors), or none (HEAD,
   * 204, 304). May throw when Node refuses a header; nothing was sent then.
   */
  send(target: Target, status: number, headers: Headers, body: Readable | undefined): void;
  /**
   * Hands a failure that came before anything was sent to the framework's error path (`next(error)`,
   * `reply.send(error)`, a throw Koa catches): its error handler answers and logs it.
   */
  fail(target: Target, error: unknown): void;
}

/** What serving a gateway body takes: the driver's options, and where to log a failure after the headers. */
export interface ServeSettings extends DriveOptions {
  logger: Logger;
}

/**
 * Serves a gateway app's answer for one request through a framework's response: drives the app
 * (its body's `close()` runs exactly once on every path), writes status, headers and body with
 * `writer`, and holds `exchange` until the body has closed. A failure before the headers goes to
 * the framework's error path; one after them cuts the connection (the framework destroys the
 * response) and is logged; a body stuck at an `await` past `abortGrace` ends the request
 * 'timeout', its connections destroyed, not released. HEAD, 204 and 304 send no body; a body
 * nobody can receive any more (the response is over) is closed unread.
 * @returns once the answer is handed to the framework (a body may still be streaming); rejects
 * with what `writer.fail` throws (Koa's error path).
 */
export async function serveGateway<Target>(app: GatewayApp, env: HostEnv, exchange: Exchange, writer: GatewayWriter<Target>, target: Target, settings: ServeSettings): Promise<void> {
  const driven = await drive(app, env, settings);
  if (!driven.ok) {
    if (driven.outcome === 'error') {
      exchange.failed();
      writer.fail(target, driven.error);
    } else {
      if (driven.outcome === 'timeout') void env.scope.close('timeout');
      if (!exchange.res.destroyed) exchange.res.destroy(); // aborted or given up on: no one to answer
    }
    return;
  }
  const { body } = driven;
  if (exchange.isOver) {
    body.destroy(); // the client left while the app prepared its answer
    return;
  }
  const bodyless = env.method === 'HEAD' || driven.status === 204 || driven.status === 304;
  try {
    writer.send(target, driven.status, driven.headers, bodyless ? undefined : body);
  } catch (error) {
    body.destroy();
    await body.outcome;
    exchange.failed();
    writer.fail(target, error);
    return;
  }
  if (bodyless) {
    body.destroy();
    return;
  }
  // First: a body that failed or was given up on closes its scope with that reason before the hold ends the request.
  void body.outcome.then((outcome) => bodyEnded(outcome, body.errored, env, exchange, settings.logger));
  exchange.holdBody(body);
}

/** The body is closed: a failure after the headers (the connection was cut) is logged and ends the request 'error'. */
function bodyEnded(outcome: BodyOutcome, error: unknown, env: HostEnv, exchange: Exchange, logger: Logger): void {
  if (outcome === 'timeout') {
    void env.scope.close('timeout');
  } else if (outcome === 'error') {
    logger.error(`closeguard: ${env.method} ${env.url} failed after the headers were sent`, error);
    exchange.failed();
    void env.scope.close('error');
  }
}

/**
 * Gateway headers as one object, names lower-cased, a name given more than once (pairs) with all
 * its values: what a framework's `reply.headers()`, `ctx.set()` or `res.set()` takes.
 */
export function headerRecord(headers: Headers): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  if (!Array.isArray(headers)) {
    const object = headers as Readonly<Record<string, string | readonly string[]>>;
    for (const name in object) {
      const value = object[name]!;
      record[name.toLowerCase()] = typeof value === 'string' ? value : [...value];
    }
    return record;
  }
  for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
    const key = name.toLowerCase();
    const previous = record[key];
    record[key] = previous === undefined ? value : [previous, value].flat();
  }
  return record;
}

/**
 * Streams a body into a Node response (or a framework's wrapper of it, like compression's):
 * `pipeline`, not `pipe`, which never destroys the source on a hang-up. A body error destroys the
 * response, which cuts the connection: the client must not take a truncated body as whole.
 */
export function pipeBody(body: Readable, res: NodeJS.WritableStream & { destroyed: boolean; destroy(): unknown }): void {
  try {
    pipeline(body, res, (error) => {
      if (error && !res.destroyed) res.destroy();
    });
  } catch {
    // Node ≥ 23 throws ERR_STREAM_UNABLE_TO_PIPE (and leaves the body alive) when the client left
    // between the first chunk and this line.
    body.destroy();
  }
}
