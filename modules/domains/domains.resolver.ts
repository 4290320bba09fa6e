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
import { IsIn, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
  type Connection,
} from '#src/graphql/connection.js';
import type { RequestLoaders } from '#src/graphql/graphql-context.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import {
  JobModel,
  JobMutationArgs,
  JobsService,
  mutationIdempotencyKey,
  mutationJob,
} from '#modules/jobs/index.js';
import { HostModel } from '#modules/hosts/models/host.model.js';
import { domainDetailsLoader, type DomainRef } from './domain-loaders.js';
import { hostOfDomain, withHost, type DomainNode } from './domain-nodes.js';
import { DomainOperationsService } from './domain-operations.service.js';
import { DomainsService } from './domains.service.js';
import {
  DOMAIN_ACTIONS,
  DomainActionDto,
  DomainActionEnum,
  type DomainAction,
} from './dto/domain-action.dto.js';
import { DefineDomainDto, UndefineDomainQueryDto } from './dto/define-domain.dto.js';
import { DomainFilterDto } from './dto/list-domains-query.dto.js';
import { DiskModel, DomainModel, InterfaceModel } from './models/domain.model.js';
import { DomainsConnection } from './models/domains-connection.model.js';

@ArgsType()
class DomainActionArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;

  @Field({ description: 'Domain name or UUID' })
  @IsString()
  @MaxLength(256)
  domain!: string;

  @Field(() => DomainActionEnum)
  @IsIn(DOMAIN_ACTIONS)
  action!: DomainAction;

  @Field(() => DomainActionDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => DomainActionDto)
  options?: DomainActionDto;
}

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
class UndefineDomainArgs extends DomainJobArgs {
  @Field(() => UndefineDomainQueryDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => UndefineDomainQueryDto)
  options?: UndefineDomainQueryDto | null;
}

@ArgsType()
export class DomainsArgs extends ConnectionArgs {
  @Field(() => DomainFilterDto, { nullable: true, description: 'Filters combine' })
  @IsOptional()
  @ValidateNested()
  @Type(() => DomainFilterDto)
  filter?: DomainFilterDto;
}

@ArgsType()
export class DomainArgs {
  @Field({ description: 'Domain name, or UUID' })
  @IsString()
  @MaxLength(256)
  name!: string;
}

/** A host's domains in GraphQL: the same service and views as /v1/hosts/{host}/domains. */
@Resolver(() => HostModel)
export class HostDomainsResolver {
  constructor(private readonly domains: DomainsService) {}

  @ResolveField('domains', () => DomainsConnection, {
    nullable: true,
    description:
      "The host's domains sorted by name (null, with an error, when the host cannot be reached)",
    complexity: connectionComplexity,
  })
  async listDomains(
    @CurrentCaller() caller: Caller,
    @Parent() host: HostModel,
    @Args() args: DomainsArgs,
  ): Promise<Connection<DomainNode>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.domains.list(caller, host.name, args.filter ?? {}, limit, cursor),
    );
    return toConnection(
      page,
      (d) => d.name,
      (d) => withHost(host.name, d),
    );
  }

  @ResolveField('domain', () => DomainModel, {
    nullable: true,
    description: 'A domain by name or UUID (null, with a NOT_FOUND error, when there is none)',
  })
  async getDomain(
    @CurrentCaller() caller: Caller,
    @Parent() host: HostModel,
    @Args() args: DomainArgs,
  ): Promise<DomainNode> {
    return withHost(host.name, await this.domains.get(caller, host.name, args.name));
  }
}

/**
 * A domain's disks and interfaces, read through per-request loaders
 * (domain-loaders.ts): one bulk read per host and query level; and the
 * domain mutations, the same rules and jobs as REST's.
 */
@Resolver(() => DomainModel)
export class DomainsResolver {
  constructor(
    private readonly domains: DomainsService,
    private readonly registry: HostRegistry,
    private readonly operations: DomainOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @ResolveField('disks', () => [DiskModel], {
    description: 'Disks with their backing chains, as libvirt reports them now',
  })
  async disks(
    @Parent() domain: DomainNode,
    @Context('loaders') loaders: RequestLoaders,
  ): Promise<DiskModel[]> {
    return domain.disks ?? (await this.details(domain, loaders)).disks;
  }

  @ResolveField('interfaces', () => [InterfaceModel])
  async interfaces(
    @Parent() domain: DomainNode,
    @Context('loaders') loaders: RequestLoaders,
  ): Promise<InterfaceModel[]> {
    return domain.interfaces ?? (await this.details(domain, loaders)).interfaces;
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Start, shut down, destroy, reboot, suspend or resume a domain, or set its autostart, as a job; with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async domainAction(
    @CurrentCaller() caller: Caller,
    @Args() args: DomainActionArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.action(
      caller,
      args.host,
      args.domain,
      args.action,
      withoutNulls(args.options ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Define a domain from a spec or (admins) from libvirt XML, as a job (see POST /v1/hosts/{host}/domains); with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async defineDomain(
    @CurrentCaller() caller: Caller,
    @Args() args: DefineDomainArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.define(
      caller,
      args.host,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Undefine a shut-off domain, as a job (see DELETE /v1/hosts/{host}/domains/{domain}); with `wait`, the job once finished',
  })
  async undefineDomain(
    @CurrentCaller() caller: Caller,
    @Args() args: UndefineDomainArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.undefine(
      caller,
      args.host,
      args.domain,
      withoutNulls(args.options ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  private details(domain: DomainNode, loaders: RequestLoaders) {
    return domainDetailsLoader(loaders, hostOfDomain(domain), this.registry, this.domains).load(
      ref(domain),
    );
  }
}

function ref(domain: DomainNode): DomainRef {
  return { uuid: domain.uuid, name: domain.name, id: domain.id };
}
