import { Args, ArgsType, Context, Field, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import {
  ConnectionArgs,
  connectionComplexity,
  listComplexity,
  toConnection,
  withConnectionArgs,
  type Connection,
} from '#src/graphql/connection.js';
import type { RequestLoaders } from '#src/graphql/graphql-context.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import { HostModel } from '#modules/hosts/models/host.model.js';
import { domainDetailsLoader, domainSnapshotsLoader, type DomainRef } from './domain-loaders.js';
import { DomainsService } from './domains.service.js';
import { DomainFilterDto } from './dto/list-domains-query.dto.js';
import {
  DiskModel,
  DomainModel,
  InterfaceModel,
  SnapshotModel,
  type DomainSummaryModel,
} from './models/domain.model.js';
import { DomainsConnection } from './models/domains-connection.model.js';

/** A domain as GraphQL resolves it: a listing's summary, or a full view. */
type DomainNode = DomainSummaryModel & Partial<DomainModel>;

/**
 * The host of each domain object a query returned, for its field resolvers.
 * Kept beside the objects rather than copied into them: the service's
 * objects are handed to GraphQL as they are.
 */
const hostOf = new WeakMap<DomainNode, string>();

function nodeOf(host: string, domain: DomainNode): DomainNode {
  hostOf.set(domain, host);
  return domain;
}

function hostOfNode(domain: DomainNode): string {
  const host = hostOf.get(domain);
  if (host === undefined)
    throw new Error(`domain '${domain.name}' reached GraphQL without its host`);
  return host;
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
    @Parent() host: HostModel,
    @Args() args: DomainsArgs,
  ): Promise<Connection<DomainNode>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.domains.list(host.name, args.filter ?? {}, limit, cursor),
    );
    return toConnection(
      page,
      (d) => d.name,
      (d) => nodeOf(host.name, d),
    );
  }

  @ResolveField('domain', () => DomainModel, {
    nullable: true,
    description: 'A domain by name or UUID (null, with a NOT_FOUND error, when there is none)',
  })
  async getDomain(@Parent() host: HostModel, @Args() args: DomainArgs): Promise<DomainNode> {
    return nodeOf(host.name, await this.domains.get(host.name, args.name));
  }
}

/**
 * A domain's disks, interfaces and snapshots, read through per-request
 * loaders (domain-loaders.ts): one bulk read per host and query level.
 */
@Resolver(() => DomainModel)
export class DomainsResolver {
  constructor(
    private readonly domains: DomainsService,
    private readonly hosts: HostsService,
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

  @ResolveField('snapshots', () => [SnapshotModel], {
    description: "The domain's snapshots with their disks, oldest first",
    complexity: listComplexity(10),
  })
  snapshots(
    @Parent() domain: DomainNode,
    @Context('loaders') loaders: RequestLoaders,
  ): Promise<SnapshotModel[]> {
    return domainSnapshotsLoader(loaders, hostOfNode(domain), this.domains).load(ref(domain));
  }

  private details(domain: DomainNode, loaders: RequestLoaders) {
    return domainDetailsLoader(loaders, hostOfNode(domain), this.hosts, this.domains).load(
      ref(domain),
    );
  }
}

function ref(domain: DomainNode): DomainRef {
  return { uuid: domain.uuid, name: domain.name, id: domain.id };
}
