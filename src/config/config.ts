import { parseLibvirtUri } from '#src/libvirt/index.js';

/**
 * The gateway's configuration: the only place that reads environment variables.
 * `loadConfig(process.env)` runs once at boot; everything else receives the
 * resulting frozen object (through Nest as APP_CONFIG).
 */

export const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  /** PORT: HTTP port of the api role. */
  readonly port: number;
  /** HOST: address the HTTP server binds (0.0.0.0 in a container). */
  readonly host: string;
  /** ROLE: api (HTTP only), worker (jobs only) or all (both, one process). */
  readonly role: Role;
  /** REDIS_URL: redis:// or rediss:// URL. */
  readonly redisUrl: string;
  /** VIRTGATE_REDIS_PREFIX: prefix of every key the gateway writes. */
  readonly redisPrefix: string;
  /** LIBVIRT_DEFAULT_URI: the libvirt host used when a request names none. */
  readonly libvirtDefaultUri: string;
  /** VIRTGATE_ADMIN_TOKEN: the admin bearer token; generated at first start when unset. */
  readonly adminToken: string | undefined;
  /** LOG_LEVEL: pino level. */
  readonly logLevel: LogLevel;
  /** LIBVIRT_POOL_SIZE: read-only connections the api role keeps per host (libvirtd runs 5 calls at a time per connection). */
  readonly libvirtPoolSize: number;
  /** LIBVIRT_CONNECT_TIMEOUT_MS: deadline for reaching a host and completing the handshake. */
  readonly libvirtConnectTimeoutMs: number;
  /** LIBVIRT_CALL_TIMEOUT_MS: deadline of one libvirt call made by the api role. */
  readonly libvirtCallTimeoutMs: number;
  /** GRAPHQL_MAX_DEPTH: deepest field nesting a GraphQL operation may have (introspection aside). */
  readonly graphqlMaxDepth: number;
  /** GRAPHQL_MAX_COST: highest estimated cost of a GraphQL operation (fields × page sizes). */
  readonly graphqlMaxCost: number;
  /**
   * JOB_LOCK_MS: how long a worker's hold on a running job lasts without renewal
   * (renewed every half of it). A worker that dies is noticed, and its jobs handed
   * to another, within about three times this.
   */
  readonly jobLockMs: number;
  /**
   * JOB_RETENTION_HOURS: how long a finished job's record (completed, failed,
   * canceled) stays readable; running ones are kept whatever their age.
   */
  readonly jobRetentionHours: number;
  /**
   * BLOCK_JOB_CONCURRENCY: block jobs one worker process follows at once. A
   * block job holds its place from start to end, `ready` included (a copy may
   * wait there for hours for its pivot): more wait queued beyond this.
   */
  readonly blockJobConcurrency: number;
  /**
   * RATE_LIMIT_WINDOW_MS: the window of the request rate limits below, and of
   * the sampling of rejected requests' log lines (one line per address per window).
   */
  readonly rateLimitWindowMs: number;
  /** RATE_LIMIT_PER_TOKEN: requests one bearer token may make per window, across api processes (0: no limit). */
  readonly rateLimitPerToken: number;
  /** RATE_LIMIT_PER_ADDRESS: requests one client address may make per window, across api processes (0: no limit). */
  readonly rateLimitPerAddress: number;
  /**
   * AUTH_FAILURES_PER_ADDRESS: failed authentications (401) one client address
   * may have per window; beyond, its requests are answered 429 until the window ends (0: no limit).
   */
  readonly authFailuresPerAddress: number;
  /** HTTP_MAX_CONNECTIONS: open client connections; a new one beyond closes the idlest (keep it under `ulimit -n`). */
  readonly httpMaxConnections: number;
  /** HTTP_HEADERS_TIMEOUT_MS: time a connection has to send a request's headers (the first from when it opens). */
  readonly httpHeadersTimeoutMs: number;
  /** HTTP_REQUEST_TIMEOUT_MS: time a client has to send a whole request, body included. */
  readonly httpRequestTimeoutMs: number;
  /** HTTP_KEEP_ALIVE_TIMEOUT_MS: how long an idle keep-alive connection stays open. */
  readonly httpKeepAliveTimeoutMs: number;
  /** HTTP_CONNECTION_TIMEOUT_MS: a connection silent this long both ways is closed (above the 60 s of `Prefer: wait`). */
  readonly httpConnectionTimeoutMs: number;
  /** BODY_LIMIT_BYTES: the largest request body accepted (413 beyond). */
  readonly bodyLimitBytes: number;
  /** JSON_MAX_DEPTH: the deepest nesting of arrays and objects a JSON body may have (413 beyond). */
  readonly jsonMaxDepth: number;
  /** JOBS_MAX_ACTIVE_PER_CALLER: jobs one caller may have queued or running at once (429 QUOTA_EXCEEDED beyond). */
  readonly jobsMaxActivePerCaller: number;
  /**
   * CORS_ORIGINS: comma-separated origins (`https://a.example`) browsers may call
   * the API from, or `*`; empty (default): no CORS headers, browsers allow none.
   */
  readonly corsOrigins: readonly string[];
}

