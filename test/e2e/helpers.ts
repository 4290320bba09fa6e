import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import request from 'supertest';
import { hashToken } from '#modules/auth/tokens.service.js';
import type { CallerRole, HostScope } from '#src/common/auth/caller.js';
import { createLogger } from '#src/common/logging/logger.js';
import { loadConfig, type AppConfig, type Env } from '#src/config/config.js';
import { createApp } from '#src/create-app.js';
import { redisKeys } from '#src/redis/keys.js';
import {
  recordLogLine,
  recordPrefix,
  recordRedisKeys,
  recordResponses,
  registerSecret,
} from '../support/secrets.js';
import { SERVICES_DIR } from '../support/services.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A Redis prefix no other test file or run uses. */
export function uniquePrefix(testFileUrl: string): string {
  const file = basename(new URL(testFileUrl).pathname).replace(/\.test\.js$/, '');
  return `vgtest:${file}:${process.pid}:${Date.now().toString(36)}:`;
}

/** The secrets key of this process's test configurations (VIRTGATE_SECRETS_KEY), generated once. */
const SECRETS_KEY = registerSecret(
  randomBytes(32).toString('base64'),
  'the secrets key (VIRTGATE_SECRETS_KEY) of the test configurations',
);

/**
 * The configuration of a test: defaults plus `env` (the tests' own variables).
 * The tests' image directories live under the temporary directory: it is the
 * configured path root (where pools may be defined), unless `env` says otherwise.
 * A generated VIRTGATE_SECRETS_KEY seals the secrets the gateway keeps
 * (webhooks'), unless `env` says otherwise (`''`: none).
 */
export function testConfig(prefix: string, env: Env = {}): AppConfig {
  recordPrefix(prefix);
  const adminToken = env.VIRTGATE_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken.length >= 16) {
    registerSecret(adminToken, 'the admin token of a test configuration');
  }
  return loadConfig({
    REDIS_URL,
    VIRTGATE_REDIS_PREFIX: prefix,
    LOG_LEVEL: 'debug',
    VIRTGATE_PATH_ROOTS: tmpdir(),
    // The services script's test PKI and SSH keys, and files a test writes for itself.
    HOST_CREDENTIAL_DIRS: `${SERVICES_DIR}:${tmpdir()}`,
    VIRTGATE_SECRETS_KEY: SECRETS_KEY,
    // Test files share one libvirtd: an app adopting another file's block jobs would follow
    // them and add their events to its stream. The adoption tests turn it on.
    BLOCK_JOB_ADOPT: 'false',
    ...env,
  });
}

/** A pino destination that keeps every log line, parsed (and records it for the secrets check). */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line === '') continue;
      recordLogLine(line);
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
}

export interface TestApp {
  app: NestFastifyApplication;
  config: AppConfig;
  logs: LogCapture;
  /** What the app printed outside the log stream (the generated admin token banner). */
  printed: string[];
  /** The underlying Node server, for supertest. */
  server: Server;
  /** Closes the app (safe to call twice). */
  close(): Promise<void>;
}

const openApps = new Set<TestApp>();

/** Requests to an app as the holder of `token`: what most tests send. */
export function as(t: TestApp, token: string) {
  const auth = (r: request.Test): request.Test => r.set('authorization', `Bearer ${token}`);
  return {
    get: (url: string) => auth(request(t.server).get(url)),
    post: (url: string, body: object = {}, headers: Record<string, string> = {}) =>
      auth(request(t.server).post(url)).set(headers).send(body),
  };
}

/** Registers the local daemon's test driver over TCP as host `test` (201 or the test fails). */
export async function registerTestDriverHost(t: TestApp, adminToken: string): Promise<void> {
  const res = await as(t, adminToken).post('/v1/hosts', {
    name: 'test',
    uri: 'test+tcp://127.0.0.1/default',
  });
  if (res.status !== 201) throw new Error(`registering the test host: ${res.status} ${res.text}`);
}

/** Closes every app a test left open (a failed assertion skips its own close): call in after(). */
export async function closeAllApps(): Promise<void> {
  for (const t of [...openApps]) await t.close();
}

/**
 * createApp with a test configuration, capturing its logs and its printed
 * output. One app at a time per process (see createApp): close it first.
 */
