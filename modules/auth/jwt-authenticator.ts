import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  CALLER_ROLES,
  roleAtLeast,
  type Caller,
  type CallerRole,
  type HostScope,
} from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { looksLikeJwt, type AppConfig, type JwtConfig } from '#src/config/config.js';
import { jwtKeySource, type JwtKeySource } from './jwt-keys.js';
import { JwtRejected, verifyJwt, type JwtClaims } from './jwt-verifier.js';

/** Most host scopes, and patterns per list, a scopes claim may hold. */
const MAX_SCOPES = 256;

/**
 * The JWT bearer (JWT_* configuration): a verified token of the configured
 * issuer and audience becomes a Caller whose role and scopes come from its
 * claims. Its id, `jwt:<iss>#<sub>`, tells a JWT subject from an API token.
 */
@Injectable()
export class JwtAuthenticator {
  private readonly logger = new Logger(JwtAuthenticator.name);
  private readonly config: JwtConfig | null;
  private readonly keys: JwtKeySource | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.config = config.jwt;
    this.keys = config.jwt ? jwtKeySource(config.jwt) : null;
  }

  /** Whether `token` is for this authenticator: JWT is configured and the value has a JWT's shape. */
  handles(token: string): boolean {
    return this.config !== null && looksLikeJwt(token);
  }

  /** The Caller of a valid token; throws AppError UNAUTHENTICATED saying why it is not. */
  async callerFor(token: string, requestId: string): Promise<Caller> {
    if (!this.config || !this.keys) throw new Error('the JWT bearer is not configured');
    try {
      const claims = await verifyJwt(token, this.keys, this.config);
      return {
        id: `jwt:${claims.iss}#${claims.sub}`,
        role: roleOf(claims, this.config),
        scopes: scopesOf(claims, this.config),
        requestId,
      };
    } catch (err) {
      if (!(err instanceof JwtRejected)) throw err;
      this.logger.debug(`refused a JWT: ${err.message}`);
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        `the bearer token is not valid: ${err.message}`,
      );
    }
  }
}

/** A claim by name, or by dotted path into nested objects when no claim has the whole name. */
function claim(claims: JwtClaims, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The highest role the role claim's values map to; refused when they map to none. */
function roleOf(claims: JwtClaims, config: JwtConfig): CallerRole {
  const value = claim(claims, config.roleClaim);
  const values: unknown[] = Array.isArray(value) ? value : [value];
  let role: CallerRole | null = null;
  for (const v of values) {
    if (typeof v !== 'string' || !Object.hasOwn(config.roleMap, v)) continue;
    const mapped = config.roleMap[v] as CallerRole;
    if (role === null || !roleAtLeast(role, mapped)) role = mapped;
  }
  if (role === null) {
    throw new JwtRejected(
      `its ${config.roleClaim} claim maps to no role here (${CALLER_ROLES.join(', ')})`,
    );
  }
  return role;
}

/**
 * The scopes claim: `"*"` (or `["*"]`) for every host, else a list of
 * `{host, domains?, pools?}` as API tokens have. Refused when absent or
 * malformed, and when an entry has another member: a misspelt `domain` must
 * not silently widen a scope to every domain.
 */
function scopesOf(claims: JwtClaims, config: JwtConfig): HostScope[] | null {
  if (config.scopesClaim === null) return null;
  const value = claim(claims, config.scopesClaim);
  if (value === '*' || (Array.isArray(value) && value.length === 1 && value[0] === '*')) {
    return null;
  }
  const bad = (): JwtRejected =>
    new JwtRejected(
      `its ${config.scopesClaim} claim is not "*" or a list of {host, domains?, pools?}`,
    );
  if (!Array.isArray(value) || value.length > MAX_SCOPES) throw bad();
  return value.map((entry: unknown): HostScope => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad();
    const { host, domains, pools, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0 || !isName(host)) throw bad();
    if (domains !== undefined && !isNameList(domains)) throw bad();
    if (pools !== undefined && !isNameList(pools)) throw bad();
    return {
      host,
      ...(domains !== undefined && { domains }),
      ...(pools !== undefined && { pools }),
    };
  });
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256;
}

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= MAX_SCOPES && value.every(isName);
}