export const CONFIG_DEFAULTS = {
  PORT: '8080',
  HOST: '127.0.0.1',
  ROLE: 'all',
  REDIS_URL: 'redis://127.0.0.1:6379',
  VIRTGATE_REDIS_PREFIX: 'virtgate:',
  LIBVIRT_DEFAULT_URI: 'qemu:///system',
  LOG_LEVEL: 'info',
  LIBVIRT_POOL_SIZE: '4',
  LIBVIRT_CONNECT_TIMEOUT_MS: '3000',
  LIBVIRT_CALL_TIMEOUT_MS: '30000',
  GRAPHQL_MAX_DEPTH: '12',
  GRAPHQL_MAX_COST: '250000',
  JOB_LOCK_MS: '30000',
  JOB_RETENTION_HOURS: '168',
  BLOCK_JOB_CONCURRENCY: '64',
  RATE_LIMIT_WINDOW_MS: '60000',
  RATE_LIMIT_PER_TOKEN: '6000',
  RATE_LIMIT_PER_ADDRESS: '12000',
  AUTH_FAILURES_PER_ADDRESS: '30',
  HTTP_MAX_CONNECTIONS: '10000',
  HTTP_HEADERS_TIMEOUT_MS: '10000',
  HTTP_REQUEST_TIMEOUT_MS: '60000',
  HTTP_KEEP_ALIVE_TIMEOUT_MS: '72000',
  HTTP_CONNECTION_TIMEOUT_MS: '120000',
  BODY_LIMIT_BYTES: '2097152',
  JSON_MAX_DEPTH: '64',
  JOBS_MAX_ACTIVE_PER_CALLER: '100',
  CORS_ORIGINS: '',
} as const;

/** The configuration is invalid; `problems` has one line per bad variable, each naming it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the configuration from `env` (normally `process.env`).
 * An empty variable counts as unset. Throws a ConfigError listing every bad
 * variable, so one failed start shows all of them.
 */
