import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'generic-pool';
import type pg from 'pg';
import type { AuditPool, PoolSettings } from './pools.ts';

/** The example apps: one per framework, written by hand; then Express written with Drizzle ORM. */
export const FRAMEWORKS = ['express', 'fastify', 'koa', 'drizzle'] as const;
export type Framework = (typeof FRAMEWORKS)[number];
export const MODES = ['unguarded', 'guarded'] as const;
/** unguarded: acquire and release by hand, as apps are commonly written; guarded: closeguard's adapter. */
export type Mode = (typeof MODES)[number];

/** An example app listening on 127.0.0.1. `close()` cuts open connections and stops it. */
export interface ExampleServer {
  readonly port: number;
  close(): Promise<void>;
}

export type CreateExampleServer = (mode: Mode, pool: Pool<pg.Client>, port?: number) => Promise<ExampleServer>;

/** An example app serving on a pool of its own kind, which the run watches. */
export interface StartedApp {
  server: ExampleServer;
  pool: AuditPool;
}

/** Opens the app's pool for `mode` and starts the app on it. */
export type StartExampleApp = (mode: Mode, settings: PoolSettings, port?: number) => Promise<StartedApp>;

/** Listens on 127.0.0.1 (port 0: a free one) and resolves with the port. */
export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops a server without waiting for clients: hung requests of an unguarded app would never end. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
