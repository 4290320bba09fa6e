import { homedir } from 'node:os';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSecretKey, randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, type Env } from '#src/config/config.js';

/** The problems loadConfig reports for `env`. */
function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    assert.deepEqual(loadConfig({}), {
      port: 8080,
      host: '127.0.0.1',
      role: 'all',
      redisUrl: 'redis://127.0.0.1:6379',
      redisTopology: { kind: 'single', url: 'redis://127.0.0.1:6379' },
      redisPrefix: 'virtgate:',
      redisWaitReplicas: 0,
      redisWaitTimeoutMs: 1000,
      libvirtDefaultUri: 'qemu:///system',
      adminToken: undefined,
      logLevel: 'info',
      libvirtPoolSize: 4,
      libvirtConnectTimeoutMs: 3000,
      libvirtCallTimeoutMs: 30000,
      libvirtKeepaliveIntervalMs: 2000,
      libvirtKeepaliveCount: 3,
      graphqlMaxDepth: 12,
      graphqlMaxCost: 250000,
      graphqlMaxAliases: 100,
      graphqlMaxDirectives: 50,
      graphqlMaxDocumentBytes: 32768,
      graphqlMaxTokens: 2000,
      graphqlIntrospection: false,
      jobLockMs: 30000,
      jobRetentionHours: 168,
      jobPruneIntervalMs: 60_000,
      blockJobConcurrency: 64,
      blockJobAdopt: true,
      auditRetentionDays: 90,
      auditDeniedWindowSeconds: 10,
      jwt: null,
      pathRoots: [],
      hostCredentialDirs: ['/etc/pki', '/etc/virtgate', `${homedir()}/.pki`, `${homedir()}/.ssh`],
      maxMemoryMiB: 262144,
      maxVcpus: 64,
      maxDiskGiB: 4096,
      maxDisks: 16,
      docsSessionTtlSeconds: 28800,
      rateLimitWindowMs: 60000,
      rateLimitPerToken: 6000,
      rateLimitPerAddress: 12000,
      authFailuresPerAddress: 30,
      httpMaxConnections: 10000,
      httpHeadersTimeoutMs: 10000,
      httpRequestTimeoutMs: 60000,
      httpKeepAliveTimeoutMs: 72000,
      httpConnectionTimeoutMs: 120000,
      bodyLimitBytes: 2097152,
      jsonMaxDepth: 64,
      jobsMaxActivePerCaller: 100,
      corsOrigins: [],
      eventsRetentionMaxEvents: 1000000,
      eventsRetentionHours: 72,
      eventsHeartbeatSeconds: 15,
      eventsClientBufferBytes: 1048576,
      eventsLeaseMs: 10000,
      eventsProgressIntervalMs: 1000,
      secretsKey: null,
      webhookCallbackKey: null,
      webhookRetrySchedule: [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
      webhookTimeoutMs: 15000,
      webhookDisableAfterFailures: 10,
      webhookRotationGraceSeconds: 86400,
      webhookDeliveryLogSize: 1000,
      webhookConcurrency: 32,
      webhookAllowedCidrs: [],
      webhookDeniedCidrs: [],
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      ROLE: 'worker',
      REDIS_URL: 'rediss://user:pw@redis.example:6380/2',
      VIRTGATE_REDIS_PREFIX: 'vg-test:',
      REDIS_WAIT_REPLICAS: '2',
      REDIS_WAIT_TIMEOUT_MS: '500',
      LIBVIRT_DEFAULT_URI: 'qemu+tcp://10.0.0.5/system',
      VIRTGATE_ADMIN_TOKEN: 'a-long-enough-admin-token',
      LOG_LEVEL: 'debug',
      LIBVIRT_POOL_SIZE: '2',
      LIBVIRT_CONNECT_TIMEOUT_MS: '500',
      LIBVIRT_CALL_TIMEOUT_MS: '9000',
      LIBVIRT_KEEPALIVE_INTERVAL_MS: '500',
      LIBVIRT_KEEPALIVE_COUNT: '2',
      GRAPHQL_MAX_DEPTH: '8',
      GRAPHQL_MAX_COST: '5000',
      GRAPHQL_MAX_ALIASES: '10',
      GRAPHQL_MAX_DIRECTIVES: '5',
      GRAPHQL_MAX_DOCUMENT_BYTES: '4096',
      GRAPHQL_MAX_TOKENS: '500',
      GRAPHQL_INTROSPECTION: 'true',
      JOB_LOCK_MS: '2000',
      JOB_RETENTION_HOURS: '24',
      JOB_PRUNE_INTERVAL_MS: '250',
      BLOCK_JOB_CONCURRENCY: '8',
      BLOCK_JOB_ADOPT: 'false',
      AUDIT_RETENTION_DAYS: '30',
      AUDIT_DENIED_WINDOW_SECONDS: '0',
      VIRTGATE_PATH_ROOTS: '/srv/vm:/var/lib/virtgate/',
      HOST_CREDENTIAL_DIRS: '/etc/virtgate/pki:/srv/keys/',
      VIRTGATE_MAX_MEMORY_MIB: '4096',
      VIRTGATE_MAX_VCPUS: '8',
      VIRTGATE_MAX_DISK_GIB: '100',
      VIRTGATE_MAX_DISKS: '4',
      DOCS_SESSION_TTL_SECONDS: '600',
      RATE_LIMIT_WINDOW_MS: '1000',
      RATE_LIMIT_PER_TOKEN: '10',
      RATE_LIMIT_PER_ADDRESS: '0',
      AUTH_FAILURES_PER_ADDRESS: '3',
      HTTP_MAX_CONNECTIONS: '500',
      HTTP_HEADERS_TIMEOUT_MS: '2000',
      HTTP_REQUEST_TIMEOUT_MS: '5000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
      HTTP_CONNECTION_TIMEOUT_MS: '90000',
      BODY_LIMIT_BYTES: '4096',
      JSON_MAX_DEPTH: '8',
      JOBS_MAX_ACTIVE_PER_CALLER: '2',
      CORS_ORIGINS: 'https://ui.example, http://127.0.0.1:3000',
      EVENTS_RETENTION_MAX_EVENTS: '5000',
      EVENTS_RETENTION_HOURS: '2',
      EVENTS_HEARTBEAT_SECONDS: '5',
      EVENTS_CLIENT_BUFFER_BYTES: '65536',
      EVENTS_LEASE_MS: '3000',
      EVENTS_PROGRESS_INTERVAL_MS: '0',
      WEBHOOK_RETRY_SCHEDULE: '1, 2.5,60',
      WEBHOOK_TIMEOUT_MS: '3000',
      WEBHOOK_DISABLE_AFTER_FAILURES: '0',
      WEBHOOK_ROTATION_GRACE_SECONDS: '600',
      WEBHOOK_DELIVERY_LOG_SIZE: '50',
      WEBHOOK_CONCURRENCY: '4',
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8, ::1',
      WEBHOOK_DENIED_CIDRS: '203.0.113.0/24',
    });
    assert.deepEqual(config, {
      port: 9000,
      host: '0.0.0.0',
      role: 'worker',
      redisUrl: 'rediss://user:pw@redis.example:6380/2',
      redisTopology: { kind: 'single', url: 'rediss://user:pw@redis.example:6380/2' },
      redisPrefix: 'vg-test:',
      redisWaitReplicas: 2,
      redisWaitTimeoutMs: 500,
      libvirtDefaultUri: 'qemu+tcp://10.0.0.5/system',
      adminToken: 'a-long-enough-admin-token',
      logLevel: 'debug',
      libvirtPoolSize: 2,
      libvirtConnectTimeoutMs: 500,
      libvirtCallTimeoutMs: 9000,
      libvirtKeepaliveIntervalMs: 500,
      libvirtKeepaliveCount: 2,
      graphqlMaxDepth: 8,
      graphqlMaxCost: 5000,
      graphqlMaxAliases: 10,
      graphqlMaxDirectives: 5,
      graphqlMaxDocumentBytes: 4096,
      graphqlMaxTokens: 500,
      graphqlIntrospection: true,
      jobLockMs: 2000,
      jobRetentionHours: 24,
      jobPruneIntervalMs: 250,
      blockJobConcurrency: 8,
      blockJobAdopt: false,
      auditRetentionDays: 30,
      auditDeniedWindowSeconds: 0,
      jwt: null,
      pathRoots: ['/srv/vm', '/var/lib/virtgate'],
      hostCredentialDirs: ['/etc/virtgate/pki', '/srv/keys'],
      maxMemoryMiB: 4096,
      maxVcpus: 8,
      maxDiskGiB: 100,
      maxDisks: 4,
      docsSessionTtlSeconds: 600,
      rateLimitWindowMs: 1000,
      rateLimitPerToken: 10,
      rateLimitPerAddress: 0,
      authFailuresPerAddress: 3,
      httpMaxConnections: 500,
      httpHeadersTimeoutMs: 2000,
      httpRequestTimeoutMs: 5000,
      httpKeepAliveTimeoutMs: 1000,
      httpConnectionTimeoutMs: 90000,
      bodyLimitBytes: 4096,
      jsonMaxDepth: 8,
      jobsMaxActivePerCaller: 2,
      corsOrigins: ['https://ui.example', 'http://127.0.0.1:3000'],
      eventsRetentionMaxEvents: 5000,
      eventsRetentionHours: 2,
      eventsHeartbeatSeconds: 5,
      eventsClientBufferBytes: 65536,
      eventsLeaseMs: 3000,
      eventsProgressIntervalMs: 0,
      secretsKey: null,
      webhookCallbackKey: null,
      webhookRetrySchedule: [1, 2.5, 60],
      webhookTimeoutMs: 3000,
      webhookDisableAfterFailures: 0,
      webhookRotationGraceSeconds: 600,
      webhookDeliveryLogSize: 50,
      webhookConcurrency: 4,
      webhookAllowedCidrs: ['127.0.0.0/8', '::1/128'],
      webhookDeniedCidrs: ['203.0.113.0/24'],
    });
  });

  it('reads the secrets key and the callback secret as keys, never echoing them', () => {
    const key = randomBytes(32);
    const callback = randomBytes(32);
    const config = loadConfig({
      VIRTGATE_SECRETS_KEY: key.toString('base64'),
      WEBHOOK_CALLBACK_SECRET: `whsec_${callback.toString('base64')}`,
    });
    assert.ok(config.secretsKey?.equals(createSecretKey(key)));
    assert.ok(config.webhookCallbackKey?.equals(createSecretKey(callback)));
    assert.ok(!JSON.stringify(config).includes(key.toString('base64')));
    for (const bad of [randomBytes(16).toString('base64'), 'x'.repeat(44), key.toString('hex')]) {
      const problems = problemsOf({ VIRTGATE_SECRETS_KEY: bad });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^VIRTGATE_SECRETS_KEY must be the base64 of 32 random bytes/);
      assert.ok(!problems[0]!.includes(bad));
    }
    for (const bad of [
      callback.toString('base64'),
      `whsec_${randomBytes(16).toString('base64')}`,
      'whsec_not base64!',
    ]) {
      const problems = problemsOf({ WEBHOOK_CALLBACK_SECRET: bad });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^WEBHOOK_CALLBACK_SECRET must be whsec_ followed by the base64/);
      assert.ok(!problems[0]!.includes(bad));
    }
  });

  it('bounds the webhook settings and checks the CIDR lists', () => {
    for (const schedule of ['5,,10', '-1', 'soon', '700000', new Array(31).fill('1').join(',')]) {
      assert.match(
        problemsOf({ WEBHOOK_RETRY_SCHEDULE: schedule })[0]!,
        /^WEBHOOK_RETRY_SCHEDULE must be 1-30 comma-separated delays in seconds/,
      );
    }
    for (const cidrs of ['10.0.0.0/33', 'localhost', '10.0.0.0/8,fe80::/129', 'fe80::1%eth0']) {
      assert.match(
        problemsOf({ WEBHOOK_DENIED_CIDRS: cidrs })[0]!,
        /^WEBHOOK_DENIED_CIDRS must be comma-separated CIDR ranges/,
      );
    }
    assert.deepEqual(problemsOf({ WEBHOOK_TIMEOUT_MS: '50' }), [
      'WEBHOOK_TIMEOUT_MS must be an integer 100-120000, got "50"',
    ]);
    assert.deepEqual(problemsOf({ WEBHOOK_DELIVERY_LOG_SIZE: '5' }), [
      'WEBHOOK_DELIVERY_LOG_SIZE must be an integer 10-1000000, got "5"',
    ]);
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ PORT: '', VIRTGATE_ADMIN_TOKEN: '', ROLE: '' });
    assert.equal(config.port, 8080);
    assert.equal(config.role, 'all');
    assert.equal(config.adminToken, undefined);
  });

  it('returns a frozen object', () => {
    const config = loadConfig({});
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
  });

  it('bounds the libvirt pool and deadlines', () => {
    assert.deepEqual(problemsOf({ LIBVIRT_POOL_SIZE: '0' }), [
      'LIBVIRT_POOL_SIZE must be an integer 1-64, got "0"',
    ]);
    assert.deepEqual(problemsOf({ LIBVIRT_CONNECT_TIMEOUT_MS: 'soon' }), [
      'LIBVIRT_CONNECT_TIMEOUT_MS must be an integer 100-120000, got "soon"',
    ]);
    assert.deepEqual(problemsOf({ LIBVIRT_CALL_TIMEOUT_MS: '99' }), [
      'LIBVIRT_CALL_TIMEOUT_MS must be an integer 100-600000, got "99"',
    ]);
    assert.deepEqual(problemsOf({ LIBVIRT_KEEPALIVE_INTERVAL_MS: '50' }), [
      'LIBVIRT_KEEPALIVE_INTERVAL_MS must be an integer 100-60000, got "50"',
    ]);
    assert.deepEqual(problemsOf({ LIBVIRT_KEEPALIVE_COUNT: '0' }), [
      'LIBVIRT_KEEPALIVE_COUNT must be an integer 1-20, got "0"',
    ]);
    assert.deepEqual(problemsOf({ JOB_LOCK_MS: '100' }), [
      'JOB_LOCK_MS must be an integer 500-600000, got "100"',
    ]);
    assert.deepEqual(problemsOf({ JOB_RETENTION_HOURS: '0' }), [
      'JOB_RETENTION_HOURS must be an integer 1-87600, got "0"',
    ]);
    assert.deepEqual(problemsOf({ AUDIT_RETENTION_DAYS: '0', AUDIT_DENIED_WINDOW_SECONDS: '-1' }), [
      'AUDIT_RETENTION_DAYS must be an integer 1-36500, got "0"',
      'AUDIT_DENIED_WINDOW_SECONDS must be an integer 0-3600, got "-1"',
    ]);
    assert.deepEqual(problemsOf({ BLOCK_JOB_CONCURRENCY: '0' }), [
      'BLOCK_JOB_CONCURRENCY must be an integer 1-1000, got "0"',
    ]);
    for (const roots of ['srv/vm', '/srv/vm:relative', '/srv/../etc']) {
      assert.deepEqual(problemsOf({ VIRTGATE_PATH_ROOTS: roots }), [
        `VIRTGATE_PATH_ROOTS must be absolute directories without ".." segments, separated by ":" (e.g. /srv/vm:/var/lib/virtgate), got ${JSON.stringify(roots)}`,
      ]);
    }
    assert.deepEqual(problemsOf({ VIRTGATE_MAX_DISKS: '33' }), [
      'VIRTGATE_MAX_DISKS must be an integer 1-32, got "33"',
    ]);
    assert.deepEqual(problemsOf({ DOCS_SESSION_TTL_SECONDS: '59' }), [
      'DOCS_SESSION_TTL_SECONDS must be an integer 60-604800, got "59"',
    ]);
  });

  it('never echoes the password of a rejected URI', () => {
    const problem =
      problemsOf({
        LIBVIRT_DEFAULT_URI: 'qemu+bogus://root:hunter2-pw@h/system?password=hunter3-pw',
      })[0] ?? '';
    assert.ok(problem.startsWith('LIBVIRT_DEFAULT_URI '), problem);
    assert.ok(!problem.includes('hunter2-pw') && !problem.includes('hunter3-pw'), problem);
    assert.match(problem, /qemu\+bogus:\/\/root:\*\*\*@h\/system\?password=\*\*\*/);
  });

  it('bounds the GraphQL limits', () => {
    assert.deepEqual(problemsOf({ GRAPHQL_MAX_DEPTH: '1' }), [
      'GRAPHQL_MAX_DEPTH must be an integer 2-100, got "1"',
    ]);
    assert.deepEqual(problemsOf({ GRAPHQL_MAX_COST: 'lots' }), [
      'GRAPHQL_MAX_COST must be an integer 10-100000000, got "lots"',
    ]);
    assert.deepEqual(problemsOf({ GRAPHQL_MAX_TOKENS: '99', GRAPHQL_MAX_DOCUMENT_BYTES: '1k' }), [
      'GRAPHQL_MAX_DOCUMENT_BYTES must be an integer 1024-10000000, got "1k"',
      'GRAPHQL_MAX_TOKENS must be an integer 100-1000000, got "99"',
    ]);
    assert.deepEqual(problemsOf({ GRAPHQL_INTROSPECTION: 'yes' }), [
      'GRAPHQL_INTROSPECTION must be true or false, got "yes"',
    ]);
  });

  it('bounds the request limits and checks the CORS origins', () => {
    assert.deepEqual(problemsOf({ HTTP_MAX_CONNECTIONS: '0' }), [
      'HTTP_MAX_CONNECTIONS must be an integer 16-1000000, got "0"',
    ]);
    assert.deepEqual(problemsOf({ HTTP_CONNECTION_TIMEOUT_MS: '60000' }), [
      'HTTP_CONNECTION_TIMEOUT_MS must be an integer 61000-3600000, got "60000"',
    ]);
    assert.deepEqual(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '70000' }), [
      'HTTP_HEADERS_TIMEOUT_MS must not be above HTTP_REQUEST_TIMEOUT_MS',
    ]);
    assert.deepEqual(problemsOf({ JSON_MAX_DEPTH: '2' }), [
      'JSON_MAX_DEPTH must be an integer 4-10000, got "2"',
    ]);
    assert.deepEqual(problemsOf({ JOBS_MAX_ACTIVE_PER_CALLER: '0' }), [
      'JOBS_MAX_ACTIVE_PER_CALLER must be an integer 1-1000000, got "0"',
    ]);
    for (const origins of ['ui.example', 'https://ui.example/app', 'https://a.example,nope']) {
      assert.match(problemsOf({ CORS_ORIGINS: origins })[0]!, /^CORS_ORIGINS must be \* or/);
    }
    assert.deepEqual(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins, ['*']);
  });

  it('names the variable and the bad value', () => {
    assert.deepEqual(problemsOf({ PORT: 'abc' }), ['PORT must be an integer 1-65535, got "abc"']);
    for (const port of ['0', '65536', '80.5', '-1', ' 80', '1e3']) {
      const [problem] = problemsOf({ PORT: port });
      assert.equal(problem, `PORT must be an integer 1-65535, got ${JSON.stringify(port)}`);
    }
    assert.deepEqual(problemsOf({ ROLE: 'both' }), [
      'ROLE must be one of api|worker|all, got "both"',
    ]);
    assert.deepEqual(problemsOf({ LOG_LEVEL: 'verbose' }), [
      'LOG_LEVEL must be one of fatal|error|warn|info|debug|trace|silent, got "verbose"',
    ]);
    assert.match(
      problemsOf({ REDIS_URL: 'http://127.0.0.1:6379' })[0]!,
      /^REDIS_URL must be a redis:\/\//,
    );
    assert.match(problemsOf({ REDIS_URL: 'not a url' })[0]!, /^REDIS_URL .*got "not a url"$/);
    assert.match(problemsOf({ HOST: 'my host' })[0]!, /^HOST .*got "my host"$/);
    assert.match(
      problemsOf({ VIRTGATE_REDIS_PREFIX: 'vg:*' })[0]!,
      /^VIRTGATE_REDIS_PREFIX .*got "vg:\*"$/,
    );
    assert.match(
      problemsOf({ LIBVIRT_DEFAULT_URI: 'nonsense' })[0]!,
      /^LIBVIRT_DEFAULT_URI must be a libvirt URI/,
    );
    assert.match(
      problemsOf({ LIBVIRT_DEFAULT_URI: 'qemu+ftp://host/system' })[0]!,
      /^LIBVIRT_DEFAULT_URI .*transport 'ftp' is not supported/,
    );
    // TLS (a URI with a host and no transport means TLS) and SSH are transports it speaks.
    for (const uri of ['qemu://host/system', 'qemu+ssh://root@host:2222/system?keyfile=/k']) {
      assert.equal(loadConfig({ LIBVIRT_DEFAULT_URI: uri }).libvirtDefaultUri, uri);
    }
  });

  it('reports every bad variable at once, in one error message', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'x', ROLE: 'y', LOG_LEVEL: 'z' });
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 3);
    assert.match(error.message, /PORT must be/);
    assert.match(error.message, /ROLE must be/);
    assert.match(error.message, /LOG_LEVEL must be/);
  });

  it('rejects a weak admin token without ever echoing it', () => {
    for (const token of ['short', 'has a space in it, 16+ chars', 'é-non-ascii-token-value']) {
      const problems = problemsOf({ VIRTGATE_ADMIN_TOKEN: token });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^VIRTGATE_ADMIN_TOKEN must be 16-512 printable/);
      assert.ok(!problems[0]!.includes(token), 'the token must not appear in the message');
    }
  });

  it('refuses an admin token that is a variable reference nobody expanded', () => {
    // Each is 16+ printable characters: without this check, a guessable admin token.
    for (const token of [
      '${VIRTGATE_ADMIN_TOKEN:-}',
      '${VIRTGATE_ADMIN_TOKEN}',
      '${VIRTGATE_ADMIN_TOKEN-default-value}',
      '$VIRTGATE_ADMIN_TOKEN',
      'prefix-${VIRTGATE_ADMIN_TOKEN}-suffix',
    ]) {
      const error = (() => {
        try {
          loadConfig({ VIRTGATE_ADMIN_TOKEN: token });
        } catch (err) {
          return err;
        }
        return assert.fail(`loadConfig accepted ${token}`);
      })();
      assert.ok(error instanceof ConfigError, `expected a ConfigError for ${token}`);
      assert.equal(error.problems.length, 1, token);
      assert.match(
        error.problems[0]!,
        /^VIRTGATE_ADMIN_TOKEN holds an unexpanded variable reference/,
      );
      assert.match(error.message, /VIRTGATE_ADMIN_TOKEN/);
      assert.ok(!error.problems[0]!.includes(token), 'the value must not appear in the message');
    }
  });

  it('still takes a strong token with a dollar sign that is no variable reference', () => {
    for (const token of ['a$b-0123456789abcdef', 'pay$$-0123456789abcdef', '0123456789abcdef$']) {
      assert.equal(loadConfig({ VIRTGATE_ADMIN_TOKEN: token }).adminToken, token);
    }
  });
});