export async function startApp(config: AppConfig): Promise<TestApp> {
  const logs = new LogCapture();
  const printed: string[] = [];
  const app = await createApp(config, {
    logger: createLogger(config, logs),
    adminTokenOutput: {
      write: (text: string) => {
        // A generated admin token is a secret the logs must not show either.
        for (const [token] of text.matchAll(/vg_[A-Za-z0-9_-]{16,}/g)) {
          registerSecret(token, 'a generated admin token');
        }
        return printed.push(text);
      },
    },
  });
  recordResponses(app.getHttpServer() as Server);
  const shutdown = trackShutdown(app);
  const t: TestApp = {
    app,
    config,
    logs,
    printed,
    server: app.getHttpServer() as Server,
    close: async () => {
      if (!openApps.delete(t)) return;
      await closeWatched(app, shutdown);
    },
  };
  openApps.add(t);
  return t;
}

/** The lifecycle hooks Nest runs when an application closes. */
const SHUTDOWN_HOOKS = ['onModuleDestroy', 'beforeApplicationShutdown', 'onApplicationShutdown'];
/**
 * How long a close may take before the test fails naming what has not returned:
 * a watchdog against a hang (the file would otherwise sit until the runner's
 * timeout, saying nothing), far beyond any close that works.
 */
const CLOSE_WATCHDOG_MS = 60_000;

/**
 * Records which shutdown steps of `app` have started and not returned: every
 * provider's shutdown hooks and the HTTP server's close. Returns the names of
 * those still running.
 */
function trackShutdown(app: NestFastifyApplication): () => string[] {
  const running = new Set<string>();
  const track = <A extends unknown[]>(
    name: string,
    fn: (...args: A) => unknown,
    self: unknown,
  ): ((...args: A) => Promise<unknown>) => {
    return async (...args: A) => {
      running.add(name);
      try {
        return await fn.apply(self, args);
      } finally {
        running.delete(name);
      }
    };
  };
  // Nest keeps its modules in a container it does not type for applications.
  const container = (
    app as unknown as {
      container: {
        getModules(): Map<
          string,
          { name: string; providers: Map<unknown, { name: unknown; instance: unknown }> }
        >;
      };
    }
  ).container;
  for (const mod of container.getModules().values()) {
    for (const wrapper of mod.providers.values()) {
      const instance = wrapper.instance as Record<string, unknown> | null | undefined;
      if (!instance || typeof instance !== 'object') continue;
      for (const hook of SHUTDOWN_HOOKS) {
        const fn = instance[hook];
        if (typeof fn !== 'function') continue;
        const who = `${mod.name}/${String(wrapper.name)}.${hook}`;
        instance[hook] = track(who, fn as (...args: unknown[]) => unknown, instance);
      }
    }
  }
  const adapter = app.getHttpAdapter() as unknown as { close: () => Promise<unknown> };
  adapter.close = track('the HTTP server close', adapter.close, adapter);
  return () => [...running];
}

/**
 * Closes `app`; a close that has not ended after CLOSE_WATCHDOG_MS fails,
 * naming the shutdown steps that have not returned (the close is not cut
 * short: the failure is the point).
 */
async function closeWatched(app: NestFastifyApplication, pending: () => string[]): Promise<void> {
  let watchdog: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    // eslint-disable-next-line no-restricted-syntax -- a watchdog against a hung close, which then fails naming it; nothing waits on it to synchronise
    watchdog = setTimeout(() => {
      reject(
        new Error(
          `the app's close has not ended after ${CLOSE_WATCHDOG_MS} ms; not returned: ${pending().join(', ') || '(no tracked step)'}`,
        ),
      );
    }, CLOSE_WATCHDOG_MS);
  });
  try {
    await Promise.race([app.close(), hung]);
  } finally {
    clearTimeout(watchdog);
  }
}

/** Deletes every key under `prefix`; returns how many there were. */
export async function deleteKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await scanKeys(redis, prefix);
    await recordRedisKeys(redis, keys); // for the secrets check after the suite
    if (keys.length > 0) await redis.del(...keys);
    return keys.length;
  } finally {
    await redis.quit();
  }
}

export async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

export const PROBLEM_JSON = /^application\/problem\+json/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Stores an API token's record under `prefix`, as POST /v1/tokens keeps one
 * (only the token's sha256): for a test that needs a non-admin token before
 * its app starts. `scopes` null: everything.
 */
export async function storeToken(
  prefix: string,
  token: string,
  record: { id: string; role: CallerRole; scopes?: HostScope[] | null },
): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    await redis.hset(redisKeys(prefix).token(hashToken(token)), {
      id: record.id,
      name: record.id,
      role: record.role,
      scopes: JSON.stringify(record.scopes ?? null),
      createdAt: new Date().toISOString(),
    });
  } finally {
    await redis.quit();
  }
}
