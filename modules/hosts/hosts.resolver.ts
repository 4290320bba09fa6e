import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
} from '#src/graphql/connection.js';
import { CreateHostDto, UpdateHostDto } from './dto/create-host.dto.js';
import { HostsService } from './hosts.service.js';
import { HostModel } from './models/host.model.js';
import { HostsConnection } from './models/hosts-connection.model.js';

/** Hosts in GraphQL: the same service, views and rules as GET/POST/DELETE /v1/hosts. */
@Resolver(() => HostModel)
export class HostsResolver {
  constructor(private readonly hosts: HostsService) {}

  @Access('viewer')
  @Query(() => HostsConnection, {
    name: 'hosts',
    description: 'The registered hosts, sorted by name, with their connection state',
    complexity: connectionComplexity,
  })
  async listHosts(
    @CurrentCaller() caller: Caller,
    @Args() args: ConnectionArgs,
  ): Promise<HostsConnection> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.hosts.list(caller, limit, cursor),
    );
    return toConnection(page, (h) => h.name);
  }

  @Access('viewer')
  @Query(() => HostModel, {
    name: 'host',
    nullable: true,
    description: 'A host by name (null, with a NOT_FOUND error, when none has that name)',
  })
  getHost(@CurrentCaller() caller: Caller, @Args('name') name: string): Promise<HostModel> {
    return this.hosts.get(caller, name);
  }

  @Access('admin')
  @Mutation(() => HostModel, { description: 'Register a libvirt host (admin)' })
  createHost(
    @CurrentCaller() caller: Caller,
    @Args('input') input: CreateHostDto,
  ): Promise<HostModel> {
    return this.hosts.create(caller, input);
  }

  @Access('admin')
  @Mutation(() => HostModel, {
    description:
      "Change a host's URI or rotate its credentials (admin); new connections use them at once",
  })
  updateHost(
    @CurrentCaller() caller: Caller,
    @Args('name') name: string,
    @Args('input') input: UpdateHostDto,
  ): Promise<HostModel> {
    return this.hosts.update(caller, name, input);
  }

  @Access('admin')
  @Mutation(() => Boolean, {
    description: 'Unregister a host (admin); its domains are not touched. True when done',
  })
  async deleteHost(@CurrentCaller() caller: Caller, @Args('name') name: string): Promise<boolean> {
    await this.hosts.remove(caller, name);
    return true;
  }
}
