import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { requireAdmin, type Caller } from '#src/common/auth/caller.js';
import {
  domainInScope,
  isUnscoped,
  poolInScope,
  requireNewDomainInScope,
} from '#src/common/auth/scope.js';
import { derivedUuid } from '#src/common/derived-uuid.js';
import { requireDomain } from '#src/common/domain-ref.js';
import { AppError, ErrorCode, invalidFields } from '#src/common/errors/app-error.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import {
  accessOf,
  mayUseAnyPath,
  PathConfinement,
  type PathField,
} from '#src/hosts/path-confinement.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import {
  DomainState,
  findDomainByName,
  findDomainByUuid,
  isShutOff,
  uuidString,
} from '#src/libvirt/index.js';
import {
  assignTargets,
  buildDomainDefinitionXml,
  type InterfaceDefinition,
} from '#src/xml/define-domain.js';
import { appendXml, child, parseXml, serializeXml, text, XmlParseError } from '#src/xml/xml.js';
import { JobSubmitter, type Accepted } from '#jobs/job-submitter.js';
import type { JobParams } from '#jobs/job-types.js';
import { checkSources, pickGuest, requireOfferedNetworks, resolveDisk } from './domain-spec.js';
import { domainUsing } from './image-users.js';
import {
  ACTION_OPTIONS,
  DOMAIN_ACTIONS,
  type DomainAction,
  type DomainActionDto,
} from './dto/domain-action.dto.js';
import {
  DOMAIN_NAME_PATTERN,
  DOMAIN_NAME_RULE,
  type DefineDomainDto,
  type UndefineDomainQueryDto,
} from './dto/define-domain.dto.js';
const ACTIVE = (s: number): boolean => !isShutOff(s);

/** What a state must be for an action to make sense, and the message when it is not. */
const REQUIRES: Partial<Record<DomainAction, [(state: number) => boolean, string]>> = {
  start: [(s) => !ACTIVE(s), 'is already running'],
  shutdown: [ACTIVE, 'is not running'],
  destroy: [ACTIVE, 'is not running'],
  reboot: [(s) => s === DomainState.RUNNING, 'is not running'],
  suspend: [(s) => s === DomainState.RUNNING, 'is not running'],
  resume: [(s) => s === DomainState.PAUSED, 'is not paused'],
};

const SPEC_FIELDS = [
  'name',
  'uuid',
  'type',
  'memoryMiB',
  'vcpus',
  'arch',
  'machine',
  'description',
  'disks',
  'interfaces',
] as const;

/**
 * The changes to domains, each a job: lifecycle actions (checked against the
 * domain's live state: an action that cannot apply is refused at once, 409,
 * rather than failing as a job later), definitions from a spec or raw XML (a
 * name or UUID already in use is 409 at once; every new domain gets its UUID
 * here, so a re-run of the job recognises the domain an earlier attempt
 * defined) and undefinitions. The worker side is DomainsProcessor.
 */
