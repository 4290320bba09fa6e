import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute } from 'node:path';
import { CALLER_ROLES, type CallerRole } from './roles.js';
import { parseLibvirtUri, redactUri } from '#src/libvirt/index.js';
import { parseCidr } from '#src/net/cidr.js';

/**
 * The gateway's configuration: the only place that reads environment variables.
 * `loadConfig(process.env)` runs once at boot; everything else receives the
 * resulting frozen object (through Nest as APP_CONFIG).
 */

export const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

/** One `host:port` of REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/**
 * Where the gateway's Redis is (read below; src/redis/redis-connection.ts connects to it):
 * - `single`: one server at REDIS_URL (credentials, db and TLS in the URL);
 * - `sentinel`: the master Sentinel names REDIS_SENTINEL_NAME, found through
 *   REDIS_SENTINELS, followed across failovers;
 * - `cluster`: a Redis Cluster reached through any of REDIS_CLUSTER_NODES;
 *   every key of the gateway carries the prefix's hash tag, so all of them
 *   (BullMQ's included) are in one slot and multi-key scripts run.
 * Passwords are kept here for the connection only: `describeRedis` never shows them.
 */
export type RedisTopology =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNode[];
      readonly masterName: string;
      readonly username: string | null;
      readonly password: string | null;
      readonly sentinelPassword: string | null;
    }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly RedisNode[];
      readonly username: string | null;
      readonly password: string | null;
    };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  /** PORT: HTTP port of the api role. */
  readonly port: number;
  /** HOST: address the HTTP server binds (0.0.0.0 in a container). */
  readonly host: string;
  /** ROLE: api (HTTP only), worker (jobs only) or all (both, one process). */
  readonly role: Role;
  /** REDIS_URL: redis:// or rediss:// URL (the single-server topology's; unused with Sentinel or Cluster). */
  readonly redisUrl: string;
  /**
   * REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES
   * (with REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD): where Redis
   * is, and how every connection of the gateway reaches it (src/redis/redis-connection.ts).
   */
  readonly redisTopology: RedisTopology;
  /**
   * VIRTGATE_REDIS_PREFIX: prefix of every key the gateway writes. With a
   * Cluster it must hold a hash tag (`{virtgate}:`, the default there).
   */
  readonly redisPrefix: string;
  /**
   * REDIS_WAIT_REPLICAS: replicas that must have a job's acceptance, start and
   * end (Redis WAIT) before the gateway goes on, so a failover to a replica
   * loses no acknowledged job and runs none twice (0: do not wait).
   */
  readonly redisWaitReplicas: number;
  /** REDIS_WAIT_TIMEOUT_MS: how long one such WAIT may take. */
  readonly redisWaitTimeoutMs: number;
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
  /**
   * LIBVIRT_KEEPALIVE_INTERVAL_MS and LIBVIRT_KEEPALIVE_COUNT: every libvirt
   * connection pings a host that has sent nothing for the interval, and drops
   * it after `count` unanswered pings: a host that falls silent is found dead
   * within interval × (count + 1) (8 s by default), not after a call timeout,
   * and its host is then marked unreachable (requests answer 503 at once).
   */
  readonly libvirtKeepaliveIntervalMs: number;
  readonly libvirtKeepaliveCount: number;
  /** GRAPHQL_MAX_DEPTH: deepest field nesting a GraphQL operation may have (introspection aside). */
  readonly graphqlMaxDepth: number;
  /** GRAPHQL_MAX_COST: highest estimated cost of a GraphQL operation (fields × page sizes). */
  readonly graphqlMaxCost: number;
  /** GRAPHQL_MAX_ALIASES: most aliased fields in a GraphQL operation, fragments expanded. */
  readonly graphqlMaxAliases: number;
  /** GRAPHQL_MAX_DIRECTIVES: most directives in a GraphQL operation, fragments expanded. */
  readonly graphqlMaxDirectives: number;
  /** GRAPHQL_MAX_DOCUMENT_BYTES: largest GraphQL document (the query text, UTF-8), checked before parsing. */
  readonly graphqlMaxDocumentBytes: number;
  /** GRAPHQL_MAX_TOKENS: most lexical tokens in a GraphQL document, checked before parsing. */
  readonly graphqlMaxTokens: number;
  /** GRAPHQL_INTROSPECTION: true lets callers ask for `__schema`/`__type` (then counted in cost); false by default. */
  readonly graphqlIntrospection: boolean;
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
  /** JOB_PRUNE_INTERVAL_MS: how often finished jobs past their retention are looked for. */
  readonly jobPruneIntervalMs: number;
  /**
   * BLOCK_JOB_CONCURRENCY: block jobs one worker process follows at once. A
   * block job holds its place from start to end, `ready` included (a copy may
   * wait there for hours for its pivot): more wait queued beyond this.
   */
  readonly blockJobConcurrency: number;
  /**
   * BLOCK_JOB_ADOPT: reconciliation adopts the block jobs libvirt runs with no
   * live job of the gateway (started outside it, or their records lost). Off
   * only where several gateways share one libvirtd (each would adopt the
   * others' jobs): lost queue entries of its own jobs are still reconciled.
   */
  readonly blockJobAdopt: boolean;
  /**
   * AUDIT_RETENTION_DAYS: how long an audit entry is kept; older ones are
   * trimmed from the stream as new ones come, and never listed.
   */
  readonly auditRetentionDays: number;
  /**
   * AUDIT_DENIED_WINDOW_SECONDS: denied-authentication (401) entries are
   * written at most once per client address per this many seconds; the
   * others are counted into the next entry's `detail.folded`. 0: one entry each.
   */
  readonly auditDeniedWindowSeconds: number;
  /**
   * VIRTGATE_PATH_ROOTS: absolute directories (colon-separated) inside which
   * client paths are allowed besides the active storage pools the caller's
   * scope covers; pool definitions must lie inside them. Empty: none (only
   * pools, and no pool can be defined through the API).
   */
  readonly pathRoots: readonly string[];
  /**
   * HOST_CREDENTIAL_DIRS: absolute directories (colon-separated) from which a
   * host's certificates, keys and known_hosts may be read: files a
   * registration names, the URI's pkipath/keyfile/known_hosts, libvirt's
   * default places. Anything elsewhere is refused.
   */
  readonly hostCredentialDirs: readonly string[];
  /** VIRTGATE_MAX_MEMORY_MIB: largest memory of a domain defined from a spec. */
  readonly maxMemoryMiB: number;
  /** VIRTGATE_MAX_VCPUS: most vCPUs of a domain defined from a spec. */
  readonly maxVcpus: number;
  /** VIRTGATE_MAX_DISK_GIB: largest capacity of a new volume, in GiB. */
  readonly maxDiskGiB: number;
  /** VIRTGATE_MAX_DISKS: most disks of a domain defined from a spec. */
  readonly maxDisks: number;
  /**
   * DOCS_SESSION_TTL_SECONDS: how long a docs sign-in (the /docs session cookie
   * a person gets for an API token) lasts. Revoking the token ends it sooner.
   */
  readonly docsSessionTtlSeconds: number;
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
  /** EVENTS_RETENTION_MAX_EVENTS: most events the stream keeps; the oldest go as new ones come. */
  readonly eventsRetentionMaxEvents: number;
  /** EVENTS_RETENTION_HOURS: longest an event is kept; a cursor older than what is kept gets 410. */
  readonly eventsRetentionHours: number;
  /**
   * EVENTS_HEARTBEAT_SECONDS: an idle server-sent event stream gets a comment line this
   * often, and a GraphQL subscription socket a graphql-ws ping.
   */
  readonly eventsHeartbeatSeconds: number;
  /**
   * EVENTS_CLIENT_BUFFER_BYTES: what a server-sent event stream (or a GraphQL
   * subscription) may hold unsent for a slow client; beyond, the stream is cut (the
   * client resumes with Last-Event-ID, or `after`).
   */
  readonly eventsClientBufferBytes: number;
  /**
   * EVENTS_LEASE_MS: how long a worker's hold on a host's event registration
   * lasts unrenewed: another worker takes a host over within this of its owner dying.
   */
  readonly eventsLeaseMs: number;
  /** EVENTS_PROGRESS_INTERVAL_MS: least time between two job.progress events of one job. */
  readonly eventsProgressIntervalMs: number;
  /**
   * VIRTGATE_SECRETS_KEY: base64 of 32 random bytes, the AES-256-GCM key that
   * seals the secrets the gateway keeps (webhook signing secrets). Null: none
   * (creating a webhook is refused). A KeyObject: logging it shows no key material.
   */
  readonly secretsKey: KeyObject | null;
  /**
   * WEBHOOK_CALLBACK_SECRET: `whsec_` + base64 of 24-64 random bytes, the
   * Standard Webhooks secret that signs job callbacks (the HMAC key decoded
   * from it). Null: none (a job request with `callbackUrl` is refused).
   */
  readonly webhookCallbackKey: KeyObject | null;
  /**
   * WEBHOOK_RETRY_SCHEDULE: seconds to wait before each retry of a failed
   * delivery (comma-separated; fractions allowed), jittered; the spec's default
   * runs about 3 days.
   */
  readonly webhookRetrySchedule: readonly number[];
  /** WEBHOOK_TIMEOUT_MS: how long one delivery attempt may take, response included. */
  readonly webhookTimeoutMs: number;
  /** WEBHOOK_DISABLE_AFTER_FAILURES: consecutive failed deliveries (retries exhausted) that disable a webhook (0: never). */
  readonly webhookDisableAfterFailures: number;
  /** WEBHOOK_ROTATION_GRACE_SECONDS: how long after a rotation deliveries are signed with the old secret too. */
  readonly webhookRotationGraceSeconds: number;
  /** WEBHOOK_DELIVERY_LOG_SIZE: attempts the delivery log keeps per webhook (the oldest go). */
  readonly webhookDeliveryLogSize: number;
  /** WEBHOOK_CONCURRENCY: deliveries one worker process makes at once. */
  readonly webhookConcurrency: number;
  /** WEBHOOK_ALLOWED_CIDRS: ranges deliveries may reach even where denied by default (loopback, private…). */
  readonly webhookAllowedCidrs: readonly string[];
  /** WEBHOOK_DENIED_CIDRS: ranges deliveries may not reach, besides the defaults. */
  readonly webhookDeniedCidrs: readonly string[];
  /** JWT_*: the optional JWT bearer (null: off, only API tokens are accepted). */
  readonly jwt: JwtConfig | null;
}

