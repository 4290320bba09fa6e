import { Args, ArgsType, Field, Query, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
} from '#src/graphql/connection.js';
import { AuditService } from './audit.service.js';
import { AuditFilterInput } from './dto/audit-filter.input.js';
import { AuditEventModel } from './models/audit-event.model.js';
import { AuditEventsConnection } from './models/audit-events-connection.model.js';

@ArgsType()
class AuditEventsArgs extends ConnectionArgs {
  @Field(() => AuditFilterInput, { nullable: true, description: 'Filters combine' })
  @IsOptional()
  @ValidateNested()
  @Type(() => AuditFilterInput)
  filter?: AuditFilterInput;
}

/** The audit trail in GraphQL: the same service and entries as GET /v1/audit. */
@Resolver(() => AuditEventModel)
export class AuditResolver {
  constructor(private readonly audit: AuditService) {}

  @Access('admin')
  @Query(() => AuditEventsConnection, {
    name: 'auditEvents',
    description: 'The audit trail, newest first (admin)',
    complexity: connectionComplexity,
  })
  async auditEvents(
    @CurrentCaller() caller: Caller,
    @Args() args: AuditEventsArgs,
  ): Promise<AuditEventsConnection> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.audit.list(caller, args.filter ?? {}, limit, cursor),
    );
    return toConnection(page, (e) => e.id);
  }
}
