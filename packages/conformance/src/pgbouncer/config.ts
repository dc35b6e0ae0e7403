// What PgBouncer is given: its pgbouncer.ini and its auth file, written from the upstream URL.

/** How PgBouncer gives server connections out: per client session, per transaction, per statement. */
export type PoolMode = 'session' | 'transaction' | 'statement';

/** Where the files and the listener go; all of it is decided by startPgBouncer(). */
export interface ConfigPlaces {
  readonly port: number;
  readonly authFile: string;
  readonly pidFile: string;
}

/** The parts of a `postgres://user:password@host:port/database` URL that PgBouncer needs. */
export interface Upstream {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

/**
 * Reads `url`.
 * @throws TypeError when it is not a postgres:// URL with a user and a password (PgBouncer's auth
 * file needs the password to log into the server).
 */
export function parseUpstream(url: string): Upstream {
  const parsed = new URL(url);
  if (!/^postgres(ql)?:$/.test(parsed.protocol) || !parsed.username || !parsed.password) {
    throw new TypeError(`startPgBouncer() needs upstreamUrl as postgres://user:password@host:port/database, got "${parsed.protocol}//…${parsed.host}${parsed.pathname}"`);
  }
  const user = decodeURIComponent(parsed.username);
  return {
    user,
    password: decodeURIComponent(parsed.password),
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : 5432,
    database: decodeURIComponent(parsed.pathname.slice(1)) || user,
  };
}

/** The auth file's one line: PgBouncer checks clients against it and logs into the server with it. */
export function authFile({ user, password }: Upstream): string {
  return `${quoted(user)} ${quoted(password)}\n`;
}

/**
 * pgbouncer.ini: one database (the upstream's, under its own name), plain passwords (the auth file
 * holds the upstream's), the upstream's user as admin (SHOW POOLS), TCP on 127.0.0.1 only, no unix
 * socket (Debian's default, /var/run/postgresql, may be missing or someone else's), logs to stderr.
 */
export function pgbouncerIni(upstream: Upstream, places: ConfigPlaces, poolMode: PoolMode, poolSize: number, settings: Readonly<Record<string, string | number>>): string {
  const lines = {
    listen_addr: '127.0.0.1',
    listen_port: places.port,
    unix_socket_dir: '',
    auth_type: 'plain',
    auth_file: places.authFile,
    pidfile: places.pidFile,
    admin_users: upstream.user,
    pool_mode: poolMode,
    default_pool_size: poolSize,
    max_client_conn: 500,
    log_connections: 0,
    log_disconnections: 0,
    ...settings,
  };
  const database = `host=${upstream.host} port=${upstream.port} dbname=${upstream.database}`;
  return [
    '[databases]',
    `${upstream.database} = ${database}`,
    '',
    '[pgbouncer]',
    ...Object.entries(lines).map(([key, value]) => `${key} = ${value}`),
    '',
  ].join('\n');
}

/** The URL of `database` through PgBouncer on `port`, as the upstream's user. */
export function urlThrough({ user, password }: Upstream, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

function quoted(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}
