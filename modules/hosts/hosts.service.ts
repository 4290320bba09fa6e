import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { requireAdmin, type Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { paginate, type Page } from '#src/common/pagination.js';
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
  ) {}

  async create(caller: Caller, input: CreateHostDto): Promise<HostModel> {
    requireAdmin(caller, 'register hosts');
    validateUri(input.uri);
    const record: HostRecord = {
      name: input.name,
      uri: input.uri,
      createdAt: new Date().toISOString(),
      createdBy: caller.id,
    };
    if (!(await this.registry.add(record))) {
      throw new AppError(
        ErrorCode.ALREADY_EXISTS,
        `a host named '${input.name}' is already registered`,
      );
    }
    return this.view(record, this.config.libvirtConnectTimeoutMs);
  }

  async list(limit: number, cursor: string | undefined): Promise<Page<HostModel>> {
    const page = paginate(await this.registry.list(), (h) => h.name, limit, cursor);
    return {
      items: await Promise.all(page.items.map((h) => this.view(h, LIST_FACTS_WAIT_MS))),
      nextCursor: page.nextCursor,
    };
  }

  async get(name: string): Promise<HostModel> {
    return this.view(await this.registry.get(name), this.config.libvirtConnectTimeoutMs);
  }

  async remove(caller: Caller, name: string): Promise<void> {
    requireAdmin(caller, 'remove hosts');
    if (!(await this.registry.remove(name))) {
      throw new AppError(ErrorCode.NOT_FOUND, `no host named '${name}' is registered`);
    }
    await Promise.all([this.connections.drop(name), this.events.drop(name)]);
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