/** The Standard Webhooks specification's example schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
export const STANDARD_WEBHOOKS_RETRY_SCHEDULE = '5,300,1800,7200,18000,36000,50400,72000,86400';

/** The signature algorithms a JWT may use: asymmetric only, never `none` or HS*. */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/**
 * The JWT bearer, for portals that already have an identity provider. On when
 * JWT_ISSUER, JWT_AUDIENCE and one key source (JWT_JWKS_URL or
 * JWT_PUBLIC_KEY_FILE) are set; any other JWT_* variable without them is an error.
 */
export interface JwtConfig {
  /** JWT_ISSUER: the `iss` every token must carry, compared exactly. */
  readonly issuer: string;
  /** JWT_AUDIENCE: a value the token's `aud` (a string or a list) must hold. */
  readonly audience: string;
  /** JWT_JWKS_URL: where the issuer publishes its keys (https; http only to a loopback address). */
  readonly jwksUrl: string | null;
  /** JWT_PUBLIC_KEY_FILE: a PEM public key (RSA ≥ 2048 bits, EC P-256 or Ed25519), instead of a JWKS. */
  readonly publicKeyFile: string | null;
  /** The key read from JWT_PUBLIC_KEY_FILE (a KeyObject: logging it shows no key material). */
  readonly publicKey: KeyObject | null;
  /** JWT_ALGORITHMS: the algorithms accepted, a subset of RS256, ES256, EdDSA. */
  readonly algorithms: readonly JwtAlgorithm[];
  /** JWT_ROLE_CLAIM: the claim (a string or a list of strings) mapped to the caller's role. */
  readonly roleClaim: string;
  /** JWT_ROLE_MAP: claim value → role (`value:role,…`); the highest role a token's values map to wins. */
  readonly roleMap: Readonly<Record<string, CallerRole>>;
  /** JWT_SCOPES_CLAIM: the claim holding the caller's host scopes; null: JWT callers are unscoped. */
  readonly scopesClaim: string | null;
  /** JWT_CLOCK_TOLERANCE_S: leeway on `exp`, `nbf` and `iat`, in seconds. */
  readonly clockToleranceS: number;
  /** JWT_JWKS_TIMEOUT_MS: deadline of one JWKS fetch, response body included. */
  readonly jwksTimeoutMs: number;
  /** JWT_JWKS_CACHE_S: how long a fetched JWKS is used before it is fetched again. */
  readonly jwksCacheS: number;
  /** JWT_JWKS_REFRESH_MIN_S: least time between two fetches caused by an unknown `kid`. */
  readonly jwksRefreshMinS: number;
}