export function loadConfig(env: Env): AppConfig {
  const problems: string[] = [];
  const read = <T>(name: string, parse: (raw: string) => T, fallback: string): T => {
    const given = env[name];
    const raw = given === undefined || given === '' ? fallback : given;
    try {
      return parse(raw);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      problems.push(`${name} ${err.message}, got ${JSON.stringify(raw)}`);
      return undefined as T;
    }
  };

  const config: AppConfig = {
    port: read('PORT', parsePort, CONFIG_DEFAULTS.PORT),
    host: read('HOST', parseHost, CONFIG_DEFAULTS.HOST),
    role: read('ROLE', oneOf(ROLES), CONFIG_DEFAULTS.ROLE),
    redisUrl: read('REDIS_URL', parseRedisUrl, CONFIG_DEFAULTS.REDIS_URL),
    redisPrefix: read('VIRTGATE_REDIS_PREFIX', parsePrefix, CONFIG_DEFAULTS.VIRTGATE_REDIS_PREFIX),
    libvirtDefaultUri: read(
      'LIBVIRT_DEFAULT_URI',
      parseLibvirtDefaultUri,
      CONFIG_DEFAULTS.LIBVIRT_DEFAULT_URI,
    ),
    adminToken: readAdminToken(env.VIRTGATE_ADMIN_TOKEN, problems),
    logLevel: read('LOG_LEVEL', oneOf(LOG_LEVELS), CONFIG_DEFAULTS.LOG_LEVEL),
    libvirtPoolSize: read('LIBVIRT_POOL_SIZE', intIn(1, 64), CONFIG_DEFAULTS.LIBVIRT_POOL_SIZE),
    libvirtConnectTimeoutMs: read(
      'LIBVIRT_CONNECT_TIMEOUT_MS',
      intIn(100, 120_000),
      CONFIG_DEFAULTS.LIBVIRT_CONNECT_TIMEOUT_MS,
    ),
    libvirtCallTimeoutMs: read(
      'LIBVIRT_CALL_TIMEOUT_MS',
      intIn(100, 600_000),
      CONFIG_DEFAULTS.LIBVIRT_CALL_TIMEOUT_MS,
    ),
    graphqlMaxDepth: read('GRAPHQL_MAX_DEPTH', intIn(2, 100), CONFIG_DEFAULTS.GRAPHQL_MAX_DEPTH),
    graphqlMaxCost: read(
      'GRAPHQL_MAX_COST',
      intIn(10, 100_000_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_COST,
    ),
    jobLockMs: read('JOB_LOCK_MS', intIn(500, 600_000), CONFIG_DEFAULTS.JOB_LOCK_MS),
    jobRetentionHours: read(
      'JOB_RETENTION_HOURS',
      intIn(1, 87_600),
      CONFIG_DEFAULTS.JOB_RETENTION_HOURS,
    ),
    blockJobConcurrency: read(
      'BLOCK_JOB_CONCURRENCY',
      intIn(1, 1000),
      CONFIG_DEFAULTS.BLOCK_JOB_CONCURRENCY,
    ),
    rateLimitWindowMs: read(
      'RATE_LIMIT_WINDOW_MS',
      intIn(100, 3_600_000),
      CONFIG_DEFAULTS.RATE_LIMIT_WINDOW_MS,
    ),
    rateLimitPerToken: read(
      'RATE_LIMIT_PER_TOKEN',
      intIn(0, 10_000_000),
      CONFIG_DEFAULTS.RATE_LIMIT_PER_TOKEN,
    ),
    rateLimitPerAddress: read(
      'RATE_LIMIT_PER_ADDRESS',
      intIn(0, 10_000_000),
      CONFIG_DEFAULTS.RATE_LIMIT_PER_ADDRESS,
    ),
    authFailuresPerAddress: read(
      'AUTH_FAILURES_PER_ADDRESS',
      intIn(0, 1_000_000),
      CONFIG_DEFAULTS.AUTH_FAILURES_PER_ADDRESS,
    ),
    httpMaxConnections: read(
      'HTTP_MAX_CONNECTIONS',
      intIn(16, 1_000_000),
      CONFIG_DEFAULTS.HTTP_MAX_CONNECTIONS,
    ),
    httpHeadersTimeoutMs: read(
      'HTTP_HEADERS_TIMEOUT_MS',
      intIn(500, 600_000),
      CONFIG_DEFAULTS.HTTP_HEADERS_TIMEOUT_MS,
    ),
    httpRequestTimeoutMs: read(
      'HTTP_REQUEST_TIMEOUT_MS',
      intIn(1000, 3_600_000),
      CONFIG_DEFAULTS.HTTP_REQUEST_TIMEOUT_MS,
    ),
    httpKeepAliveTimeoutMs: read(
      'HTTP_KEEP_ALIVE_TIMEOUT_MS',
      intIn(100, 3_600_000),
      CONFIG_DEFAULTS.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    ),
    httpConnectionTimeoutMs: read(
      'HTTP_CONNECTION_TIMEOUT_MS',
      intIn(61_000, 3_600_000),
      CONFIG_DEFAULTS.HTTP_CONNECTION_TIMEOUT_MS,
    ),
    bodyLimitBytes: read(
      'BODY_LIMIT_BYTES',
      intIn(1024, 1_073_741_824),
      CONFIG_DEFAULTS.BODY_LIMIT_BYTES,
    ),
    jsonMaxDepth: read('JSON_MAX_DEPTH', intIn(4, 10_000), CONFIG_DEFAULTS.JSON_MAX_DEPTH),
    jobsMaxActivePerCaller: read(
      'JOBS_MAX_ACTIVE_PER_CALLER',
      intIn(1, 1_000_000),
      CONFIG_DEFAULTS.JOBS_MAX_ACTIVE_PER_CALLER,
    ),
    corsOrigins: read('CORS_ORIGINS', parseOrigins, CONFIG_DEFAULTS.CORS_ORIGINS),
  };
  if (!problems.length && config.httpHeadersTimeoutMs > config.httpRequestTimeoutMs) {
    problems.push('HTTP_HEADERS_TIMEOUT_MS must not be above HTTP_REQUEST_TIMEOUT_MS');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** A value that fails validation; the message completes "<VARIABLE> …". */
class Invalid extends Error {}

function parsePort(raw: string): number {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (n >= 1 && n <= 65535) return n;
  throw new Invalid('must be an integer 1-65535');
}

function intIn(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    if (n >= min && n <= max) return n;
    throw new Invalid(`must be an integer ${min}-${max}`);
  };
}

function parseOrigins(raw: string): readonly string[] {
  const origins = raw
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of origins) {
    if (origin === '*') continue;
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new Invalid(
        'must be * or comma-separated origins, scheme://host[:port] without a path (e.g. https://ui.example)',
      );
    }
  }
  return Object.freeze(origins);
}

