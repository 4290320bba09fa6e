/**
 * The host view, declared once for both transports: @ApiProperty feeds the
 * OpenAPI schema, @Field the GraphQL type.
 */
import { Field, Float, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import type { ConnectionState } from '#src/hosts/host-connections.js';
import { ScopeFilteredProperty } from '#src/common/dto/scope-filtered.js';
import { HostCredentialsModel } from './host-credentials.model.js';

export const CONNECTION_STATES: readonly ConnectionState[] = [
  'idle',
  'connecting',
  'connected',
  'unreachable',
];
const ConnectionStateEnum = Object.fromEntries(CONNECTION_STATES.map((s) => [s, s]));
registerEnumType(ConnectionStateEnum, {
  name: 'ConnectionState',
  description:
    'idle: no connection open yet (or closed cleanly); connecting; connected; unreachable: the last attempt failed, a call timed out or the host stopped answering keepalive pings (requests answer 503 at once until a probe reaches it)',
});

@ApiSchema({ name: 'HostConnection' })
@ObjectType('HostConnection')
export class HostConnectionModel {
  @ApiProperty({ enum: CONNECTION_STATES, example: 'connected' })
  @Field(() => ConnectionStateEnum)
  state!: ConnectionState;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why the last attempt failed, or the last connection closed',
  })
  @Field(() => String, { nullable: true })
  lastError!: string | null;

  @ApiProperty({
    format: 'date-time',
    description: 'When the host entered this state (ISO 8601)',
    example: '2026-11-29T07:00:00.000Z',
  })
  @Field()
  since!: string;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'While unreachable: when the gateway tries the host next (ISO 8601); requests answer 503 until it answers',
    example: null,
  })
  @Field(() => String, { nullable: true })
  retryAt!: string | null;
}

@ApiSchema({ name: 'NodeInfo' })
@ObjectType('NodeInfo')
export class NodeInfoModel {
  @ApiProperty({ example: 'x86_64' })
  @Field()
  cpuModel!: string;

  @ApiProperty({ type: 'integer', example: 2 })
  @Field(() => Int)
  cpus!: number;

  @ApiProperty({ type: 'integer', example: 2100 })
  @Field(() => Int)
  mhz!: number;

  @ApiProperty({ type: 'integer', example: 1 })
  @Field(() => Int)
  numaNodes!: number;

  @ApiProperty({ type: 'integer', example: 1 })
  @Field(() => Int)
  sockets!: number;

  @ApiProperty({ type: 'integer', example: 2 })
  @Field(() => Int)
  coresPerSocket!: number;

  @ApiProperty({ type: 'integer', example: 1 })
  @Field(() => Int)
  threadsPerCore!: number;

  @ApiProperty({ type: 'integer', description: 'Memory in bytes', example: 8589934592 })
  @Field(() => Float)
  memoryBytes!: number;
}

@ApiSchema({ name: 'GuestCapability' })
@ObjectType('GuestCapability')
export class GuestCapabilityModel {
  @ApiProperty({ example: 'hvm' })
  @Field()
  osType!: string;

  @ApiProperty({ example: 'x86_64' })
  @Field()
  arch!: string;

  @ApiProperty({ type: 'integer', nullable: true, example: 64 })
  @Field(() => Int, { nullable: true })
  wordSize!: number | null;

  @ApiProperty({ type: String, nullable: true, example: '/usr/bin/qemu-system-x86_64' })
  @Field(() => String, { nullable: true })
  emulator!: string | null;

  @ApiProperty({ type: [String], description: 'qemu (TCG), kvm…', example: ['qemu'] })
  @Field(() => [String])
  domainTypes!: string[];

  @ApiProperty({ type: [String], example: ['pc-i440fx-7.2', 'pc', 'pc-q35-7.2', 'q35'] })
  @Field(() => [String])
  machines!: string[];
}

@ApiSchema({ name: 'HostCapabilities' })
@ObjectType('HostCapabilities')
export class HostCapabilitiesModel {
  @ApiProperty({ type: String, nullable: true, example: 'x86_64' })
  @Field(() => String, { nullable: true })
  hostArch!: string | null;

  @ApiProperty({ type: [GuestCapabilityModel] })
  @Field(() => [GuestCapabilityModel])
  guests!: GuestCapabilityModel[];
}

@ApiSchema({ name: 'Hypervisor' })
@ObjectType('Hypervisor')
export class HypervisorModel {
  @ApiProperty({ example: 'QEMU' })
  @Field()
  type!: string;

  @ApiProperty({ example: '7.2.22' })
  @Field()
  version!: string;
}

@ApiSchema({ name: 'Host' })
@ObjectType('Host')
export class HostModel {
  @ApiProperty({ example: 'local' })
  @Field()
  name!: string;

  @ApiProperty({ example: 'qemu:///system' })
  @Field()
  uri!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-29T07:00:00.000Z' })
  @Field()
  createdAt!: string;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the URI or credentials were last changed (PATCH); null if never',
    example: null,
  })
  @Field(() => String, { nullable: true })
  updatedAt!: string | null;

  @ApiProperty({ type: HostConnectionModel })
  @Field(() => HostConnectionModel)
  connection!: HostConnectionModel;

  @ApiProperty({ type: HostCredentialsModel })
  @Field(() => HostCredentialsModel)
  credentials!: HostCredentialsModel;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Null while the host cannot be reached',
    example: 'hv01',
  })
  @Field(() => String, { nullable: true })
  hostname!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '9.0.0' })
  @Field(() => String, { nullable: true })
  libvirtVersion!: string | null;

  @ApiProperty({ type: HypervisorModel, nullable: true })
  @Field(() => HypervisorModel, { nullable: true })
  hypervisor!: HypervisorModel | null;

  @ApiProperty({ type: NodeInfoModel, nullable: true })
  @Field(() => NodeInfoModel, { nullable: true })
  node!: NodeInfoModel | null;

  @ApiProperty({ type: HostCapabilitiesModel, nullable: true })
  @Field(() => HostCapabilitiesModel, { nullable: true })
  capabilities!: HostCapabilitiesModel | null;
}

@ApiSchema({ name: 'HostList' })
export class HostListModel {
  @ApiProperty({ type: [HostModel] })
  items!: HostModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as cursor for the next page; null on the last page',
  })
  nextCursor!: string | null;

  @ScopeFilteredProperty()
  scopeFiltered!: boolean;
}
