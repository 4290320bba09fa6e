/**
 * The gateway's event vocabulary: every type an event may have, declared
 * once. The publishers name these, the filters' wildcards expand over them,
 * and openapi/asyncapi.yaml is generated from the same list.
 */
export interface EventTypeDeclaration {
  readonly type: string;
  /** Where it comes from: a libvirt domain event, a job record, the host link, a webhook. */
  readonly source: 'domain' | 'block-job' | 'job' | 'host' | 'webhook' | 'gateway';
  readonly summary: string;
  /** For libvirt lifecycle events: libvirt's detail names (lower case), as `detail` carries them. */
  readonly details?: readonly string[];
}

const lifecycle = <N extends string>(name: N, summary: string, details: readonly string[]) => ({
  type: `domain.${name}` as const,
  source: 'domain' as const,
  summary,
  details,
});

export const EVENT_TYPES = [
  lifecycle('defined', 'A domain was defined, or its persistent definition changed.', [
    'added',
    'updated',
    'renamed',
    'from-snapshot',
  ]),
  lifecycle('undefined', 'A domain was undefined.', ['removed', 'renamed']),
  lifecycle('started', 'A domain started.', [
    'booted',
    'migrated',
    'restored',
    'from-snapshot',
    'wakeup',
    'recreated',
  ]),
  lifecycle('suspended', 'A domain was paused.', [
    'paused',
    'migrated',
    'ioerror',
    'watchdog',
    'restored',
    'from-snapshot',
    'api-error',
    'postcopy',
    'postcopy-failed',
  ]),
  lifecycle('resumed', 'A paused domain runs again.', [
    'unpaused',
    'migrated',
    'from-snapshot',
    'postcopy',
    'postcopy-failed',
  ]),
  lifecycle('stopped', 'A domain stopped running.', [
    'shutdown',
    'destroyed',
    'crashed',
    'migrated',
    'saved',
    'failed',
    'from-snapshot',
    'recreated',
  ]),
  lifecycle('shutdown', 'A domain is shutting down, or finished doing so.', [
    'finished',
    'guest',
    'host',
  ]),
  lifecycle('pmsuspended', 'The guest suspended itself (to memory or disk).', ['memory', 'disk']),
  lifecycle('crashed', 'The guest crashed.', ['panicked', 'crashloaded']),
  { type: 'domain.rebooted', source: 'domain', summary: 'The guest rebooted (or was reset).' },
  {
    type: 'domain.device-added',
    source: 'domain',
    summary: 'A device was attached to a running domain.',
  },
  {
    type: 'domain.device-removed',
    source: 'domain',
    summary: 'A device was detached from a running domain.',
  },
  {
    type: 'domain.device-removal-failed',
    source: 'domain',
    summary: 'The guest refused to release a device being detached.',
  },
  {
    type: 'domain.disk-changed',
    source: 'domain',
    summary: "A disk's medium changed (or was dropped because it went missing).",
  },
  {
    type: 'domain.tray-changed',
    source: 'domain',
    summary: "A removable disk's tray opened or closed.",
  },
  {
    type: 'domain.metadata-changed',
    source: 'domain',
    summary: "The domain's title, description or custom metadata changed.",
  },
  {
    type: 'domain.job-completed',
    source: 'domain',
    summary:
      'A domain-level job of libvirt (migration, save, dump) completed, with its statistics.',
  },
  { type: 'domain.watchdog', source: 'domain', summary: "The guest's watchdog fired." },
  {
    type: 'domain.io-error',
    source: 'domain',
    summary: 'A disk I/O error occurred (the action taken and the reason beside).',
  },
  {
    type: 'domain.control-error',
    source: 'domain',
    summary: "libvirt lost control of the domain's QEMU process.",
  },
  {
    type: 'domain.rtc-changed',
    source: 'domain',
    summary: "The guest changed its real-time clock's offset.",
  },
  {
    type: 'domain.pm-wakeup',
    source: 'domain',
    summary: 'A suspended guest woke up.',
  },
  {
    type: 'domain.agent-lifecycle',
    source: 'domain',
    summary: "The guest agent's channel connected or disconnected.",
  },
  {
    type: 'domain.block-threshold',
    source: 'domain',
    summary: 'Writes to a disk passed the threshold set on it.',
  },
  {
    type: 'domain.memory-failure',
    source: 'domain',
    summary: 'A hardware memory error reached the hypervisor or the guest.',
  },
  {
    type: 'block-job.ready',
    source: 'block-job',
    summary: 'A block commit or copy mirrors its disk: it can be pivoted.',
  },
  { type: 'block-job.completed', source: 'block-job', summary: 'A block job completed.' },
  { type: 'block-job.failed', source: 'block-job', summary: 'A block job failed.' },
  {
    type: 'block-job.canceled',
    source: 'block-job',
    summary: 'A block job was canceled (after a pivot of a copy, too, libvirt says completed).',
  },
  {
    type: 'job.state-changed',
    source: 'job',
    summary: "A gateway job's state changed (queued → running → ready → pivoting → completed …).",
  },
  {
    type: 'job.progress',
    source: 'job',
    summary: "A running job's progress, at most once per EVENTS_PROGRESS_INTERVAL_MS per job.",
  },
  {
    type: 'host.disconnected',
    source: 'host',
    summary:
      "The gateway lost the host's event connection: events may be missed until host.reconnected.",
  },
  {
    type: 'host.reconnected',
    source: 'host',
    summary:
      'The event connection is back; what changed meanwhile came just before, as reconciled events.',
  },
  {
    type: 'gateway.degraded',
    source: 'gateway',
    summary:
      "Redis lost the gateway's data (a restart without persistence, a flush): events before this one " +
      'may be missing, and until gateway.recovered the gateway restores its records and reconciles the hosts.',
  },
  {
    type: 'gateway.recovered',
    source: 'gateway',
    summary:
      "The gateway restored what Redis lost: its bootstrap records, its running jobs' records, and the hosts' block jobs (adopted where it had no record).",
  },
  {
    type: 'webhook.disabled',
    source: 'webhook',
    summary: 'A webhook was disabled: its receiver answered 410, or too many deliveries failed.',
  },
] as const satisfies readonly EventTypeDeclaration[];

export type EventType = (typeof EVENT_TYPES)[number]['type'];

export const EVENT_TYPE_NAMES: readonly EventType[] = EVENT_TYPES.map((d) => d.type);
const KNOWN = new Set<string>(EVENT_TYPE_NAMES);

export function isEventType(value: string): value is EventType {
  return KNOWN.has(value);
}
