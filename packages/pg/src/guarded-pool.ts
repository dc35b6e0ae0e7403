import pg from 'pg';
import { createCheckouts, DEFAULT_ABORT_GRACE_MS, poolCheckouts, type Checkouts, type CheckoutsLogger } from '@closeguard/core/host';
import { watch } from './client-state.ts';
import { checkGuardedPoolArguments } from './guarded-pool-options.ts';
import { leaseView } from './lease-view.ts';

/** `GuardedPool`'s own options, besides pg.Pool's config. Durations in ms. */
export interface GuardedPoolOptions {
  /**
   * Outside a request: how long a client given back while a query still runs on it is waited for
   * before it is cancelled server-side and destroyed. Inside a request, the guard's `abortGrace`.
   * Default 5000.
   */
  abortGrace?: number;
  /** Where the warning about a pool no guard was given and failed give-backs outside requests go. Default: console. */
  logger?: CheckoutsLogger;
}

type ConnectCallback = (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

const ignore = (): void => undefined;

/**
 * A `pg.Pool` (it is one: `instanceof pg.Pool` holds, as Prisma's adapter requires) that ORMs and
 * query builders take as they take any pg.Pool, and that the guard takes as it is:
 * `connectionClosing({ pool })`. Inside a request the guard let in, every checkout — `connect()`
 * in either form, and `query()`, which checks out through it — belongs to the request: given
 * back by the release policy when the app releases it (an open transaction rolled back, an
 * unusable client destroyed, a busy one waited for), reclaimed and reported as a leak if the app
 * did not by the end of the request, never released while a query still runs on it, abandoned
 * if the client hangs up while it waits. A `release()` after closeguard took the client back does
 * nothing. Outside a request it is a plain pg.Pool with the same release policy.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_ARGUMENT` when `config` is not pg.Pool's
 * config object, `ERR_CLOSEGUARD_INVALID_OPTION` naming a wrong option.
 * @example
 * const pool = new GuardedPool({ connectionString: process.env.DATABASE_URL, max: 10 });
 * app.use(connectionClosing({ pool }));
 * const db = drizzle({ client: pool });
 */
export class GuardedPool extends pg.Pool {
  declare readonly [poolCheckouts]: Checkouts<pg.PoolClient>;
  /** Set while pg.Pool's own `query()` runs: the checkout it makes through `connect()` is the pool's own. */
  #own = false;
  #ending: Promise<void> | undefined;

  constructor(config?: pg.PoolConfig, options: GuardedPoolOptions = {}) {
    const { abortGrace, logger } = checkGuardedPoolArguments(config, options);
    super(config);
    // pg emits 'acquire' synchronously for every checkout: each client is watched (errors, end) from its first.
    this.on('acquire', watch);
    const checkouts = createCheckouts(leaseView(this), { name: 'GuardedPool', abortGrace: abortGrace ?? DEFAULT_ABORT_GRACE_MS, logger });
    Object.defineProperty(this, poolCheckouts, { value: checkouts });
  }

  /** pg.Pool's `connect()`: inside a guarded request the client is the request's; `client.release()` gives it back by the release policy. */
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    const own = this.#own;
    this.#own = false;
    const checkouts = this[poolCheckouts];
    if (callback !== undefined) {
      checkouts.checkout((error, client, giveBack, joined) => {
        if (client !== undefined && joined !== true) client.release = giveBack!;
        callback(error, client, giveBack ?? ignore);
      }, own);
      return;
    }
    return new Promise((resolve, reject) => {
      checkouts.checkout((error, client, giveBack, joined) => {
        if (client === undefined) return reject(error ?? new Error('pg.Pool gave no client'));
        if (joined !== true) client.release = giveBack!;
        resolve(client);
      }, own);
    });
  }

  /** pg.Pool's `end()`, which may be called again (by the guard's `close()`, then by the app or its ORM): the same promise. */
  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | void {
    this.#ending ??= super.end();
    if (callback === undefined) return this.#ending;
    void this.#ending.then(() => callback(), () => callback());
  }

  static {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- pg.Pool's own, called on the pool with apply()
    const query = pg.Pool.prototype.query as (this: pg.Pool, ...args: unknown[]) => unknown;
    // pg.Pool's query() checks a client out with this.connect(callback), synchronously, and releases
    // it when the query ends: that checkout is marked the pool's own (no leak if a hang-up cuts it).
    Object.defineProperty(this.prototype, 'query', {
      value: function guardedQuery(this: GuardedPool, ...args: unknown[]): unknown {
        this.#own = true;
        try {
          return query.apply(this, args);
        } finally {
          this.#own = false;
        }
      },
      writable: true,
      configurable: true,
    });
  }
}
