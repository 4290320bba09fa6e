import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { jobAccess, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  domainState as stateOf,
  DomainCreateFlags,
  DomainDefineFlags,
  DomainDestroyFlags,
  DomainState,
  DomainUndefineFlags,
  DomainXmlFlags,
  findDomainByName,
  isShutOff,
  uuidString,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { parseXml, path } from '#src/xml/xml.js';
import { JobProcessor, type JobContext, type QueueProcessor } from '#jobs/processor.js';
import { stateName, type DomainStateName } from './domain-state.js';

/** The result of a lifecycle job: the state libvirt reports once it is done. */
async function outcome(
  { client, dom }: Pick<JobContext<never>, 'client' | 'dom'>,
  changed: boolean,
): Promise<{ state: DomainStateName; changed: boolean }> {
  return { state: stateName(await stateOf(client, dom)), changed };
}

const isActive = (s: number): boolean => !isShutOff(s);

/**
 * The worker side of DomainOperationsService: lifecycle, define, undefine.
 * Each handler first looks at the live state, so a job that a crashed worker
 * left half done is finished, not applied twice: starting a running domain
 * is a success with `changed: false`; a define whose domain (its UUID, given
 * at request time) exists under its name was done by an earlier attempt; an
 * undefine whose domain is gone is done.
 */
@Injectable()
@JobProcessor()
export class DomainsProcessor implements QueueProcessor<'domain-ops'> {
  readonly queue = 'domain-ops' as const;
  readonly concurrency = 16;

  constructor(private readonly confinement: PathConfinement) {}

  readonly handlers: QueueProcessor<'domain-ops'>['handlers'] = {
    'domain.start': async (ctx) => {
      const { client, dom } = ctx;
      if (isActive(await stateOf(client, dom))) return outcome(ctx, false);
      await client.rpc.domainCreateWithFlags({
        dom,
        flags: ctx.job.params.paused ? DomainCreateFlags.START_PAUSED : 0,
      });
      return outcome(ctx, true);
    },

    'domain.shutdown': async (ctx) => {
      const { client, dom } = ctx;
      const { timeoutSeconds, force } = ctx.job.params;
      if (!isActive(await stateOf(client, dom))) return outcome(ctx, false);
      await client.rpc.domainShutdownFlags({ dom, flags: 0 });
      const deadline = Date.now() + timeoutSeconds * 1000;
      while (Date.now() < deadline) {
        if (!isActive(await stateOf(client, dom)))
          return { ...(await outcome(ctx, true)), forced: false };
        await new Promise((r) => setTimeout(r, 250));
      }
      if (!force) {
        throw new AppError(
          ErrorCode.TIMEOUT,
          `domain '${dom.name}' did not shut down within ${timeoutSeconds} s (the guest may ignore ACPI); retry with force: true to power it off`,
        );
      }
      await client.rpc.domainDestroyFlags({ dom, flags: DomainDestroyFlags.DEFAULT });
      return { ...(await outcome(ctx, true)), forced: true };
    },

    'domain.destroy': async (ctx) => {
      const { client, dom } = ctx;
      if (!isActive(await stateOf(client, dom))) return outcome(ctx, false);
      await client.rpc.domainDestroyFlags({
        dom,
        flags: ctx.job.params.graceful ? DomainDestroyFlags.GRACEFUL : DomainDestroyFlags.DEFAULT,
      });
      return outcome(ctx, true);
    },

    'domain.reboot': async (ctx) => {
      const { client, dom } = ctx;
      if ((await stateOf(client, dom)) !== DomainState.RUNNING) {
        throw new AppError(ErrorCode.INVALID_STATE, `domain '${dom.name}' is not running`);
      }
      await client.rpc.domainReboot({ dom, flags: 0 });
      return outcome(ctx, true);
    },

    'domain.suspend': async (ctx) => {
      const { client, dom } = ctx;
      const state = await stateOf(client, dom);
      if (state === DomainState.PAUSED) return outcome(ctx, false);
      if (state !== DomainState.RUNNING) {
        throw new AppError(ErrorCode.INVALID_STATE, `domain '${dom.name}' is not running`);
      }
      await client.rpc.domainSuspend({ dom });
      return outcome(ctx, true);
    },

    'domain.resume': async (ctx) => {
      const { client, dom } = ctx;
      const state = await stateOf(client, dom);
      if (state === DomainState.RUNNING) return outcome(ctx, false);
      if (state !== DomainState.PAUSED) {
        throw new AppError(ErrorCode.INVALID_STATE, `domain '${dom.name}' is not paused`);
      }
      await client.rpc.domainResume({ dom });
      return outcome(ctx, true);
    },

    'domain.autostart': async (ctx) => {
      const { client, dom } = ctx;
      const enabled = ctx.job.params.enabled;
      const before = (await client.rpc.domainGetAutostart({ dom })).autostart === 1;
      if (before !== enabled)
        await client.rpc.domainSetAutostart({ dom, autostart: enabled ? 1 : 0 });
      return { autostart: enabled, changed: before !== enabled };
    },

    'domain.define': async ({ client, dom, job, host }) => {
      const { uuid, name } = job.target;
      // Where the images lead now, for the requester's role and scope (a job from
      // before jobs carried them: the least privileged, every disk of its XML).
      const paths =
        job.params.paths ??
        parseDomainXml(job.params.xml).disks.flatMap((d, i) =>
          d.chain[0]?.source.path
            ? [{ field: `disks.${i}.path`, path: d.chain[0].source.path }]
            : [],
        );
      await this.confinement.requireAllowed(client, host, jobAccess(job.access), paths);
      if (dom) {
        if (dom.name !== name) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a domain with UUID ${uuid} exists already, named '${dom.name}'`,
          );
        }
        return { uuid, name, changed: false };
      }
      const other = await findDomainByName(client, name);
      if (other) {
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `a domain named '${name}' exists already (UUID ${uuidString(other.uuid)})`,
        );
      }
      const defined = await client.rpc.domainDefineXmlFlags({
        xml: job.params.xml,
        flags: DomainDefineFlags.VALIDATE,
      });
      return { uuid: uuidString(defined.dom.uuid), name: defined.dom.name, changed: true };
    },

    'domain.undefine': async ({ client, dom, job }) => {
      const { uuid, name } = job.target;
      if (!dom || (await client.rpc.domainIsPersistent({ dom })).persistent !== 1) {
        return { uuid, name, changed: false }; // undefined already (an earlier attempt, or someone else)
      }
      const { state } = await client.rpc.domainGetState({ dom, flags: 0 });
      if (!isShutOff(state)) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${name}' was started since the request: stop it first (libvirt would leave it running as a transient domain)`,
        );
      }
      const { snapshotsMetadata, managedSave, nvram } = job.params;
      let flags =
        (snapshotsMetadata ? DomainUndefineFlags.SNAPSHOTS_METADATA : 0) |
        (managedSave ? DomainUndefineFlags.MANAGED_SAVE : 0);
      if (nvram) {
        flags |= DomainUndefineFlags.NVRAM;
      } else {
        // libvirt refuses a domain with NVRAM unless told to keep or delete it: keep it.
        const { xml } = await client.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE });
        if (path(parseXml(xml), 'os', 'nvram') !== null) flags |= DomainUndefineFlags.KEEP_NVRAM;
      }
      await client.rpc.domainUndefineFlags({ dom, flags });
      return { uuid, name, changed: true };
    },
  };
}
