import {
  Args,
  ArgsType,
  Context,
  Field,
  Mutation,
  Parent,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import DataLoader from 'dataloader';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import { listComplexity } from '#src/graphql/connection.js';
import type { RequestLoaders } from '#src/graphql/graphql-context.js';
import {
  JobModel,
  JobMutationArgs,
  JobsService,
  mutationIdempotencyKey,
  mutationJob,
} from '#modules/jobs/index.js';
import { hostOfDomain, type DomainNode } from '#modules/domains/index.js';
import { DomainModel } from '#modules/domains/models/domain.model.js';
import { CreateSnapshotDto } from './dto/create-snapshot.dto.js';
import { SnapshotModel } from './models/snapshot.model.js';
import { SnapshotOperationsService } from './snapshot-operations.service.js';
import { SnapshotsService } from './snapshots.service.js';

@ArgsType()
class DomainJobArgs extends JobMutationArgs {
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
class CreateSnapshotArgs extends DomainJobArgs {
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
 * Snapshots in GraphQL: a domain's `snapshots` (read once per domain per
 * request) and the createSnapshot mutation, the same services, rules and
 * jobs as GET and POST …/domains/{domain}/snapshots.
 */
@Resolver(() => DomainModel)
export class SnapshotsResolver {
  constructor(
    private readonly snapshots: SnapshotsService,
    private readonly operations: SnapshotOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @ResolveField('snapshots', () => [SnapshotModel], {
    description: "The domain's snapshots with their disks, oldest first",
    complexity: listComplexity(10),
  })
  listSnapshots(
    @CurrentCaller() caller: Caller,
    @Parent() domain: DomainNode,
    @Context('loaders') loaders: RequestLoaders,
  ): Promise<SnapshotModel[]> {
    const host = hostOfDomain(domain);
    return loaders
      .get(
        `domains.snapshots:${host}`,
        () =>
          new DataLoader<string, SnapshotModel[], string>((uuids) =>
            Promise.all(
              uuids.map((uuid) =>
                this.snapshots
                  .list(caller, host, uuid)
                  .catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))),
              ),
            ),
          ),
      )
      .load(domain.uuid);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Take an external disk-only snapshot: a new qcow2 overlay on each disk, as a job (see POST …/domains/{domain}/snapshots); with `wait`, the job once finished',
  })
  async createSnapshot(
    @CurrentCaller() caller: Caller,
    @Args() args: CreateSnapshotArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.create(
      caller,
      args.host,
      args.domain,
      withoutNulls(args.input ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }
}
