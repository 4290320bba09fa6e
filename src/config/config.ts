import { parseLibvirtUri, redactUri } from '#src/libvirt/index.js';

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
   * DOCS_SESSION_TTL_SECONDS: how long a docs sign-in (the /docs session cookie
   * a person gets for an API token) lasts. Revoking the token ends it sooner.
   */
  readonly docsSessionTtlSeconds: number;
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
  DOCS_SESSION_TTL_SECONDS: '28800',
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
      // A rejected URI may hold a password: never echoed.
      problems.push(`${name} ${err.message}, got ${JSON.stringify(redactUri(raw))}`);
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
    docsSessionTtlSeconds: read(
      'DOCS_SESSION_TTL_SECONDS',
      intIn(60, 604_800),
      CONFIG_DEFAULTS.DOCS_SESSION_TTL_SECONDS,
    ),
  };
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
