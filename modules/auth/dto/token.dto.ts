import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { CALLER_ROLES, type CallerRole, type HostScope } from '#src/common/auth/caller.js';

/** Shell-style patterns of names: letters, digits and `._-+:` plus `*` and `?`. */
const NAME_PATTERN = /^[A-Za-z0-9._+:*?-]{1,128}$/;

@ApiSchema({ name: 'HostScope' })
export class HostScopeDto {
  @ApiProperty({ description: 'A registered host name', example: 'local' })
  @IsString()
  @MaxLength(63)
  host!: string;

  @ApiPropertyOptional({
    type: [String],
    description:
      'Domain name patterns on this host (`*` any run of characters, `?` one). Absent: every domain when pools is absent too, else none',
    example: ['web-*'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @Matches(NAME_PATTERN, {
    each: true,
    message: 'each domain pattern must be 1-128 of A-Z a-z 0-9 . _ + : - * ?',
  })
  domains?: string[];

  @ApiPropertyOptional({
    type: [String],
    description:
      'Storage pool name patterns on this host (the disk images a token may use live in them). Absent: every pool when domains is absent too, else none',
    example: ['default'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @Matches(NAME_PATTERN, {
    each: true,
    message: 'each pool pattern must be 1-128 of A-Z a-z 0-9 . _ + : - * ?',
  })
  pools?: string[];
}

@ApiSchema({ name: 'CreateToken' })
export class CreateTokenDto {
  @ApiProperty({ description: 'What the token is for, 1-64 characters', example: 'portal-web' })
  @IsString()
  @Matches(/^[\x20-\x7e]{1,64}$/, { message: 'name must be 1-64 printable ASCII characters' })
  name!: string;

  @ApiProperty({ enum: CALLER_ROLES, description: "At most the creating token's role" })
  @IsIn(CALLER_ROLES)
  role!: CallerRole;

  @ApiPropertyOptional({
    type: [HostScopeDto],
    nullable: true,
    description:
      "What the token reaches; absent or null: everything its creator reaches. Must lie within the creator's scopes",
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @ValidateNested({ each: true })
  @Type(() => HostScopeDto)
  scopes?: HostScopeDto[] | null;

  @ApiPropertyOptional({
    description: 'When the token stops working (ISO 8601, in the future); absent: never',
    example: '2027-01-01T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  expiresAt?: string;
}

@ApiSchema({ name: 'Token' })
export class TokenDto {
  @ApiProperty({ example: 'tok_3kQ9xZ1bP0aR' })
  id!: string;
  @ApiProperty({ example: 'portal-web' })
  name!: string;
  @ApiProperty({ enum: CALLER_ROLES })
  role!: CallerRole;
  @ApiProperty({ type: [HostScopeDto], nullable: true, description: 'null: everything' })
  scopes!: HostScope[] | null;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T23:00:00.000Z' })
  createdAt!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The id of the token that made this one',
  })
  createdBy!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  expiresAt!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Last use, to within a minute',
  })
  lastUsedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Client address of the last use' })
  lastUsedAddress!: string | null;
}

@ApiSchema({ name: 'CreatedToken' })
export class CreatedTokenDto extends TokenDto {
  @ApiProperty({
    description: 'The token itself: shown only in this answer (only its hash is stored)',
    example: 'vg_…',
  })
  token!: string;
}

@ApiSchema({ name: 'TokenList' })
export class TokenListDto {
  @ApiProperty({ type: [TokenDto] })
  items!: TokenDto[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor!: string | null;
}