export const CONFIG_DEFAULTS = {
  PORT: '8080',
  HOST: '127.0.0.1',
  ROLE: 'all',
  REDIS_URL: 'redis://127.0.0.1:6379',
  VIRTGATE_REDIS_PREFIX: 'virtgate:',
  /** The prefix with REDIS_CLUSTER_NODES: a hash tag puts every key in one slot. */
  VIRTGATE_REDIS_PREFIX_CLUSTER: '{virtgate}:',
  REDIS_WAIT_REPLICAS: '0',
  REDIS_WAIT_TIMEOUT_MS: '1000',
  LIBVIRT_DEFAULT_URI: 'qemu:///system',
  LOG_LEVEL: 'info',
  LIBVIRT_POOL_SIZE: '4',
  LIBVIRT_CONNECT_TIMEOUT_MS: '3000',
  LIBVIRT_CALL_TIMEOUT_MS: '30000',
  LIBVIRT_KEEPALIVE_INTERVAL_MS: '2000',
  LIBVIRT_KEEPALIVE_COUNT: '3',
  GRAPHQL_MAX_DEPTH: '12',
  GRAPHQL_MAX_COST: '250000',
  GRAPHQL_MAX_ALIASES: '100',
  GRAPHQL_MAX_DIRECTIVES: '50',
  GRAPHQL_MAX_DOCUMENT_BYTES: '32768',
  GRAPHQL_MAX_TOKENS: '2000',
  GRAPHQL_INTROSPECTION: 'false',
  JOB_LOCK_MS: '30000',
  JOB_RETENTION_HOURS: '168',
  JOB_PRUNE_INTERVAL_MS: '60000',
  BLOCK_JOB_CONCURRENCY: '64',
  BLOCK_JOB_ADOPT: 'true',
  AUDIT_RETENTION_DAYS: '90',
  AUDIT_DENIED_WINDOW_SECONDS: '10',
  JWT_ALGORITHMS: JWT_ALGORITHMS.join(','),
  JWT_ROLE_CLAIM: 'role',
  JWT_ROLE_MAP: CALLER_ROLES.map((role) => `${role}:${role}`).join(','),
  JWT_CLOCK_TOLERANCE_S: '30',
  JWT_JWKS_TIMEOUT_MS: '3000',
  JWT_JWKS_CACHE_S: '600',
  JWT_JWKS_REFRESH_MIN_S: '30',
  VIRTGATE_PATH_ROOTS: '',
  HOST_CREDENTIAL_DIRS: `/etc/pki:/etc/virtgate:${homedir()}/.pki:${homedir()}/.ssh`,
  VIRTGATE_MAX_MEMORY_MIB: '262144',
  VIRTGATE_MAX_VCPUS: '64',
  VIRTGATE_MAX_DISK_GIB: '4096',
  VIRTGATE_MAX_DISKS: '16',
  DOCS_SESSION_TTL_SECONDS: '28800',
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
  EVENTS_RETENTION_MAX_EVENTS: '1000000',
  EVENTS_RETENTION_HOURS: '72',
  EVENTS_HEARTBEAT_SECONDS: '15',
  EVENTS_CLIENT_BUFFER_BYTES: '1048576',
  EVENTS_LEASE_MS: '10000',
  EVENTS_PROGRESS_INTERVAL_MS: '1000',
  WEBHOOK_RETRY_SCHEDULE: STANDARD_WEBHOOKS_RETRY_SCHEDULE,
  WEBHOOK_TIMEOUT_MS: '15000',
  WEBHOOK_DISABLE_AFTER_FAILURES: '10',
  WEBHOOK_ROTATION_GRACE_SECONDS: '86400',
  WEBHOOK_DELIVERY_LOG_SIZE: '1000',
  WEBHOOK_CONCURRENCY: '32',
  WEBHOOK_ALLOWED_CIDRS: '',
  WEBHOOK_DENIED_CIDRS: '',
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

  const redisUrl = read('REDIS_URL', parseRedisUrl, CONFIG_DEFAULTS.REDIS_URL);
  const redisTopology = readRedisTopology(env, read, redisUrl, problems);
  const cluster = redisTopology.kind === 'cluster';
  const redisPrefix = read(
    'VIRTGATE_REDIS_PREFIX',
    parsePrefix,
    cluster ? CONFIG_DEFAULTS.VIRTGATE_REDIS_PREFIX_CLUSTER : CONFIG_DEFAULTS.VIRTGATE_REDIS_PREFIX,
  );
  if (cluster && redisPrefix !== undefined && !HASH_TAGGED.test(redisPrefix)) {
    problems.push(
      `VIRTGATE_REDIS_PREFIX must hold a hash tag ({...}) with REDIS_CLUSTER_NODES, so that every key of the gateway and of BullMQ is in one slot (their Lua scripts touch several keys), e.g. {virtgate}:, got ${JSON.stringify(redisPrefix)}`,
    );
  }
  const config: AppConfig = {
    port: read('PORT', parsePort, CONFIG_DEFAULTS.PORT),
    host: read('HOST', parseHost, CONFIG_DEFAULTS.HOST),
    role: read('ROLE', oneOf(ROLES), CONFIG_DEFAULTS.ROLE),
    redisUrl,
    redisTopology,
    redisPrefix,
    redisWaitReplicas: read(
      'REDIS_WAIT_REPLICAS',
      intIn(0, 16),
      CONFIG_DEFAULTS.REDIS_WAIT_REPLICAS,
    ),
    redisWaitTimeoutMs: read(
      'REDIS_WAIT_TIMEOUT_MS',
      intIn(10, 60_000),
      CONFIG_DEFAULTS.REDIS_WAIT_TIMEOUT_MS,
    ),
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
    libvirtKeepaliveIntervalMs: read(
      'LIBVIRT_KEEPALIVE_INTERVAL_MS',
      intIn(100, 60_000),
      CONFIG_DEFAULTS.LIBVIRT_KEEPALIVE_INTERVAL_MS,
    ),
    libvirtKeepaliveCount: read(
      'LIBVIRT_KEEPALIVE_COUNT',
      intIn(1, 20),
      CONFIG_DEFAULTS.LIBVIRT_KEEPALIVE_COUNT,
    ),
    graphqlMaxDepth: read('GRAPHQL_MAX_DEPTH', intIn(2, 100), CONFIG_DEFAULTS.GRAPHQL_MAX_DEPTH),
    graphqlMaxCost: read(
      'GRAPHQL_MAX_COST',
      intIn(10, 100_000_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_COST,
    ),
    graphqlMaxAliases: read(
      'GRAPHQL_MAX_ALIASES',
      intIn(0, 100_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_ALIASES,
    ),
    graphqlMaxDirectives: read(
      'GRAPHQL_MAX_DIRECTIVES',
      intIn(0, 100_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_DIRECTIVES,
    ),
    graphqlMaxDocumentBytes: read(
      'GRAPHQL_MAX_DOCUMENT_BYTES',
      intIn(1024, 10_000_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_DOCUMENT_BYTES,
    ),
    graphqlMaxTokens: read(
      'GRAPHQL_MAX_TOKENS',
      intIn(100, 1_000_000),
      CONFIG_DEFAULTS.GRAPHQL_MAX_TOKENS,
    ),
    graphqlIntrospection: read(
      'GRAPHQL_INTROSPECTION',
      parseBoolean,
      CONFIG_DEFAULTS.GRAPHQL_INTROSPECTION,
    ),
    jobLockMs: read('JOB_LOCK_MS', intIn(500, 600_000), CONFIG_DEFAULTS.JOB_LOCK_MS),
    jobRetentionHours: read(
      'JOB_RETENTION_HOURS',
      intIn(1, 87_600),
      CONFIG_DEFAULTS.JOB_RETENTION_HOURS,
    ),
    jobPruneIntervalMs: read(
      'JOB_PRUNE_INTERVAL_MS',
      intIn(100, 86_400_000),
      CONFIG_DEFAULTS.JOB_PRUNE_INTERVAL_MS,
    ),
    blockJobConcurrency: read(
      'BLOCK_JOB_CONCURRENCY',
      intIn(1, 1000),
      CONFIG_DEFAULTS.BLOCK_JOB_CONCURRENCY,
    ),
    blockJobAdopt: read('BLOCK_JOB_ADOPT', parseBoolean, CONFIG_DEFAULTS.BLOCK_JOB_ADOPT),
    auditRetentionDays: read(
      'AUDIT_RETENTION_DAYS',
      intIn(1, 36_500),
      CONFIG_DEFAULTS.AUDIT_RETENTION_DAYS,
    ),
    auditDeniedWindowSeconds: read(
      'AUDIT_DENIED_WINDOW_SECONDS',
      intIn(0, 3600),
      CONFIG_DEFAULTS.AUDIT_DENIED_WINDOW_SECONDS,
    ),
    jwt: readJwt(env, read, problems),
    pathRoots: read('VIRTGATE_PATH_ROOTS', parsePathRoots, CONFIG_DEFAULTS.VIRTGATE_PATH_ROOTS),
    hostCredentialDirs: read(
      'HOST_CREDENTIAL_DIRS',
      parsePathRoots,
      CONFIG_DEFAULTS.HOST_CREDENTIAL_DIRS,
    ),
    maxMemoryMiB: read(
      'VIRTGATE_MAX_MEMORY_MIB',
      intIn(16, 16 * 1024 * 1024),
      CONFIG_DEFAULTS.VIRTGATE_MAX_MEMORY_MIB,
    ),
    maxVcpus: read('VIRTGATE_MAX_VCPUS', intIn(1, 1024), CONFIG_DEFAULTS.VIRTGATE_MAX_VCPUS),
    maxDiskGiB: read(
      'VIRTGATE_MAX_DISK_GIB',
      intIn(1, 1024 * 1024),
      CONFIG_DEFAULTS.VIRTGATE_MAX_DISK_GIB,
    ),
    maxDisks: read('VIRTGATE_MAX_DISKS', intIn(1, 32), CONFIG_DEFAULTS.VIRTGATE_MAX_DISKS),
    docsSessionTtlSeconds: read(
      'DOCS_SESSION_TTL_SECONDS',
      intIn(60, 604_800),
      CONFIG_DEFAULTS.DOCS_SESSION_TTL_SECONDS,
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
    eventsRetentionMaxEvents: read(
      'EVENTS_RETENTION_MAX_EVENTS',
      intIn(1, 100_000_000),
      CONFIG_DEFAULTS.EVENTS_RETENTION_MAX_EVENTS,
    ),
    eventsRetentionHours: read(
      'EVENTS_RETENTION_HOURS',
      intIn(1, 87_600),
      CONFIG_DEFAULTS.EVENTS_RETENTION_HOURS,
    ),
    eventsHeartbeatSeconds: read(
      'EVENTS_HEARTBEAT_SECONDS',
      intIn(1, 3600),
      CONFIG_DEFAULTS.EVENTS_HEARTBEAT_SECONDS,
    ),
    eventsClientBufferBytes: read(
      'EVENTS_CLIENT_BUFFER_BYTES',
      intIn(4096, 1_073_741_824),
      CONFIG_DEFAULTS.EVENTS_CLIENT_BUFFER_BYTES,
    ),
    eventsLeaseMs: read('EVENTS_LEASE_MS', intIn(1000, 600_000), CONFIG_DEFAULTS.EVENTS_LEASE_MS),
    eventsProgressIntervalMs: read(
      'EVENTS_PROGRESS_INTERVAL_MS',
      intIn(0, 3_600_000),
      CONFIG_DEFAULTS.EVENTS_PROGRESS_INTERVAL_MS,
    ),
    secretsKey: readSecretsKey(env.VIRTGATE_SECRETS_KEY, problems),
    webhookCallbackKey: readWebhookSecret(
      'WEBHOOK_CALLBACK_SECRET',
      env.WEBHOOK_CALLBACK_SECRET,
      problems,
    ),
    webhookRetrySchedule: read(
      'WEBHOOK_RETRY_SCHEDULE',
      parseSchedule,
      CONFIG_DEFAULTS.WEBHOOK_RETRY_SCHEDULE,
    ),
    webhookTimeoutMs: read(
      'WEBHOOK_TIMEOUT_MS',
      intIn(100, 120_000),
      CONFIG_DEFAULTS.WEBHOOK_TIMEOUT_MS,
    ),
    webhookDisableAfterFailures: read(
      'WEBHOOK_DISABLE_AFTER_FAILURES',
      intIn(0, 1_000_000),
      CONFIG_DEFAULTS.WEBHOOK_DISABLE_AFTER_FAILURES,
    ),
    webhookRotationGraceSeconds: read(
      'WEBHOOK_ROTATION_GRACE_SECONDS',
      intIn(0, 30 * 86_400),
      CONFIG_DEFAULTS.WEBHOOK_ROTATION_GRACE_SECONDS,
    ),
    webhookDeliveryLogSize: read(
      'WEBHOOK_DELIVERY_LOG_SIZE',
      intIn(10, 1_000_000),
      CONFIG_DEFAULTS.WEBHOOK_DELIVERY_LOG_SIZE,
    ),
    webhookConcurrency: read(
      'WEBHOOK_CONCURRENCY',
      intIn(1, 1000),
      CONFIG_DEFAULTS.WEBHOOK_CONCURRENCY,
    ),
    webhookAllowedCidrs: read(
      'WEBHOOK_ALLOWED_CIDRS',
      parseCidrList,
      CONFIG_DEFAULTS.WEBHOOK_ALLOWED_CIDRS,
    ),
    webhookDeniedCidrs: read(
      'WEBHOOK_DENIED_CIDRS',
      parseCidrList,
      CONFIG_DEFAULTS.WEBHOOK_DENIED_CIDRS,
    ),
  };
  if (cluster && config.redisWaitReplicas > 0) {
    problems.push(
      'REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES (WAIT must go to the master of the slot written): leave it 0',
    );
  }
  if (config.jwt && config.adminToken !== undefined && looksLikeJwt(config.adminToken)) {
    problems.push(
      'VIRTGATE_ADMIN_TOKEN looks like a JWT (three base64url parts), which JWT_ISSUER makes the gateway verify as one: choose another (value not shown)',
    );
  }
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

function parseBoolean(raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Invalid('must be true or false');
}

function parsePathRoots(raw: string): readonly string[] {
  if (raw === '') return Object.freeze([]);
  const roots = raw.split(':').map((r) => (r.length > 1 ? r.replace(/\/+$/, '') : r));
  for (const r of roots) {
    if (!r.startsWith('/') || r.split('/').includes('..') || /[\0\n]/.test(r)) {
      throw new Invalid(
        'must be absolute directories without ".." segments, separated by ":" (e.g. /srv/vm:/var/lib/virtgate)',
      );
    }
  }
  return Object.freeze(roots);
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

/** A prefix whose one pair of braces is a non-empty hash tag: Redis Cluster hashes only what is inside. */
const HASH_TAGGED = /^[^{}]*\{[^{}]+\}[^{}]*$/;

function parsePrefix(raw: string): string {
  // Keys are found again with SCAN MATCH <prefix>*, so no glob characters; braces
  // only as one hash tag, else a key's slot would depend on what follows the prefix.
  if (/^[A-Za-z0-9:_.{}-]{1,64}$/.test(raw) && (!/[{}]/.test(raw) || HASH_TAGGED.test(raw))) {
    return raw;
  }
  throw new Invalid(
    'must be 1-64 characters from A-Z a-z 0-9 : _ . - and at most one hash tag {...} (e.g. virtgate: or {virtgate}:)',
  );
}

/**
 * The Redis topology: Sentinel when REDIS_SENTINELS is set, Cluster when
 * REDIS_CLUSTER_NODES is, else the single server of REDIS_URL. Two of them
 * at once is an error (which one was meant?). Passwords are never echoed.
 */
function readRedisTopology(env: Env, read: Read, url: string, problems: string[]): RedisTopology {
  const given = (name: string): boolean => env[name] !== undefined && env[name] !== '';
  const secret = (name: string): string | null => {
    if (!given(name)) return null;
    if (/^[\x21-\x7e]{1,512}$/.test(env[name]!)) return env[name]!;
    problems.push(
      `${name} must be 1-512 printable ASCII characters without spaces (value not shown)`,
    );
    return null;
  };
  const chosen = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].filter(given);
  if (chosen.length > 1) {
    problems.push(
      `${chosen.join(' and ')} are both set: set REDIS_URL for one server, REDIS_SENTINELS (with REDIS_SENTINEL_NAME) for Sentinel, or REDIS_CLUSTER_NODES for a Cluster`,
    );
  }
  const auth = {
    username: given('REDIS_USERNAME') ? read('REDIS_USERNAME', parseRedisUsername, '') : null,
    password: secret('REDIS_PASSWORD'),
  };
  if (given('REDIS_SENTINELS')) {
    if (!given('REDIS_SENTINEL_NAME')) {
      problems.push(
        'REDIS_SENTINELS is set, but not REDIS_SENTINEL_NAME (the master group name Sentinel monitors, e.g. mymaster)',
      );
    }
    return Object.freeze({
      kind: 'sentinel',
      sentinels: read('REDIS_SENTINELS', parseRedisNodes, ''),
      masterName: given('REDIS_SENTINEL_NAME')
        ? read('REDIS_SENTINEL_NAME', parseSentinelName, '')
        : '',
      ...auth,
      sentinelPassword: secret('REDIS_SENTINEL_PASSWORD'),
    });
  }
  for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD']) {
    if (given(name)) problems.push(`${name} is set, but not REDIS_SENTINELS`);
  }
  if (given('REDIS_CLUSTER_NODES')) {
    return Object.freeze({
      kind: 'cluster',
      nodes: read('REDIS_CLUSTER_NODES', parseRedisNodes, ''),
      ...auth,
    });
  }
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD']) {
    if (given(name)) {
      problems.push(
        `${name} is set without REDIS_SENTINELS or REDIS_CLUSTER_NODES: for one server, put the credentials in REDIS_URL (redis://user:password@host:port)`,
      );
    }
  }
  return Object.freeze({ kind: 'single', url });
}

/** `host:port,host:port`: at least one, each a host name or IPv4/[IPv6] address and a port. */
function parseRedisNodes(raw: string): readonly RedisNode[] {
  const nodes = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .map((n) => {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(n);
      const port = m ? Number(m[2]) : NaN;
      if (!m || !(port >= 1 && port <= 65535)) {
        throw new Invalid(
          'must be comma-separated host:port pairs (e.g. 10.0.0.1:26379,10.0.0.2:26379)',
        );
      }
      return Object.freeze({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    });
  if (nodes.length === 0) throw new Invalid('must name at least one host:port');
  return Object.freeze(nodes);
}

function parseSentinelName(raw: string): string {
  if (/^[A-Za-z0-9._-]{1,128}$/.test(raw)) return raw;
  throw new Invalid('must be 1-128 characters from A-Z a-z 0-9 . _ - (e.g. mymaster)');
}

function parseRedisUsername(raw: string): string {
  if (/^[\x21-\x7e]{1,128}$/.test(raw)) return raw;
  throw new Invalid('must be 1-128 printable ASCII characters without spaces');
}

function parseLibvirtDefaultUri(raw: string): string {
  try {
    parseLibvirtUri(raw);
  } catch (err) {
    throw new Invalid(`must be a libvirt URI this gateway can use (${(err as Error).message})`);
  }
  return raw;
}

/**
 * A value that is a variable reference nobody expanded: `${NAME}`, `${NAME:-default}` or
 * `$NAME` as written in a compose file or an env file, which some compose implementations pass
 * on literally (podman-compose 1.0.3 gives the container `${VIRTGATE_ADMIN_TOKEN:-}`).
 */
const UNEXPANDED_REFERENCE = /\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*$/;

/** Optional; its value is never echoed, not even when it is rejected. */
function readAdminToken(raw: string | undefined, problems: string[]): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (UNEXPANDED_REFERENCE.test(raw)) {
    // Printable and long enough, so it would pass as a token that anyone reading the compose
    // file could guess.
    problems.push(
      'VIRTGATE_ADMIN_TOKEN holds an unexpanded variable reference (${…} or $NAME): whatever started the gateway (a compose file, an env file, a unit) passed it on literally instead of substituting it; set the variable to the token, or leave it empty to have one generated (value not shown)',
    );
    return undefined;
  }
  if (/^[\x21-\x7e]{16,512}$/.test(raw)) return raw;
  problems.push(
    'VIRTGATE_ADMIN_TOKEN must be 16-512 printable ASCII characters without spaces (value not shown)',
  );
  return undefined;
}

/** VIRTGATE_SECRETS_KEY: base64 of exactly 32 bytes; its value is never echoed. */
function readSecretsKey(raw: string | undefined, problems: string[]): KeyObject | null {
  if (raw === undefined || raw === '') return null;
  const bytes = /^[A-Za-z0-9+/]{43}=$/.test(raw) ? Buffer.from(raw, 'base64') : null;
  if (bytes?.length === 32) return createSecretKey(bytes);
  problems.push(
    'VIRTGATE_SECRETS_KEY must be the base64 of 32 random bytes, e.g. from `openssl rand -base64 32` (value not shown)',
  );
  return null;
}

/**
 * A Standard Webhooks secret (`whsec_` + base64 of 24-64 bytes), as the HMAC
 * key it stands for; its value is never echoed.
 */
function readWebhookSecret(
  name: string,
  raw: string | undefined,
  problems: string[],
): KeyObject | null {
  if (raw === undefined || raw === '') return null;
  const body = raw.startsWith('whsec_') ? raw.slice('whsec_'.length) : null;
  const bytes =
    body !== null && /^[A-Za-z0-9+/]+={0,2}$/.test(body) && body.length % 4 === 0
      ? Buffer.from(body, 'base64')
      : null;
  if (bytes && bytes.length >= 24 && bytes.length <= 64) return createSecretKey(bytes);
  problems.push(
    `${name} must be whsec_ followed by the base64 of 24-64 random bytes, e.g. whsec_$(openssl rand -base64 32) (value not shown)`,
  );
  return null;
}

/** Seconds before each retry: 1-30 comma-separated numbers, each at most 7 days (fractions to the ms). */
function parseSchedule(raw: string): readonly number[] {
  const parts = raw.split(',').map((p) => p.trim());
  const seconds = parts.map((p) => (/^\d{1,6}(\.\d{1,3})?$/.test(p) ? Number(p) : NaN));
  if (parts.length <= 30 && seconds.every((n) => n >= 0 && n <= 7 * 86_400)) {
    return Object.freeze(seconds);
  }
  throw new Invalid(
    'must be 1-30 comma-separated delays in seconds (each 0-604800, e.g. 5,300,1800)',
  );
}

/** Comma-separated CIDR ranges (`10.0.0.0/8, fd00::/8`; an address alone is a range of one). */
function parseCidrList(raw: string): readonly string[] {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const ranges = entries.map((e) => parseCidr(e));
  if (ranges.every((r) => r !== null) && entries.length <= 1000) {
    return Object.freeze(ranges.map((r) => r.text));
  }
  throw new Invalid('must be comma-separated CIDR ranges (e.g. 127.0.0.0/8,::1/128)');
}

/** Whether a bearer value has a JWT's shape (three base64url parts, the last maybe empty). */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value);
}

/** Every JWT_* variable the gateway reads. */
const JWT_VARIABLES = [
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'JWT_JWKS_URL',
  'JWT_PUBLIC_KEY_FILE',
  'JWT_ALGORITHMS',
  'JWT_ROLE_CLAIM',
  'JWT_ROLE_MAP',
  'JWT_SCOPES_CLAIM',
  'JWT_CLOCK_TOLERANCE_S',
  'JWT_JWKS_TIMEOUT_MS',
  'JWT_JWKS_CACHE_S',
  'JWT_JWKS_REFRESH_MIN_S',
];

type Read = <T>(name: string, parse: (raw: string) => T, fallback: string) => T;

/** The JWT variables: all or nothing, each problem naming its variable. */
function readJwt(env: Env, read: Read, problems: string[]): JwtConfig | null {
  const given = (name: string): boolean => env[name] !== undefined && env[name] !== '';
  // Only our names: another program's JWT_SECRET in the same environment is not a half-set JWT bearer.
  const set = JWT_VARIABLES.filter(given);
  if (set.length === 0) return null;
  const missing = ['JWT_ISSUER', 'JWT_AUDIENCE'].filter((name) => !given(name));
  const sources = ['JWT_JWKS_URL', 'JWT_PUBLIC_KEY_FILE'].filter(given);
  if (sources.length === 0) missing.push('JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE');
  if (missing.length > 0) {
    problems.push(`${set.join(', ')} set, but the JWT bearer also needs ${missing.join(', ')}`);
    return null;
  }
  if (sources.length > 1) {
    problems.push('JWT_JWKS_URL and JWT_PUBLIC_KEY_FILE are both set: choose one key source');
    return null;
  }
  const algorithms = read('JWT_ALGORITHMS', parseJwtAlgorithms, CONFIG_DEFAULTS.JWT_ALGORITHMS);
  const keyFile = given('JWT_PUBLIC_KEY_FILE') ? env.JWT_PUBLIC_KEY_FILE! : null;
  const publicKey = keyFile === null ? null : read('JWT_PUBLIC_KEY_FILE', parsePublicKeyFile, '');
  if (publicKey && algorithms) {
    const alg = jwtAlgorithmOf(publicKey);
    if (alg === null || !algorithms.includes(alg)) {
      problems.push(
        `JWT_PUBLIC_KEY_FILE holds a key for ${alg ?? 'no accepted algorithm'}, which JWT_ALGORITHMS (${algorithms.join(',')}) does not accept`,
      );
    }
  }
  return Object.freeze({
    issuer: read('JWT_ISSUER', parseClaimValue, ''),
    audience: read('JWT_AUDIENCE', parseClaimValue, ''),
    jwksUrl: given('JWT_JWKS_URL') ? read('JWT_JWKS_URL', parseJwksUrl, '') : null,
    publicKeyFile: keyFile,
    publicKey: publicKey ?? null,
    algorithms,
    roleClaim: read('JWT_ROLE_CLAIM', parseClaimName, CONFIG_DEFAULTS.JWT_ROLE_CLAIM),
    roleMap: read('JWT_ROLE_MAP', parseRoleMap, CONFIG_DEFAULTS.JWT_ROLE_MAP),
    scopesClaim: given('JWT_SCOPES_CLAIM') ? read('JWT_SCOPES_CLAIM', parseClaimName, '') : null,
    clockToleranceS: read(
      'JWT_CLOCK_TOLERANCE_S',
      intIn(0, 300),
      CONFIG_DEFAULTS.JWT_CLOCK_TOLERANCE_S,
    ),
    jwksTimeoutMs: read(
      'JWT_JWKS_TIMEOUT_MS',
      intIn(100, 30_000),
      CONFIG_DEFAULTS.JWT_JWKS_TIMEOUT_MS,
    ),
    jwksCacheS: read('JWT_JWKS_CACHE_S', intIn(10, 86_400), CONFIG_DEFAULTS.JWT_JWKS_CACHE_S),
    jwksRefreshMinS: read(
      'JWT_JWKS_REFRESH_MIN_S',
      intIn(0, 3600),
      CONFIG_DEFAULTS.JWT_JWKS_REFRESH_MIN_S,
    ),
  });
}

function parseJwtAlgorithms(raw: string): readonly JwtAlgorithm[] {
  const names = raw.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(JWT_ALGORITHMS as readonly string[]).includes(name));
  if (unknown.length === 0 && names.length > 0)
    return Object.freeze([...new Set(names)]) as readonly JwtAlgorithm[];
  throw new Invalid(`must be a comma-separated subset of ${JWT_ALGORITHMS.join(',')}`);
}

/** An issuer or audience: printable, no spaces. */
function parseClaimValue(raw: string): string {
  if (/^[\x21-\x7e]{1,512}$/.test(raw)) return raw;
  throw new Invalid('must be 1-512 printable characters without spaces');
}

/** A claim name; a dotted path (`realm_access.roles`) reaches into nested objects. */
function parseClaimName(raw: string): string {
  if (/^[\x21-\x7e]{1,256}$/.test(raw)) return raw;
  throw new Invalid('must be a claim name (1-256 printable characters without spaces)');
}

function parseJwksUrl(raw: string): string {
  const url = URL.canParse(raw) ? new URL(raw) : null;
  if (url?.protocol === 'https:' && url.username === '' && url.password === '') return raw;
  if (url?.protocol === 'http:' && url.username === '' && isLoopbackHost(url.hostname)) return raw;
  throw new Invalid(
    'must be an https:// URL without credentials (http:// only to a loopback address)',
  );
}

function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/** `value:role,…`; values are matched exactly, roles are viewer, operator or admin. */
function parseRoleMap(raw: string): Readonly<Record<string, CallerRole>> {
  const map: Record<string, CallerRole> = {};
  for (const entry of raw.split(',')) {
    const at = entry.lastIndexOf(':');
    const value = entry.slice(0, at).trim();
    const role = entry.slice(at + 1).trim();
    if (at <= 0 || value === '' || !(CALLER_ROLES as readonly string[]).includes(role)) {
      throw new Invalid(
        `must be value:role pairs separated by commas, role one of ${CALLER_ROLES.join('|')}`,
      );
    }
    Object.defineProperty(map, value, { value: role, enumerable: true });
  }
  return Object.freeze(map);
}

/** The PEM public key in the file; its content is never echoed. */
function parsePublicKeyFile(raw: string): KeyObject {
  if (!isAbsolute(raw)) throw new Invalid('must be an absolute path');
  let pem: string;
  try {
    pem = readFileSync(raw, 'utf8');
  } catch (err) {
    throw new Invalid(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Invalid('must hold a PEM public key (content not shown)');
  }
  if (jwtAlgorithmOf(key) === null) {
    throw new Invalid('must hold an RSA key of 2048 bits or more, an EC P-256 or an Ed25519 key');
  }
  return key;
}

/**
 * The one algorithm a public key may verify: RS256 for RSA of 2048 bits or
 * more, ES256 for EC P-256, EdDSA for Ed25519; null for any other key.
 * Binding the algorithm to the key is what refuses key confusion.
 */
export function jwtAlgorithmOf(key: KeyObject): JwtAlgorithm | null {
  if (key.type !== 'public') return null;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (details.modulusLength ?? 0) >= 2048 ? 'RS256' : null;
    case 'ec':
      return details.namedCurve === 'prime256v1' ? 'ES256' : null;
    case 'ed25519':
      return 'EdDSA';
    default:
      return null;
  }
}
