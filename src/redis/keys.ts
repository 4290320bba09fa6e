/**
 * Every Redis key the gateway writes, in one place. All start with the
 * configured prefix (VIRTGATE_REDIS_PREFIX), so one Redis can hold several
 * gateways (and each test file its own prefix).
 */
export interface RedisKeys {
  readonly prefix: string;
  /** HASH: one API token's record, keyed by the token's sha256 (hex); the token itself is never stored. */
  token(tokenSha256: string): string;
  /** STRING: sha256 of the current admin token; its presence means an admin token exists. */
  readonly adminTokenHash: string;
  /** STRING: the sha256 of the token with this id (made with POST /v1/tokens). */
  tokenId(id: string): string;
  /** ZSET: the ids of the tokens made with POST /v1/tokens, scored by creation time (ms). */
  readonly tokens: string;
  /** HASH: the registered libvirt hosts, field = host name, value = JSON HostRecord. */
  readonly hosts: string;
  /** HASH: one job's record, each field JSON-encoded (jobs/job-store.ts). */
  job(id: string): string;
  /** ZSET: every job id, scored by creation time (ms), for listings. */
  readonly jobsByCreation: string;
  /**
   * ZSET: the ids of the jobs with one value of a listing filter (state, host,
   * type, domain: a job is under both its domain's name and its UUID), scored
   * by creation time (ms), so a filtered listing reads only what matches.
   */
  jobsBy(filter: 'state' | 'host' | 'type' | 'domain', value: string): string;
  /** ZSET: finished job ids, scored by when they finished (ms): what retention prunes. */
  readonly jobsFinished: string;
  /** STRING: held (with a TTL) by the process pruning finished jobs, so one does at a time. */
  readonly jobsPruneLock: string;
  /** CHANNEL: a job id is published here whenever its record changes. */
  readonly jobUpdates: string;
  /** CHANNEL: a job id is published here when its worker has a request to act on (cancel, pivot). */
  readonly jobSignals: string;
  /** STRING: the job an Idempotency-Key of a caller created, with the request's hash (24 h). */
  idempotency(callerId: string, key: string): string;
  /**
   * STRING: the gateway's block job that holds a disk (`{jobId, at}` JSON), so a
   * second one is refused at once; a holder whose record is final no longer holds it.
   */
  diskBlockJob(host: string, domainUuid: string, disk: string): string;
  /** HASH: a block job's bookkeeping beyond its record: how far its start got, a pivot asked for. */
  blockJob(id: string): string;
  /** STRING (with a TTL): held by the worker reconciling a host's block jobs with libvirt, one at a time. */
  blockJobReconcileLock(host: string): string;
  /** STREAM: the audit trail, one entry per recorded event, trimmed by age (modules/audit). */
  readonly auditEvents: string;
  /** STRING: held (with a TTL) while a denied-auth entry for this address was written this window. */
  auditDeniedGate(address: string): string;
  /** STRING: denied-auth requests of this address folded into the next entry (not written one by one). */
  auditDeniedFolded(address: string): string;
  /**
   * HASH (with a TTL): a docs sign-in session, keyed by the sha256 (hex) of its
   * cookie's random id: the token's id and the token sealed with a key derived
   * from that id, which is not stored (src/openapi/docs-session.ts).
   */
  docsSession(idSha256: string): string;
  /**
   * STRING: a request counter of one rate limit (`token` by the token's sha256,
   * `address`, `auth-failures` by client address) for its current window; it
   * expires with the window.
   */
  rateLimit(kind: 'token' | 'address' | 'auth-failures', id: string): string;
  /** ZSET: the ids of a caller's jobs not yet finished, scored by creation time (ms): its quota. */
  activeJobs(callerId: string): string;
  /** STREAM: the event stream (src/events/event-stream.ts): one entry per event, its id the cursor. */
  readonly events: string;
  /** STRING: the id of the newest event trimmed from the stream (a cursor before it has expired). */
  readonly eventsTrimmedThrough: string;
  /** STRING (with a TTL): the worker holding a host's event registration (its lease). */
  eventsLease(host: string): string;
  /** STRING: `up` or `down`: the state of a host's event link as last announced. */
  eventsHostLink(host: string): string;
  /** HASH: a host's domains as last announced (field = UUID, value = JSON {name, state}), for reconciliation. */
  eventsDomains(host: string): string;
  /** STRING (with a TTL): set when a job's progress event was sent, so the next waits (a rate bound). */
  jobProgressGate(id: string): string;
  /** STRING (with a TTL): the gateway's latest block job on a disk, for correlating libvirt's events after it ended. */
  diskLastBlockJob(host: string, domainUuid: string, disk: string): string;
  /**
   * HASH: a webhook's record (modules/webhooks): its URL, filter, state, and
   * its signing secrets sealed with VIRTGATE_SECRETS_KEY (never in clear).
   */
  webhook(id: string): string;
  /** ZSET: every webhook id, scored by creation time (ms). */
  readonly webhooks: string;
  /** STRING: a counter raised by every webhook change, so dispatchers know to reload them. */
  readonly webhooksVersion: string;
  /** STREAM: a webhook's delivery log, one entry per attempt, trimmed to WEBHOOK_DELIVERY_LOG_SIZE. */
  webhookDeliveries(id: string): string;
  /** STRING (with a TTL): the callbackUrl a job was requested with, delivered to when it ends. */
  jobCallback(jobId: string): string;
  /**
   * STRING: the gateway's marker, a random epoch written at first boot: gone
   * means Redis lost the gateway's data (src/redis/redis-recovery.ts).
   */
  readonly marker: string;
  /** STRING (with a TTL): set while the gateway recovers from a loss of its data (it is `degraded`). */
  readonly recovering: string;
  /** STRING (with a TTL): the worker running this job, renewed while it runs (an orphan has none). */
  jobHeld(id: string): string;
  /** STRING (with a TTL): held by the process looking for orphaned jobs, so one does at a time. */
  readonly jobsOrphanLock: string;
  /** Prefix of BullMQ's own keys (queues, locks). */
  readonly bull: string;
  /** Pattern matching every key of this prefix (for SCAN in tests and tools). */
  readonly all: string;
}

