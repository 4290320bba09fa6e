import { Injectable } from '@nestjs/common';
import {
  DomainCreateFlags,
  DomainDestroyFlags,
  DomainState,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { JobContext, QueueProcessor } from '../processor.js';

const STATE_NAMES = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
];

async function stateOf(client: LibvirtClient, dom: RemoteDomain): Promise<number> {
  return (await client.rpc.domainGetState({ dom, flags: 0 })).state;
}

/** The result of a lifecycle job: the state libvirt reports once it is done. */
async function outcome(
  { client, dom }: Pick<JobContext<never>, 'client' | 'dom'>,
  changed: boolean,
): Promise<Record<string, unknown>> {
  return { state: STATE_NAMES[await stateOf(client, dom)] ?? 'nostate', changed };
}

const isActive = (s: number): boolean => s !== DomainState.SHUTOFF && s !== DomainState.NOSTATE;

/**
 * Domain lifecycle. Each handler first looks at the domain's state, so a job
 * that a crashed worker left half done is finished, not applied twice
 * (starting a running domain is a success with `changed: false`).
 */
@Injectable()
export class DomainOpsProcessor implements QueueProcessor<'domain-ops'> {
  readonly queue = 'domain-ops' as const;
  readonly concurrency = 8;

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
  };
}
