/**
 * The results of the domain jobs (lifecycle, autostart, define, undefine):
 * what modules/domains/domains.processor.ts returns, declared once for REST
 * (each type's Job variant) and GraphQL (members of the JobResult union).
 */
import { Field, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { declareJobType } from '#modules/jobs/models/job-results.js';
import { resolvedOf } from '#modules/jobs/models/resolved-schemas.js';
import { S } from '#src/openapi/schema-variants.js';
import { DOMAIN_STATES, type DomainStateName } from '../domain-state.js';
import { DomainStateEnum } from './domain.model.js';

const CHANGED =
  'Whether the job changed anything: false when the domain was so already (a job run again after a crash finds its work done)';

/** A lifecycle job's result: the state libvirt reports once it is done. */
@ObjectType({ isAbstract: true })
abstract class DomainStateResult {
  @ApiProperty({
    enum: DOMAIN_STATES,
    description: "The domain's state once the job was done, as libvirt reports it",
    example: 'running',
  })
  @Field(() => DomainStateEnum)
  state!: DomainStateName;

  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;
}

@ApiSchema({ name: 'StartDomainResult', description: 'The result of a `domain.start` job' })
@ObjectType('StartDomainResult')
export class StartDomainResult extends DomainStateResult {}

@ApiSchema({ name: 'ShutdownDomainResult', description: 'The result of a `domain.shutdown` job' })
@ObjectType('ShutdownDomainResult')
export class ShutdownDomainResult extends DomainStateResult {
  @ApiPropertyOptional({
    description:
      'Whether the domain was powered off (`force`) because the guest did not shut down in time; absent when it was shut off already',
  })
  @Field(() => Boolean, { nullable: true })
  forced?: boolean;
}

@ApiSchema({ name: 'DestroyDomainResult', description: 'The result of a `domain.destroy` job' })
@ObjectType('DestroyDomainResult')
export class DestroyDomainResult extends DomainStateResult {}

@ApiSchema({ name: 'RebootDomainResult', description: 'The result of a `domain.reboot` job' })
@ObjectType('RebootDomainResult')
export class RebootDomainResult extends DomainStateResult {}

@ApiSchema({ name: 'SuspendDomainResult', description: 'The result of a `domain.suspend` job' })
@ObjectType('SuspendDomainResult')
export class SuspendDomainResult extends DomainStateResult {}

@ApiSchema({ name: 'ResumeDomainResult', description: 'The result of a `domain.resume` job' })
@ObjectType('ResumeDomainResult')
export class ResumeDomainResult extends DomainStateResult {}

@ApiSchema({
  name: 'AutostartDomainResult',
  description: 'The result of a `domain.autostart` job',
})
@ObjectType('AutostartDomainResult')
export class AutostartDomainResult {
  @ApiProperty({ description: 'Whether the domain now starts when the host starts' })
  @Field()
  autostart!: boolean;

  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;
}

/** The domain a define or undefine job acted on. */
@ObjectType({ isAbstract: true })
abstract class DomainIdentityResult {
  @ApiProperty({ example: '6695eb01-f6a4-8304-79aa-97f2502e193f' })
  @Field()
  uuid!: string;

  @ApiProperty({ example: 'vm1' })
  @Field()
  name!: string;

  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;
}

@ApiSchema({
  name: 'DefineDomainResult',
  description: 'The result of a `domain.define` job: the domain defined',
})
@ObjectType('DefineDomainResult')
export class DefineDomainResult extends DomainIdentityResult {}

@ApiSchema({
  name: 'UndefineDomainResult',
  description: 'The result of a `domain.undefine` job: the domain undefined',
})
@ObjectType('UndefineDomainResult')
export class UndefineDomainResult extends DomainIdentityResult {}

const resolved = (properties: Parameters<typeof resolvedOf>[0], optional?: string[]) => ({
  schema: resolvedOf(properties, { optional: optional ?? [] }),
});

declareJobType('domain.start', {
  result: StartDomainResult,
  resolved: resolved({ paused: S.boolean('Start it paused') }),
});
declareJobType('domain.shutdown', {
  result: ShutdownDomainResult,
  resolved: resolved({
    timeoutSeconds: S.integer('How long the guest may take'),
    force: S.boolean('Power it off when the guest did not shut down in time'),
  }),
});
declareJobType('domain.destroy', {
  result: DestroyDomainResult,
  resolved: resolved({ graceful: S.boolean('Ask QEMU to terminate gracefully first') }),
});
declareJobType('domain.reboot', { result: RebootDomainResult, resolved: resolved({}) });
declareJobType('domain.suspend', { result: SuspendDomainResult, resolved: resolved({}) });
declareJobType('domain.resume', { result: ResumeDomainResult, resolved: resolved({}) });
declareJobType('domain.autostart', {
  result: AutostartDomainResult,
  resolved: resolved({ enabled: S.boolean('Start the domain when the host starts') }),
});
declareJobType('domain.define', {
  result: DefineDomainResult,
  resolved: resolved(
    {
      xml: S.string(
        'The domain XML defined (built from the spec, or as given with its UUID), secrets redacted',
      ),
      source: S.enum(['spec', 'xml'], 'Whether the request gave a spec or raw XML'),
      paths: S.array(
        S.object({ field: S.string('The request field'), path: S.string('The image it names') }),
        'The images the domain opens, with the request field each came from',
      ),
    },
    ['paths'],
  ),
});
declareJobType('domain.undefine', {
  result: UndefineDomainResult,
  resolved: resolved({
    snapshotsMetadata: S.boolean("Remove libvirt's snapshot metadata too"),
    managedSave: S.boolean('Remove a managed save image too'),
    nvram: S.boolean('Delete the NVRAM file too'),
  }),
});

declare module '#jobs/job-types.js' {
  interface JobResults {
    'domain.start': StartDomainResult;
    'domain.shutdown': ShutdownDomainResult;
    'domain.destroy': DestroyDomainResult;
    'domain.reboot': RebootDomainResult;
    'domain.suspend': SuspendDomainResult;
    'domain.resume': ResumeDomainResult;
    'domain.autostart': AutostartDomainResult;
    'domain.define': DefineDomainResult;
    'domain.undefine': UndefineDomainResult;
  }
}
