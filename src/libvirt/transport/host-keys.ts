/**
 * Whether an SSH server's host key is the one we expect, decided before any
 * credential is sent to it: pinned fingerprints, OpenSSH known_hosts text, or
 * trust on first use. Pure functions over the key blob the server offered, so
 * the rules are unit-tested without a server.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The port known_hosts writes without brackets (uri.ts's DEFAULT_SSH_PORT; not imported: uri.ts imports the transports). */
const DEFAULT_SSH_PORT = 22;

/** The fingerprint OpenSSH prints (`ssh-keygen -lf`): `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function hostKeyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The key type a public key blob names (its first SSH string, e.g. `ssh-ed25519`),
 * or `unknown` for a blob too short to hold one.
 */
export function hostKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  if (length === 0 || 4 + length > blob.length) return 'unknown';
  return blob.subarray(4, 4 + length).toString('latin1');
}

/**
 * The name known_hosts files use for a server: the host alone on port 22,
 * `[host]:port` on any other port, as OpenSSH writes them (lower case).
 */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === DEFAULT_SSH_PORT ? name : `[${name}]:${port}`;
}

/** One meaningful line of a known_hosts file. */
export interface KnownHostsEntry {
  /** `@revoked`, `@cert-authority`, or null for a plain entry. */
  readonly marker: string | null;
  /** The comma-separated host patterns, as written (plain, wildcards, `!negated`, `|1|salt|hash`). */
  readonly patterns: readonly string[];
  readonly keyType: string;
  /** The base64 key, as written. */
  readonly key: string;
}

/** The entries of known_hosts text: comments, blank and malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]!.startsWith('@') ? fields.shift()! : null;
    const [hosts, keyType, key] = fields;
    if (hosts === undefined || keyType === undefined || key === undefined) continue;
    entries.push({ marker, patterns: hosts.split(','), keyType, key });
  }
  return entries;
}

/** Whether a hashed pattern `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` is `name`. */
function hashedPatternMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** OpenSSH's `*` and `?` wildcards, matched against the whole name, case-insensitively. */
function globMatches(pattern: string, name: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(name);
}

function patternMatches(pattern: string, name: string): boolean {
  return pattern.startsWith('|') ? hashedPatternMatches(pattern, name) : globMatches(pattern, name);
}

/**
 * Whether an entry's host patterns cover `name`: some pattern matches and no
 * negated one (`!pattern`) does, as in OpenSSH's match_hostname.
 */
export function entryNamesHost(entry: KnownHostsEntry, name: string): boolean {
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.startsWith('!')) {
      if (patternMatches(pattern.slice(1), name)) return false;
    } else if (patternMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * What known_hosts says about a server's key:
 * `known` (an entry for the host has this very key), `revoked` (an `@revoked`
 * entry has it), `changed` (the host is listed, with other keys only),
 * `unknown` (the host is not listed). `@cert-authority` entries are ignored:
 * this client does not accept host certificates.
 */
export type KnownHostsVerdict = 'known' | 'revoked' | 'changed' | 'unknown';

export function checkKnownHosts(
  text: string,
  host: string,
  port: number,
  blob: Buffer,
): KnownHostsVerdict {
  const name = knownHostsName(host, port);
  const keyType = hostKeyType(blob);
  const key = blob.toString('base64');
  const sameKey = (e: KnownHostsEntry): boolean => e.keyType === keyType && e.key === key;
  const entries = parseKnownHosts(text);
  // A revoked key is refused whatever the host patterns say (OpenSSH checks it first).
  if (entries.some((e) => e.marker === '@revoked' && sameKey(e))) return 'revoked';
  const forHost = entries.filter((e) => e.marker === null && entryNamesHost(e, name));
  if (forHost.some(sameKey)) return 'known';
  return forHost.length > 0 ? 'changed' : 'unknown';
}

/** What the transport is told to trust (the host-key half of SshCredentials). */
export interface HostKeyPolicy {
  readonly hostKeyFingerprints?: readonly string[];
  readonly knownHosts?: string;
  readonly trustOnFirstUse?: boolean;
}

/** The decision on an offered host key; `reason` is for the ConnectError when refused. */
export type HostKeyDecision =
  | { readonly accepted: true; readonly fingerprint: string; readonly keyType: string }
  | { readonly accepted: false; readonly fingerprint: string; readonly reason: string };

/** Fingerprints as people paste them: with or without base64 padding. */
function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.trim().replace(/=+$/, '');
}

/**
 * Decides on the host key `blob` offered by `host:port`. Accepted when it is a
 * pinned fingerprint or known_hosts lists it for the host; refused when it is
 * revoked, when the host is known with another key or the pins name other
 * keys ("changed"), and when nothing names the host ("not known") unless
 * trust on first use was asked for. Refusals name the offered fingerprint, so
 * an admin can compare it with `ssh-keygen -lf` on the server.
 */
export function decideHostKey(
  policy: HostKeyPolicy,
  host: string,
  port: number,
  blob: Buffer,
): HostKeyDecision {
  const fingerprint = hostKeyFingerprint(blob);
  const keyType = hostKeyType(blob);
  const server = knownHostsName(host, port);
  const refuse = (reason: string): HostKeyDecision => ({ accepted: false, fingerprint, reason });
  const verdict =
    policy.knownHosts === undefined
      ? 'unknown'
      : checkKnownHosts(policy.knownHosts, host, port, blob);
  if (verdict === 'revoked') {
    return refuse(`host key of ${server} is revoked in known_hosts (${keyType} ${fingerprint})`);
  }
  const pins = (policy.hostKeyFingerprints ?? []).map(normaliseFingerprint);
  if (pins.includes(fingerprint) || verdict === 'known') {
    return { accepted: true, fingerprint, keyType };
  }
  if (verdict === 'changed' || pins.length > 0) {
    const against = verdict === 'changed' ? 'the key known_hosts lists' : 'the pinned fingerprints';
    return refuse(
      `host key changed for ${server}: it offered ${keyType} ${fingerprint}, not ${against} ` +
        '(a new server key, or someone in the middle)',
    );
  }
  if (policy.trustOnFirstUse === true) return { accepted: true, fingerprint, keyType };
  return refuse(
    `host key not known for ${server}: it offered ${keyType} ${fingerprint}; ` +
      'pin this fingerprint or add the key to known_hosts once checked on the server',
  );
}
