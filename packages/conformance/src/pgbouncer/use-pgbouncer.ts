// A PgBouncer for the enclosing describe block.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { databaseUrl } from '../postgres/index.ts';
import { startPgBouncer, type PgBouncerOptions, type RunningPgBouncer } from './pgbouncer.ts';

/** Installing Debian's package on a fresh machine (apt-get update included) can take a while. */
const START_TIMEOUT_MS = 600_000;

/**
 * Starts PgBouncer in front of the run's PostgreSQL before the block's tests (installing it if it
 * may, see `ensurePgBouncer()`) and stops it after them, whether they passed or not. A test
 * during which PgBouncer died fails with its log. Read its `url` inside tests and hooks.
 * @example
 * const bouncer = usePgBouncer({ poolMode: 'transaction' });
 * it('…', async () => { const pool = new pg.Pool({ connectionString: bouncer.url }); … });
 */
export function usePgBouncer(options: Omit<PgBouncerOptions, 'upstreamUrl'> & { upstreamUrl?: string } = {}): RunningPgBouncer {
  let running: RunningPgBouncer | undefined;
  const started = (): RunningPgBouncer => {
    if (!running) throw new Error('usePgBouncer(): PgBouncer starts in beforeAll; read it inside a test or a hook');
    return running;
  };
  beforeAll(async () => {
    running = await startPgBouncer({ ...options, upstreamUrl: options.upstreamUrl ?? databaseUrl() });
  }, START_TIMEOUT_MS);
  afterEach(() => {
    // Every later test would fail on a refused connection: say once what happened.
    if (running && !running.isRunning()) throw new Error(`PgBouncer exited during this test; its log ends with:\n${running.log()}`);
  });
  afterAll(() => running?.stop());
  return {
    get url() {
      return started().url;
    },
    get adminUrl() {
      return started().adminUrl;
    },
    get pid() {
      return started().pid;
    },
    log: () => started().log(),
    isRunning: () => started().isRunning(),
    stop: () => started().stop(),
  };
}

