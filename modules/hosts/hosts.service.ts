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
import {
  formatVersion,
  LibvirtClient,
  parseLibvirtUri,
  redactUri,
  UriError,
} from '#src/libvirt/index.js';
import { HostConnections, type HostFacts } from '#src/hosts/host-connections.js';
import { HostEvents } from '#src/hosts/host-events.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import {
  CredentialError,
  HostCredentialStore,
  type HostCredentialsInput,
  type StoredHostCredentials,
} from '#src/hosts/host-credentials.js';
import type { CreateHostDto, UpdateHostDto } from './dto/create-host.dto.js';
import type { HostCredentialsDto } from './dto/host-credentials.dto.js';
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
    private readonly credentials: HostCredentialStore,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  async create(caller: Caller, input: CreateHostDto): Promise<HostModel> {
    requireUnscopedAdmin(caller, 'register hosts');
    const audited = { action: 'host.register', name: input.name, uri: input.uri } as const;
    let record: HostRecord;
    try {
      validateUri(input.uri);
      record = {
        name: input.name,
        uri: input.uri,
        createdAt: new Date().toISOString(),
        createdBy: caller.id,
      };
      const given = compactCredentials(input.credentials);
      if (given) {
        const pinned = given.ssh?.trustOnFirstUse ? await this.firstUse(record, given) : given;
        record.credentials = await this.sealed(record, pinned);
      } else {
        await this.checkUsable(record);
      }
    } catch (err) {
      // A URI that does not parse is not kept in the audit.
      const keep = err instanceof AppError && fieldOf(err) === 'uri' ? { uri: undefined } : {};
      await this.auditChange(caller, { ...audited, ...keep }, err);
      throw err;
    }
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

  /**
   * Changes a host's URI or credentials. New connections use them at once, in
   * every process (each reads the record when it connects); a new URI drops
   * the connections to the old one.
   */
  async update(caller: Caller, name: string, input: UpdateHostDto): Promise<HostModel> {
    requireUnscopedAdmin(caller, 'change hosts');
    const audited = { action: 'host.update', name, uri: input.uri } as const;
    try {
      const current = await this.registry.get(name);
      const remove = input.removeCredentials === true;
      if (input.uri === undefined && input.credentials === undefined && !remove) {
        throw credentialField('body', 'give uri, credentials or removeCredentials');
      }
      if (remove && input.credentials !== undefined) {
        throw credentialField(
          'removeCredentials',
          'give credentials or removeCredentials, not both',
        );
      }
      if (input.uri !== undefined) validateUri(input.uri);
      const next: HostRecord = {
        ...current,
        uri: input.uri ?? current.uri,
        updatedAt: new Date().toISOString(),
        updatedBy: caller.id,
      };
      if (remove) {
        delete next.credentials;
      } else if (input.credentials !== undefined) {
        const given = compactCredentials(input.credentials);
        if (!given)
          throw credentialField(
            'credentials',
            'give tls or ssh credentials, or null to remove them',
          );
        if (given.ssh?.trustOnFirstUse) {
          throw credentialField(
            'credentials.ssh.trustOnFirstUse',
            "trust on first use is for a host's registration only: give the host key (hostKeyFingerprints or knownHosts)",
          );
        }
        next.credentials = await this.sealed(next, given);
      } else if (current.credentials && next.uri !== current.uri) {
        // The same credentials for a new URI: checked again, sealed again (a new version).
        const kept = this.credentials.open(current);
        next.credentials = kept ? await this.sealed(next, kept) : undefined;
        if (!next.credentials) delete next.credentials;
      }
      if (!next.credentials) await this.checkUsable(next);
      if (!(await this.registry.replace(next))) {
        throw new AppError(ErrorCode.NOT_FOUND, `no host named '${name}' is registered`);
      }
      await this.auditChange(caller, audited, null);
      if (next.uri !== current.uri) {
        this.connections.drop(name, `host '${name}' has a new URI`);
        this.events.drop(name);
      }
      return this.view(next, this.config.libvirtConnectTimeoutMs);
    } catch (err) {
      const keep = err instanceof AppError && fieldOf(err) === 'uri' ? { uri: undefined } : {};
      await this.auditChange(caller, { ...audited, ...keep }, err);
      throw err;
    }
  }

  /** Credentials sealed for `record`, or a 4xx naming the field that does not hold. */
  private async sealed(
    record: HostRecord,
    input: HostCredentialsInput,
  ): Promise<StoredHostCredentials> {
    try {
      return await this.credentials.seal(record.name, record.uri, input);
    } catch (err) {
      throw asFieldError(err);
    }
  }

  /** A TLS or SSH host without registered credentials: what its URI and the defaults give must do. */
  private async checkUsable(record: HostRecord): Promise<void> {
    try {
      await this.credentials.credentialsFor(record);
    } catch (err) {
      throw asFieldError(err);
    }
  }

  /**
   * Trust on first use, asked for by an admin at registration: connects once,
   * accepting the host key it meets, and gives back the credentials with that
   * key pinned (the next connection refuses any other). The host must answer now.
   */
  private async firstUse(
    record: HostRecord,
    input: HostCredentialsInput,
  ): Promise<HostCredentialsInput> {
    const ssh = input.ssh!;
    if (ssh.hostKeyFingerprints?.length || ssh.knownHosts || ssh.knownHostsFile) {
      throw credentialField(
        'credentials.ssh.trustOnFirstUse',
        'trust on first use is for a host whose key is not given: drop trustOnFirstUse or the host keys',
      );
    }
    // Checked (and sealed) once before the connection: the key and the URI hold.
    const probe = await this.sealed(record, input);
    const credentials = await this.credentials.credentialsFor({ ...record, credentials: probe });
    let met: string | null = null;
    try {
      const client = await LibvirtClient.connect(record.uri, {
        readOnly: true,
        connectTimeoutMs: this.config.libvirtConnectTimeoutMs,
        callTimeoutMs: this.config.libvirtCallTimeoutMs,
        keepalive: false,
        credentials: {
          ssh: {
            ...credentials.ssh,
            trustOnFirstUse: true,
            onHostKey: (fingerprint) => (met = fingerprint),
          },
        },
      });
      await client.close();
    } catch (err) {
      if (met === null) {
        throw new AppError(
          ErrorCode.HOST_UNREACHABLE,
          `trust on first use needs the host to answer at registration: ${redactText((err as Error).message)}`,
        );
      }
      // The key was met (and is pinned); the daemon behind it is checked by the host view.
    }
    if (met === null) {
      throw new AppError(ErrorCode.HOST_UNREACHABLE, 'the host showed no host key');
    }
    const { trustOnFirstUse: _asked, ...rest } = ssh;
    void _asked;
    return { ...input, ssh: { ...rest, hostKeyFingerprints: [met] } };
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
    change: {
      action: 'host.register' | 'host.unregister' | 'host.update';
      name: string;
      uri?: string;
    },
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
    const credentials = await this.credentials.describe(record);
    return {
      name: record.name,
      uri: redactUri(record.uri),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt ?? null,
      credentials,
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
  try {
    parseLibvirtUri(uri);
  } catch (err) {
    if (!(err instanceof UriError)) throw err;
    throw new AppError(ErrorCode.INVALID_ARGUMENT, err.message, {
      fields: [{ field: 'uri', message: err.message }],
    });
  }
}

function credentialField(field: string, message: string): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, message, { fields: [{ field, message }] });
}

/** A credential that does not hold, as a 400 naming its field; anything else as it is. */
function asFieldError(err: unknown): unknown {
  if (err instanceof CredentialError) return credentialField(err.field, err.message);
  if (err instanceof UriError) return credentialField('uri', err.message);
  return err;
}

function fieldOf(err: AppError): string | undefined {
  return err.fields[0]?.field;
}

/** The credentials given, without the nulls GraphQL sends for fields left out; null when empty. */
function compactCredentials(
  input: HostCredentialsDto | null | undefined,
): HostCredentialsInput | null {
  if (!input) return null;
  const compact = <T extends object>(o: T | null | undefined): T | undefined => {
    if (!o) return undefined;
    const out = Object.fromEntries(
      Object.entries(o).filter(([, v]) => v !== null && v !== undefined),
    );
    return Object.keys(out).length === 0 ? undefined : (out as T);
  };
  const tls = compact(input.tls);
  const ssh = compact(input.ssh);
  if (!tls && !ssh) return null;
  return { ...(tls ? { tls } : {}), ...(ssh ? { ssh } : {}) };
}

/** A URI fit for the audit: its password redacted and its query (which may hold credentials) left out. */
function safeUri(uri: string): string {
  return redactUri(uri).split('?')[0] ?? '';
}
