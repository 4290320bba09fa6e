import { Args, ArgsType, Field, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  JobMutationArgs,
  mutationIdempotencyKey,
  mutationJob,
  withoutNulls,
} from '#modules/jobs/job-mutation.js';
import { JobsService } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import { DomainDefinitionsService } from './domain-definitions.service.js';
import { DomainSnapshotsService } from './domain-snapshots.service.js';
import { CreateSnapshotDto } from './dto/create-snapshot.dto.js';
import { DefineDomainDto, UndefineDomainQueryDto } from './dto/define-domain.dto.js';

@ArgsType()
class DefineDomainArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;

  @Field(() => DefineDomainDto, {
    description: 'The spec (name, memoryMiB, vcpus, disks, interfaces…), or (admins) `xml` alone',
  })
  @ValidateNested()
  @Type(() => DefineDomainDto)
  input!: DefineDomainDto;
}

@ArgsType()
class DomainArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;

  @Field({ description: 'Domain name or UUID' })
  @IsString()
  @MaxLength(256)
  domain!: string;
}

@ArgsType()
class UndefineDomainArgs extends DomainArgs {
  @Field(() => UndefineDomainQueryDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => UndefineDomainQueryDto)
  options?: UndefineDomainQueryDto | null;
}

@ArgsType()
class CreateSnapshotArgs extends DomainArgs {
  @Field(() => CreateSnapshotDto, {
    nullable: true,
    description: 'By default every writable disk, overlays next to their images, named by the time',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => CreateSnapshotDto)
  input?: CreateSnapshotDto | null;
}

/**
 * Defining and undefining domains and taking snapshots in GraphQL: the same
 * services, rules and jobs as POST and DELETE /v1/hosts/{host}/domains and
 * POST …/domains/{domain}/snapshots.
 */
@Resolver()
export class DomainDefinitionsResolver {
  constructor(
    private readonly definitions: DomainDefinitionsService,
    private readonly snapshots: DomainSnapshotsService,
    private readonly jobs: JobsService,
  ) {}

  @Mutation(() => JobModel, {
    description:
      'Define a domain from a spec or (admins) from libvirt XML, as a job (see POST /v1/hosts/{host}/domains); with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async defineDomain(
    @CurrentCaller() caller: Caller,
    @Args() args: DefineDomainArgs,
  ): Promise<JobModel> {
    const accepted = await this.definitions.define(
      caller,
      args.host,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Undefine a shut-off domain, as a job (see DELETE /v1/hosts/{host}/domains/{domain}); with `wait`, the job once finished',
  })
  async undefineDomain(
    @CurrentCaller() caller: Caller,
    @Args() args: UndefineDomainArgs,
  ): Promise<JobModel> {
    const accepted = await this.definitions.undefine(
      caller,
      args.host,
      args.domain,
      withoutNulls(args.options ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Take an external disk-only snapshot: a new qcow2 overlay on each disk, as a job (see POST …/domains/{domain}/snapshots); with `wait`, the job once finished',
  })
  async createSnapshot(
    @CurrentCaller() caller: Caller,
    @Args() args: CreateSnapshotArgs,
  ): Promise<JobModel> {
    const accepted = await this.snapshots.create(
      caller,
      args.host,
      args.domain,
      withoutNulls(args.input ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }
}
