import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import { describeRedis } from '#src/redis/redis-connection.js';
import { TokensService } from './tokens.service.js';

/** Where the generated admin token is printed, once (process.stdout; tests pass their own). */
export const ADMIN_TOKEN_OUTPUT = Symbol('ADMIN_TOKEN_OUTPUT');
export interface AdminTokenOutput {
  write(text: string): unknown;
}

/**
 * At boot: registers VIRTGATE_ADMIN_TOKEN when it is set; otherwise, on the
 * very first start (no admin token in Redis yet), generates one and prints it
 * once to stdout as a plain banner, outside the structured log stream, so it
 * is not shipped to log stores. Only its sha256 is stored.
 */
@Injectable()
export class AdminTokenBootstrap implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(AdminTokenBootstrap.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly tokens: TokensService,
    @Inject(ADMIN_TOKEN_OUTPUT) private readonly output: AdminTokenOutput,
    private readonly recovery: RedisRecovery,
  ) {}

  onModuleInit(): void {
    // Redis lost the token records: the configured admin token works again without a restart
    // (with none configured, a new one is generated and printed, as at first start).
    this.recovery.register({
      name: 'the admin token',
      order: 0,
      onDataLoss: () => this.ensureAdminToken(),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.ensureAdminToken();
    } catch (err) {
      throw new Error(
        `cannot set up the admin token in Redis (${describeRedis(this.config.redisTopology)}): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private async ensureAdminToken(): Promise<void> {
    if (this.config.adminToken !== undefined) {
      const outcome = await this.tokens.setAdminToken(this.config.adminToken);
      if (outcome !== 'unchanged') {
        this.logger.log(
          outcome === 'replaced'
            ? 'admin token from VIRTGATE_ADMIN_TOKEN registered; the previous admin token is revoked'
            : 'admin token from VIRTGATE_ADMIN_TOKEN registered',
        );
      }
      return;
    }
    const token = await this.tokens.createAdminTokenIfNone();
    if (token !== null) {
      this.output.write(
        `virtgate: admin token (shown once, only its hash is stored; keep it now): ${token}\n`,
      );
      this.logger.log('generated the admin token and printed it once to stdout');
    } else if (!(await this.tokens.adminTokenRecordExists())) {
      this.logger.warn(
        'the admin token recorded in Redis has no record any more: no admin can authenticate. ' +
          'Set VIRTGATE_ADMIN_TOKEN, or delete the admin-token-hash key to generate a new one',
      );
    }
  }
}
