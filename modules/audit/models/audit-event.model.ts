import { Field, ID, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import {
  AUDIT_ACTIONS,
  AUDIT_RESULTS,
  type AuditAction,
  type AuditResult,
} from '#src/common/audit/audit-log.js';
import { CALLER_ROLES, type CallerRole } from '#src/common/auth/caller.js';
import { ErrorCode } from '#src/common/errors/app-error.js';
import { JSONScalar } from '#src/graphql/json.scalar.js';
import { registerValueEnum } from '#src/graphql/value-enum.js';
import { ErrorCodeEnum } from '#src/graphql/error-code.enum.js';

export const RoleEnum = registerValueEnum(
  CALLER_ROLES,
  'Role',
  'A role, each holding what the ones before it hold: viewer, operator, admin',
);
export const AuditActionEnum = registerValueEnum(
  AUDIT_ACTIONS,
  'AuditAction',
  'What an audit entry records',
);
export const AuditResultEnum = registerValueEnum(
  AUDIT_RESULTS,
  'AuditResult',
  'accepted: done (a job: queued); replayed: an Idempotency-Key gave back an earlier job, nothing new was done; ' +
    'refused: valid but not carried out (`code` says why); denied: refused for who the caller is (401, 403)',
);

@ApiSchema({ name: 'AuditActor' })
@ObjectType('AuditActor')
export class AuditActorModel {
  @ApiProperty({ description: 'The token id (or JWT subject)', example: 'admin' })
  @Field()
  id!: string;

  @ApiProperty({ enum: CALLER_ROLES, example: 'admin' })
  @Field(() => RoleEnum)
  role!: CallerRole;
}

@ApiSchema({ name: 'AuditEvent' })
@ObjectType('AuditEvent')
export class AuditEventModel {
  @ApiProperty({ description: 'The entry id (its place in the trail)', example: '1796169600000-0' })
  @Field(() => ID)
  id!: string;

  @ApiProperty({ format: 'date-time', example: '2026-12-01T23:00:00.000Z' })
  @Field()
  at!: string;

  @ApiProperty({
    type: AuditActorModel,
    nullable: true,
    description: 'Who acted; null for a request without valid credentials',
  })
  @Field(() => AuditActorModel, { nullable: true })
  actor!: AuditActorModel | null;

  @ApiProperty({ enum: AUDIT_ACTIONS, example: 'job.request' })
  @Field(() => AuditActionEnum)
  action!: AuditAction;

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'What was acted on: `host/domain`, `host/pool`, a host name, `token:<id>`; for a denied request its ' +
      'method and path, or its GraphQL field',
    example: 'local/vm1',
  })
  @Field(() => String, { nullable: true })
  target!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'local' })
  @Field(() => String, { nullable: true })
  host!: string | null;

  @ApiProperty({ description: 'The X-Request-Id of the request' })
  @Field()
  requestId!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "The client's address",
    example: '127.0.0.1',
  })
  @Field(() => String, { nullable: true })
  address!: string | null;

  @ApiProperty({ enum: AUDIT_RESULTS, example: 'accepted' })
  @Field(() => AuditResultEnum)
  result!: AuditResult;

  @ApiProperty({
    enum: ErrorCode,
    enumName: 'ErrorCode',
    nullable: true,
    description: 'For refused and denied: the error code of the answer',
    example: 'FORBIDDEN',
  })
  @Field(() => ErrorCodeEnum, { nullable: true })
  code!: string | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description:
      "Safe extra facts: a job's `jobId` and `type`; a host's redacted `uri`; for auth.denied, `credentials` " +
      '(none or invalid) and `folded` (how many earlier denied requests of the address this entry stands for)',
  })
  @Field(() => JSONScalar, { nullable: true })
  detail!: Record<string, unknown> | null;
}

@ApiSchema({ name: 'AuditEventList' })
export class AuditEventListModel {
  @ApiProperty({ type: [AuditEventModel] })
  items!: AuditEventModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Pass as cursor for the next page; null when the trail holds nothing more that matches. A page may ' +
      'hold fewer items than asked for (a filtered page reads a bounded stretch of the trail)',
  })
  nextCursor!: string | null;
}