export function redisKeys(prefix: string): RedisKeys {
  return Object.freeze({
    prefix,
    token: (tokenSha256: string) => `${prefix}auth:token:${tokenSha256}`,
    adminTokenHash: `${prefix}auth:admin-token-hash`,
    tokenId: (id: string) => `${prefix}auth:token-id:${id}`,
    tokens: `${prefix}auth:tokens`,
    hosts: `${prefix}hosts`,
    job: (id: string) => `${prefix}job:${id}`,
    jobsByCreation: `${prefix}jobs`,
    jobsBy: (filter: string, value: string) => `${prefix}jobs:by-${filter}:${value}`,
    jobsFinished: `${prefix}jobs:finished`,
    jobsPruneLock: `${prefix}jobs:prune-lock`,
    jobUpdates: `${prefix}jobs:updates`,
    jobSignals: `${prefix}jobs:signals`,
    idempotency: (callerId: string, key: string) => `${prefix}idempotency:${callerId}:${key}`,
    diskBlockJob: (host: string, domainUuid: string, disk: string) =>
      `${prefix}disk-block-job:${host}:${domainUuid}:${disk}`,
    blockJob: (id: string) => `${prefix}block-job:${id}`,
    blockJobReconcileLock: (host: string) => `${prefix}block-jobs:reconcile-lock:${host}`,
    auditEvents: `${prefix}audit`,
    auditDeniedGate: (address: string) => `${prefix}audit:denied-gate:${address}`,
    auditDeniedFolded: (address: string) => `${prefix}audit:denied-folded:${address}`,
    docsSession: (idSha256: string) => `${prefix}docs-session:${idSha256}`,
    rateLimit: (kind: string, id: string) => `${prefix}rate:${kind}:${id}`,
    activeJobs: (callerId: string) => `${prefix}jobs:active-by-caller:${callerId}`,
    events: `${prefix}events`,
    eventsTrimmedThrough: `${prefix}events:trimmed-through`,
    eventsLease: (host: string) => `${prefix}events:lease:${host}`,
    eventsHostLink: (host: string) => `${prefix}events:host-link:${host}`,
    eventsDomains: (host: string) => `${prefix}events:domains:${host}`,
    jobProgressGate: (id: string) => `${prefix}jobs:progress-gate:${id}`,
    diskLastBlockJob: (host: string, domainUuid: string, disk: string) =>
      `${prefix}disk-last-block-job:${host}:${domainUuid}:${disk}`,
    webhook: (id: string) => `${prefix}webhook:${id}`,
    webhooks: `${prefix}webhooks`,
    webhooksVersion: `${prefix}webhooks:version`,
    webhookDeliveries: (id: string) => `${prefix}webhook-deliveries:${id}`,
    jobCallback: (jobId: string) => `${prefix}jobs:callback:${jobId}`,
    marker: `${prefix}meta:marker`,
    recovering: `${prefix}meta:recovering`,
    jobHeld: (id: string) => `${prefix}jobs:held:${id}`,
    jobsOrphanLock: `${prefix}jobs:orphan-lock`,
    bull: `${prefix}bull`,
    all: `${prefix}*`,
  });
}