function parseHost(raw: string): string {
  if (/^[A-Za-z0-9.:[\]_-]+$/.test(raw)) return raw;
  throw new Invalid('must be a host name or IP address to bind (e.g. 127.0.0.1 or 0.0.0.0)');
}

function oneOf<T extends string>(values: readonly T[]): (raw: string) => T {
  return (raw) => {
    if ((values as readonly string[]).includes(raw)) return raw as T;
    throw new Invalid(`must be one of ${values.join('|')}`);
  };
}

function parseRedisUrl(raw: string): string {
  if (URL.canParse(raw) && ['redis:', 'rediss:'].includes(new URL(raw).protocol)) return raw;
  throw new Invalid('must be a redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)');
}

function parsePrefix(raw: string): string {
  // Keys are found again with SCAN MATCH <prefix>*, so no glob characters.
  if (/^[A-Za-z0-9:_.-]{1,64}$/.test(raw)) return raw;
  throw new Invalid('must be 1-64 characters from A-Z a-z 0-9 : _ . - (e.g. virtgate:)');
}

function parseLibvirtDefaultUri(raw: string): string {
  let transport: string;
  try {
    transport = parseLibvirtUri(raw).transport;
  } catch (err) {
    throw new Invalid(`must be a libvirt URI this gateway can use (${(err as Error).message})`);
  }
  if (transport === 'tls') {
    throw new Invalid(
      'uses the tls transport, not supported yet (use qemu+tcp:// or qemu:///system)',
    );
  }
  return raw;
}

/** Optional; its value is never echoed, not even when it is rejected. */
function readAdminToken(raw: string | undefined, problems: string[]): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/^[\x21-\x7e]{16,512}$/.test(raw)) return raw;
  problems.push(
    'VIRTGATE_ADMIN_TOKEN must be 16-512 printable ASCII characters without spaces (value not shown)',
  );
  return undefined;
}
