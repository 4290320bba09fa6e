import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { AppConfig } from './config.js';

/** Injection token of the validated, frozen AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/** Makes the AppConfig loaded at boot injectable everywhere as APP_CONFIG. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG],
    };
  }
}