@Injectable()
export class DomainOperationsService {
  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly jobs: JobSubmitter,
    private readonly confinement: PathConfinement,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async action(
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
        !ACTION_OPTIONS[act].includes(k as keyof DomainActionDto),
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
    const host = await this.registry.getFor(caller, hostName);
    const { dom, state } = await this.connections.withClient(host, async (c) => {
      const d = await requireDomain(c, ref, { caller, host: host.name });
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

  async define(
    caller: Caller,
    hostName: string,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    // A name outside the scope is refused before the spec is looked at (raw XML: once parsed).
    if (input.name !== undefined) requireNewDomainInScope(caller, host.name, input.name);
    const { name, uuid, xml, source, paths } =
      input.xml !== undefined
        ? { ...this.fromXml(caller, host, input, idempotencyKey), paths: [] }
        : await this.fromSpec(caller, host, input, idempotencyKey);
    requireNewDomainInScope(caller, host.name, name);
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        await this.confinement.requireAllowed(c, host, accessOf(caller), paths);
        // A scoped token may not take over the disk of a domain it cannot see.
        if (!isUnscoped(caller) && paths.length > 0) {
          const user = await domainUsing(
            c,
            paths.map((p) => p.path),
          );
          if (user && !domainInScope(caller, host.name, user.domain)) {
            throw new AppError(
              ErrorCode.CONFLICT,
              "a disk image of this domain is in use by a domain outside this token's scope",
            );
          }
        }
        const byName = await findDomainByName(c, name);
        if (byName) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a domain named '${name}' already exists on host '${host.name}' (UUID ${uuidString(byName.uuid)})`,
          );
        }
        const byUuid = await findDomainByUuid(c, uuid);
        if (byUuid) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            domainInScope(caller, host.name, byUuid.name)
              ? `a domain with UUID ${uuid} already exists on host '${host.name}' ('${byUuid.name}')`
              : `a domain with UUID ${uuid} already exists on host '${host.name}'`,
          );
        }
      });
    return this.jobs.submit(
      caller,
      {
        type: 'domain.define',
        target: { host: host.name, uuid, name },
        params: { xml, source, paths },
        request: { ...input },
        precheck,
      },
      idempotencyKey,
    );
  }

  /**
   * Undefines a domain: it must be persistent and shut off (libvirt would
   * turn a running domain transient, leaving it to vanish at its next stop:
   * the gateway refuses that instead), and have no snapshot metadata unless
   * `snapshotsMetadata` says to remove it too.
   */
  async undefine(
    caller: Caller,
    hostName: string,
    ref: string,
    options: UndefineDomainQueryDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    const request = { domain: ref, ...options };
    // A retry of an undefine that already ran finds no domain: it gets its job back.
    const looked = await this.jobs.findOrReplay(
      caller,
      idempotencyKey,
      { type: 'domain.undefine', host: host.name, request },
      () =>
        this.connections.withClient(host, async (c) => {
          const dom = await requireDomain(c, ref, { caller, host: host.name });
          const [{ state }, { persistent }, { snapshots }] = await Promise.all([
            c.rpc.domainGetState({ dom, flags: 0 }),
            c.rpc.domainIsPersistent({ dom }),
            c.rpc.domainListAllSnapshots({ dom, needResults: 1, flags: 0 }),
          ]);
          return {
            uuid: uuidString(dom.uuid),
            name: dom.name,
            state,
            persistent: persistent === 1,
            snaps: snapshots.length,
          };
        }),
    );
    if ('replay' in looked) return looked.replay;
    const facts = looked.found;
    const precheck = async (): Promise<void> => {
      if (!facts.persistent) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' is transient: it has no definition to remove (destroy it to make it go away)`,
        );
      }
      if (!isShutOff(facts.state)) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' is not shut off: stop it first (libvirt would leave it running as a transient domain)`,
        );
      }
      if (facts.snaps > 0 && options.snapshotsMetadata !== true) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' has ${facts.snaps} snapshot(s) in libvirt's metadata: pass snapshotsMetadata=true to remove it too (the image files stay)`,
        );
      }
    };
    return this.jobs.submit(
      caller,
      {
        type: 'domain.undefine',
        target: { host: host.name, uuid: facts.uuid, name: facts.name },
        params: {
          snapshotsMetadata: options.snapshotsMetadata ?? false,
          managedSave: options.managedSave ?? false,
          nvram: options.nvram ?? false,
        },
        request,
        precheck,
      },
      idempotencyKey,
    );
  }

  /** Raw XML (admins): well-formed, a `<domain>` with a name; a UUID added when it has none. */
  private fromXml(
    caller: Caller,
    host: HostRecord,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): { name: string; uuid: string; xml: string; source: 'xml' } {
    requireAdmin(caller, 'define domains from raw XML');
    const stray = SPEC_FIELDS.filter((f) => input[f] !== undefined);
    if (stray.length > 0) {
      throw invalidFields(
        stray.map((field) => ({ field, message: `${field} cannot be given with xml` })),
      );
    }
    let root;
    try {
      root = parseXml(input.xml!);
    } catch (err) {
      if (err instanceof XmlParseError)
        throw invalidFields([{ field: 'xml', message: err.message }]);
      throw err;
    }
    if (root.tagName !== 'domain') {
      throw invalidFields([
        { field: 'xml', message: `expected a <domain> document, got <${root.tagName}>` },
      ]);
    }
    const name = text(child(root, 'name'));
    if (!name) throw invalidFields([{ field: 'xml', message: 'the domain has no <name>' }]);
    const uuidText = text(child(root, 'uuid'));
    if (uuidText !== null) {
      const hex = uuidText.replaceAll('-', '').toLowerCase();
      if (!/^[0-9a-f]{32}$/.test(hex)) {
        throw invalidFields([{ field: 'xml', message: `<uuid> '${uuidText}' is not a UUID` }]);
      }
      return { name, uuid: uuidString(Buffer.from(hex, 'hex')), xml: input.xml!, source: 'xml' };
    }
    const uuid = newUuid(caller, host, name, idempotencyKey);
    appendXml(root, { name: 'uuid', text: uuid });
    return { name, uuid, xml: serializeXml(root), source: 'xml' };
  }

  /** The structured spec, resolved against the host: capabilities, volumes, targets. */
  private async fromSpec(
    caller: Caller,
    host: HostRecord,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): Promise<{ name: string; uuid: string; xml: string; source: 'spec'; paths: PathField[] }> {
    const missing = (['name', 'memoryMiB', 'vcpus'] as const).filter((f) => input[f] === undefined);
    if (missing.length > 0) {
      throw invalidFields(
        missing.map((field) => ({
          field,
          message: `${field} is required (or give the domain as xml)`,
        })),
      );
    }
    const name = input.name!;
    if (!DOMAIN_NAME_PATTERN.test(name)) {
      throw invalidFields([{ field: 'name', message: `name ${DOMAIN_NAME_RULE}` }]);
    }
    const specDisks = input.disks ?? [];
    const specNics = input.interfaces ?? [];
    this.requireWithinCaps(input);
    checkSources(specDisks, specNics);
    // A pool outside the caller's scope is one it cannot know of.
    specDisks.forEach((d, i) => {
      if (d.pool !== undefined && !poolInScope(caller, host.name, d.pool)) {
        throw invalidFields([
          {
            field: `disks.${i}.pool`,
            message: `no storage pool '${d.pool}' on host '${host.name}'`,
          },
        ]);
      }
    });
    const caps = (await this.connections.facts(host)).capabilities;
    const guest = pickGuest(host, caps.guests, caps.hostArch, input.arch);
    const type = input.type ?? (guest.domainTypes.includes('kvm') ? 'kvm' : 'qemu');
    if (!guest.domainTypes.includes(type)) {
      throw invalidFields([
        {
          field: 'type',
          message: `host '${host.name}' cannot run ${type} domains for ${guest.arch} (it offers: ${guest.domainTypes.join(', ') || 'none'})`,
        },
      ]);
    }
    const machine = input.machine ?? guest.machines[0];
    if (machine === undefined || !guest.machines.includes(machine)) {
      throw invalidFields([
        {
          field: 'machine',
          message: `host '${host.name}' has no machine type '${machine ?? ''}' for ${guest.arch} (see its capabilities)`,
        },
      ]);
    }
    const buses = specDisks.map((d) => d.bus ?? (d.device === 'cdrom' ? 'sata' : 'virtio'));
    const explicit = specDisks.map((d) => d.target).filter((t): t is string => !!t);
    const dup = explicit.find((t, i) => explicit.indexOf(t) !== i);
    if (dup !== undefined) {
      const i = specDisks.findIndex((d, j) => d.target === dup && explicit.indexOf(dup) !== j);
      throw invalidFields([
        { field: `disks.${i}.target`, message: `target '${dup}' is given twice` },
      ]);
    }
    const targets = assignTargets(specDisks.map((d, i) => ({ target: d.target, bus: buses[i]! })));
    const disks = await this.connections.withClient(host, async (c) => {
      // Admins may use any network or bridge, as in raw XML; others only what the host offers.
      if (!mayUseAnyPath(accessOf(caller))) await requireOfferedNetworks(c, host, specNics);
      return Promise.all(
        specDisks.map((d, i) => resolveDisk(c, host, d, i, targets[i]!, buses[i]!)),
      );
    });
    // Every image the domain would open, as given or as its volume has it.
    const paths = disks.map((d, i) => ({
      field: specDisks[i]!.path !== undefined ? `disks.${i}.path` : `disks.${i}.volume`,
      path: specDisks[i]!.path ?? d.path,
    }));
    const interfaces: InterfaceDefinition[] = specNics.map((n) => ({
      type: n.network !== undefined ? 'network' : 'bridge',
      source: (n.network ?? n.bridge)!,
      model: n.model ?? 'virtio',
      mac: n.mac?.toLowerCase() ?? null,
    }));
    const uuid = input.uuid?.toLowerCase() ?? newUuid(caller, host, name, idempotencyKey);
    const xml = buildDomainDefinitionXml({
      type,
      name,
      uuid,
      description: input.description ?? null,
      memoryMiB: input.memoryMiB!,
      vcpus: input.vcpus!,
      arch: guest.arch,
      machine,
      emulator: guest.emulator,
      disks,
      interfaces,
    });
    return { name, uuid, xml, source: 'spec', paths };
  }

  /** The configured caps on a spec's sizes and counts (VIRTGATE_MAX_*), each naming its field. */
  private requireWithinCaps(input: DefineDomainDto): void {
    const c = this.config;
    const fields = [
      input.memoryMiB !== undefined && input.memoryMiB > c.maxMemoryMiB
        ? { field: 'memoryMiB', message: `memoryMiB must be at most ${c.maxMemoryMiB} here` }
        : null,
      input.vcpus !== undefined && input.vcpus > c.maxVcpus
        ? { field: 'vcpus', message: `vcpus must be at most ${c.maxVcpus} here` }
        : null,
      (input.disks?.length ?? 0) > c.maxDisks
        ? { field: 'disks', message: `a domain may have at most ${c.maxDisks} disks here` }
        : null,
    ].filter((f) => f !== null);
    if (fields.length > 0) throw invalidFields(fields);
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

/**
 * A new domain's UUID. With an Idempotency-Key it is derived from the key (and
 * caller, host, name), so a retried request is the same request and gets its
 * job back; otherwise a random one.
 */
function newUuid(
  caller: Caller,
  host: HostRecord,
  name: string,
  idempotencyKey: string | undefined,
): string {
  if (idempotencyKey === undefined) return randomUUID();
  return derivedUuid(['domain.define', caller.id, idempotencyKey, host.name, name]);
}
