import { ApiProperty } from '@nestjs/swagger';

/** The `scopeFiltered` field of every REST list a token's scope filters (src/common/auth/scope.ts). */
export function ScopeFilteredProperty(): PropertyDecorator {
  return ApiProperty({
    description:
      "True when the list holds only what the token's scope covers (hosts, domain and pool patterns)",
  });
}
