import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AUDIT_LOG, type AuditLog } from '#src/common/audit/audit-log.js';
import { requireUnscopedAdmin, type Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { hostInScope, isUnscoped } from '#src/common/auth/scope.js';
import { paginate, type Page, type Scoped } from '#src/common/pagination.js';
import { redactText } from '#src/common/redact.js';
import { withTimeout } from '#src/common/with-timeout.js';
import { formatVersion, parseLibvirtUri, redactUri, UriError } from '#src/libvirt/index.js';
import { HostConnections, type HostFacts } from '#src/hosts/host-connections.js';
import { HostEvents } from '#src/hosts/host-events.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import type { CreateHostDto } from './dto/create-host.dto.js';
import type { HostModel } from './models/host.model.js';

/** How long a host listing waits for a host's facts before showing it without them. */
const LIST_FACTS_WAIT_MS = 1000;

/** Registering, listing, showing and unregistering hosts (the registry itself is src/hosts/). */
@Injectable()
export class HostsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly events: HostEvents,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  async create(caller: Caller, input: CreateHostDto): Promise<HostModel> {
    requireUnscopedAdmin(caller, 'register hosts');
    const audited = { action: 'host.register', name: input.name, uri: input.uri } as const;
    try {
      validateUri(input.uri);
    } catch (err) {
      await this.auditChange(caller, { ...audited, uri: undefined }, err); // not a URI: not kept
      throw err;
    }
    const record: HostRecord = {
      name: input.name,
      uri: input.uri,
      createdAt: new Date().toISOString(),
      createdBy: caller.id,
    };
    if (!(await this.registry.add(record))) {
      const err = new AppError(
        ErrorCode.ALREADY_EXISTS,
        `a host named '${input.name}' is already registered`,
      );
      await this.auditChange(caller, audited, err);
      throw err;
    }
    await this.auditChange(caller, audited, null);
    return this.view(record, this.config.libvirtConnectTimeoutMs);
  }

  async list(
    caller: Caller,
    limit: number,
    cursor: string | undefined,
  ): Promise<Scoped<Page<HostModel>>> {
    const visible = (await this.registry.list()).filter((h) => hostInScope(caller, h.name));
    const page = paginate(visible, (h) => h.name, limit, cursor);
    return {
      items: await Promise.all(page.items.map((h) => this.view(h, LIST_FACTS_WAIT_MS))),
      nextCursor: page.nextCursor,
      scopeFiltered: !isUnscoped(caller),
    };
  }

  async get(caller: Caller, name: string): Promise<HostModel> {
    return this.view(await this.registry.getFor(caller, name), this.config.libvirtConnectTimeoutMs);
  }

  async remove(caller: Caller, name: string): Promise<void> {
    requireUnscopedAdmin(caller, 'remove hosts');
    const audited = { action: 'host.unregister', name } as const;
    if (!(await this.registry.remove(name))) {
      const err = new AppError(ErrorCode.NOT_FOUND, `no host named '${name}' is registered`);
      await this.auditChange(caller, audited, err);
      throw err;
    }
    await this.auditChange(caller, audited, null);
    // At once, whatever the host does: its connections are dropped, their calls rejected.
    this.connections.drop(name);
    this.events.drop(name);
  }

  /** The audit entry of a registration or removal; `err` when it was refused. */
  private async auditChange(
    caller: Caller,
    change: { action: 'host.register' | 'host.unregister'; name: string; uri?: string },
    err: unknown,
  ): Promise<void> {
    await this.audit.record({
      actor: { id: caller.id, role: caller.role },
      action: change.action,
      target: change.name,
      host: change.name,
      requestId: caller.requestId,
      result: err === null ? 'accepted' : 'refused',
      code: err === null ? null : err instanceof AppError ? err.code : 'INTERNAL',
      // The URI as shown to callers: credentials in it are redacted.
      ...(change.uri === undefined ? {} : { detail: { uri: safeUri(change.uri) } }),
    });
  }

  /**
   * The host as the API shows it. Live facts are included when the host answers
   * within `waitMs`; an unreachable host is still shown, with its connection state.
   */
  private async view(record: HostRecord, waitMs: number): Promise<HostModel> {
    const facts = await withTimeout(
      this.connections.facts(record),
      waitMs,
      'facts not ready',
    ).catch(() => null);
    const status = this.connections.status(record.name);
    return {
      name: record.name,
      uri: redactUri(record.uri),
      createdAt: record.createdAt,
      connection: {
        state: facts === null && status.state === 'connected' ? 'connecting' : status.state,
        lastError: status.lastError === null ? null : redactText(status.lastError),
        since: status.since.toISOString(),
        retryAt: status.retryAt === null ? null : status.retryAt.toISOString(),
      },
      ...factsView(facts),
    };
  }
}

function factsView(
  facts: HostFacts | null,
): Pick<HostModel, 'hostname' | 'libvirtVersion' | 'hypervisor' | 'node' | 'capabilities'> {
  if (!facts)
    return {
      hostname: null,
      libvirtVersion: null,
      hypervisor: null,
      node: null,
      capabilities: null,
    };
  const { node } = facts;
  return {
    hostname: facts.hostname,
    libvirtVersion: formatVersion(facts.libVersion),
    hypervisor: { type: facts.hypervisorType, version: formatVersion(facts.hypervisorVersion) },
    node: {
      cpuModel: node.model,
      cpus: node.cpus,
      mhz: node.mhz,
      numaNodes: node.nodes,
      sockets: node.sockets,
      coresPerSocket: node.cores,
      threadsPerCore: node.threads,
      memoryBytes: Number(node.memory) * 1024,
    },
    capabilities: facts.capabilities,
  };
}

function validateUri(uri: string): void {
  let transport: string;
  try {
    transport = parseLibvirtUri(uri).transport;
  } catch (err) {
    if (!(err instanceof UriError)) throw err;
    throw new AppError(ErrorCode.INVALID_ARGUMENT, err.message, {
      fields: [{ field: 'uri', message: err.message }],
    });
  }
  if (transport === 'tls') {
    const message = 'the tls transport is not supported yet: use +tcp, +unix or a local URI';
    throw new AppError(ErrorCode.INVALID_ARGUMENT, message, {
      fields: [{ field: 'uri', message }],
    });
  }
}

/** A URI fit for the audit: its password redacted and its query (which may hold credentials) left out. */
function safeUri(uri: string): string {
  return redactUri(uri).split('?')[0] ?? '';
}
