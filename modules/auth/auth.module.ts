import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { REQUEST_AUTHENTICATOR } from '#src/common/auth/authenticator.js';
import { BearerAuthGuard } from '#src/common/guards/bearer-auth.guard.js';
import {
  ADMIN_TOKEN_OUTPUT,
  AdminTokenBootstrap,
  type AdminTokenOutput,
} from './admin-token.bootstrap.js';
import { AuthController } from './auth.controller.js';
import { BearerStrategy } from './bearer.strategy.js';
import { JwtAuthenticator } from './jwt-authenticator.js';
import { TokenAuthenticator } from './request-authenticator.js';
import { TokensController } from './tokens.controller.js';
import { TokensService } from './tokens.service.js';

export interface AuthModuleOptions {
  /** Where a generated admin token is printed once; default process.stdout. */
  adminTokenOutput?: AdminTokenOutput;
}

/** Bearer tokens: the global guard, the token store, the admin token, the optional JWT bearer, GET /v1/me. */
@Module({})
export class AuthModule {
  static forRoot(options: AuthModuleOptions = {}): DynamicModule {
    return {
      module: AuthModule,
      imports: [PassportModule],
      controllers: [AuthController, TokensController],
      providers: [
        TokensService,
        TokenAuthenticator,
        JwtAuthenticator,
        BearerStrategy,
        AdminTokenBootstrap,
        { provide: ADMIN_TOKEN_OUTPUT, useValue: options.adminTokenOutput ?? process.stdout },
        { provide: APP_GUARD, useClass: BearerAuthGuard },
        { provide: REQUEST_AUTHENTICATOR, useExisting: TokenAuthenticator },
      ],
      exports: [TokensService, REQUEST_AUTHENTICATOR],
    };
  }
}
