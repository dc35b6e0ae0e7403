import http from 'node:http';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ConnectionClosingMiddleware, signals, type ConnectionClosingOptions, type RequestFinishedMessage } from '@closeguard/core';
import { connectionClosing, type ConnectionClosingPluginOptions } from '@closeguard/fastify';
import { PoolHarness, quiet, usePoolHarness } from '@closeguard/conformance';

export { backendPids, eventually, hangUpMidStream, hangUpWhen, quiet } from '@closeguard/conformance';

/** Short grace periods so hang-up cases settle fast; they bound waits, they are not asserted. */
export const GRACE_MS = 300;

/** Everything a test made, disposed after it; requestFinished messages recorded meanwhile. */
export class Harness extends PoolHarness {
  readonly finished: RequestFinishedMessage[] = [];
  readonly #onFinish = (message: RequestFinishedMessage): void => void this.finished.push(message);

  constructor() {
    super('fastify');
    signals.requestFinished.subscribe(this.#onFinish);
  }

  /** A pool of real PostgreSQL clients tagged with a unique application_name. */
  pool(max: number, extra: Record<string, unknown> = {}): { pool: Pool<pg.Client>; name: string } {
    return this.createPool(max, extra);
  }

  /** A guard with short grace periods (asyncContext on: connection() works). */
  guard(options: ConnectionClosingOptions): ConnectionClosingMiddleware {
    return new ConnectionClosingMiddleware({ asyncContext: true, abortGrace: GRACE_MS, ...options });
  }

  /** A Fastify instance with `connectionClosing({ guard, ...plugin })`; `setup` adds routes; then it listens on port 0. */
  async serve(
    guard: ConnectionClosingMiddleware | undefined,
    setup: (fastify: FastifyInstance) => void | Promise<void>,
    options: FastifyServerOptions = {},
    plugin: Omit<ConnectionClosingPluginOptions, 'guard'> = {},
  ): Promise<{ url: string; fastify: FastifyInstance }> {
    const fastify = Fastify(options);
    if (guard) await fastify.register(connectionClosing, { logger: quiet, ...plugin, guard });
    await setup(fastify);
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    this.onDispose(async () => {
      fastify.server.closeAllConnections();
      await fastify.close();
    });
    const address = fastify.server.address() as { port: number };
    return { url: `http://127.0.0.1:${address.port}`, fastify };
  }

  override async dispose(): Promise<void> {
    await super.dispose();
    this.finished.splice(0);
  }

  override close(): void {
    signals.requestFinished.unsubscribe(this.#onFinish);
  }
}

/** A harness for this test file: after each test, asserts everything was given back, then disposes. */
export function useHarness(): Harness {
  return usePoolHarness(new Harness());
}

/** Sends a POST with a JSON body and hangs up once `ready()` holds (polled). */
export function postAndHangUpWhen(url: string, body: unknown, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => res.resume());
    req.on('error', () => undefined);
    req.end(JSON.stringify(body));
    const poll = (): void => {
      if (ready()) {
        req.destroy();
        resolve();
      } else {
        setTimeout(poll, 10);
      }
    };
    poll();
  });
}

/** A GET that the server cuts: resolves once the socket closed, whatever the answer. */
export function getUntilClosed(url: string): Promise<{ status: number | undefined }> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      res.on('close', () => resolve({ status: res.statusCode }));
    });
    req.on('error', () => resolve({ status: undefined }));
  });
}
