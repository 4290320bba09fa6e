import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { DomainState } from '#src/libvirt/index.js';
import type { JobParams } from '#jobs/job-types.js';
import { HostConnections } from '#modules/hosts/host-connections.service.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import { JobsService, type Accepted } from '#modules/jobs/jobs.service.js';
import { uuidString } from './domain-views.js';
import { lookup } from './domains.service.js';
import {
  DOMAIN_ACTIONS,
  type DomainAction,
  type DomainActionDto,
} from './dto/domain-action.dto.js';

/** The options each action accepts. */
const OPTIONS: Record<DomainAction, readonly (keyof DomainActionDto)[]> = {
  start: ['paused'],
  shutdown: ['timeoutSeconds', 'force'],
  destroy: ['graceful'],
  reboot: [],
  suspend: [],
  resume: [],
  autostart: ['enabled'],
};

const ACTIVE = (s: number): boolean => s !== DomainState.SHUTOFF && s !== DomainState.NOSTATE;

/** What a state must be for an action to make sense, and the message when it is not. */
const REQUIRES: Partial<Record<DomainAction, [(state: number) => boolean, string]>> = {
  start: [(s) => !ACTIVE(s), 'is already running'],
  shutdown: [ACTIVE, 'is not running'],
  destroy: [ACTIVE, 'is not running'],
  reboot: [(s) => s === DomainState.RUNNING, 'is not running'],
  suspend: [(s) => s === DomainState.RUNNING, 'is not running'],
  resume: [(s) => s === DomainState.PAUSED, 'is not paused'],
};

/**
 * Domain lifecycle requests: checked against the domain's live state (an
 * action that cannot apply is refused at once, 409, rather than failing as a
 * job later), then handed to the worker as a job.
 */
@Injectable()
export class DomainActionsService {
  constructor(
    private readonly hosts: HostsService,
    private readonly connections: HostConnections,
    private readonly jobs: JobsService,
  ) {}

  async request(
    caller: Caller,
    hostName: string,
    ref: string,
    action: string,
    options: DomainActionDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    if (!(DOMAIN_ACTIONS as readonly string[]).includes(action)) {
      throw new AppError(ErrorCode.INVALID_ARGUMENT, `unknown action '${action}'`, {
        fields: [{ field: 'action', message: `must be one of ${DOMAIN_ACTIONS.join(', ')}` }],
      });
    }
    const act = action as DomainAction;
    const stray = Object.keys(options).filter(
      (k) =>
        options[k as keyof DomainActionDto] !== undefined &&
        !OPTIONS[act].includes(k as keyof DomainActionDto),
    );
    if (stray.length > 0) {
      throw new AppError(ErrorCode.INVALID_ARGUMENT, `${act} takes no ${stray.join(', ')}`, {
        fields: stray.map((field) => ({ field, message: `${act} takes no ${field}` })),
      });
    }
    if (act === 'autostart' && options.enabled === undefined) {
      throw new AppError(ErrorCode.INVALID_ARGUMENT, 'autostart needs enabled: true or false', {
        fields: [{ field: 'enabled', message: 'enabled is required for autostart' }],
      });
    }
    const host = await this.hosts.record(hostName);
    const { dom, state } = await this.connections.withClient(host, async (c) => {
      const d = await lookup(c, ref);
      return { dom: d, state: (await c.rpc.domainGetState({ dom: d, flags: 0 })).state };
    });
    const rule = REQUIRES[act];
    const precheck = async (): Promise<void> => {
      if (rule && !rule[0](state)) {
        throw new AppError(ErrorCode.INVALID_STATE, `domain '${dom.name}' ${rule[1]}`);
      }
    };
    const target = { host: host.name, uuid: uuidString(dom.uuid), name: dom.name };
    const request = { action: act, ...options };
    const params = paramsOf(act, options);
    return this.jobs.submit(
      caller,
      { type: `domain.${act}`, target, params, request, precheck } as never,
      idempotencyKey,
    );
  }
}

function paramsOf(action: DomainAction, o: DomainActionDto): JobParams[`domain.${DomainAction}`] {
  switch (action) {
    case 'start':
      return { paused: o.paused ?? false };
    case 'shutdown':
      return { timeoutSeconds: o.timeoutSeconds ?? 60, force: o.force ?? false };
    case 'destroy':
      return { graceful: o.graceful ?? false };
    case 'autostart':
      return { enabled: o.enabled! };
    default:
      return {};
  }
}
