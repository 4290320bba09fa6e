/**
 * The "Secrets in logs" check (issue #9): looks for every registered secret,
 * in the forms it could take once written down (as is, JSON-escaped,
 * percent-encoded, XML-escaped, base64), in what a test run recorded
 * (test/support/secrets.ts) and in the Redis keys its tests left behind.
 * scripts/check-secrets.ts runs it after the whole suite.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Secret {
  what: string;
  value: string;
}

export interface Finding {
  /** What the secret is (never the secret itself). */
  what: string;
  /** Where: `<file>:<line>`, or `redis <key>`. */
  where: string;
  /** In which form it was found: `as is`, `JSON`, `percent-encoded`… */
  form: string;
}

/**
 * Redis keys that exist to hold a credential the gateway needs in order to use
 * it, and never shows: the host registry keeps each host's URI as given (its
 * password included), to connect with. Everything else is checked.
 */
export function holdsCredentialsByDesign(key: string): boolean {
  return /:hosts$/.test(key);
}

/** The spellings a secret can take in a log line, a JSON body, a URI or XML. */
export function secretForms(value: string): Array<{ form: string; text: string }> {
  const forms = [
    { form: 'as is', text: value },
    { form: 'JSON', text: JSON.stringify(value).slice(1, -1) },
    { form: 'percent-encoded', text: encodeURIComponent(value) },
    {
      form: 'XML-escaped',
      text: value
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&apos;'),
    },
    { form: 'base64', text: Buffer.from(value).toString('base64').replace(/=+$/, '') },
    { form: 'base64url', text: Buffer.from(value).toString('base64url') },
  ];
  const seen = new Set<string>();
  return forms.filter((f) => !seen.has(f.text) && seen.add(f.text));
}

/** Every occurrence of every secret in `text`, one finding per secret and form. */
export function scanText(text: string, secrets: readonly Secret[], where: string): Finding[] {
  const findings: Finding[] = [];
  for (const secret of secrets) {
    for (const { form, text: needle } of secretForms(secret.value)) {
      if (text.includes(needle)) findings.push({ what: secret.what, where, form });
    }
  }
  return findings;
}

/** The secrets registered in a run directory (every `secrets-*.jsonl`). */
export function readSecrets(dir: string): Secret[] {
  const secrets = new Map<string, Secret>();
  for (const file of filesOf(dir, 'secrets-')) {
    for (const line of lines(join(dir, file))) {
      const s = JSON.parse(line) as Secret;
      if (!secrets.has(s.value)) secrets.set(s.value, s);
    }
  }
  return [...secrets.values()];
}

/** The Redis prefixes a run's tests used. */
export function readPrefixes(dir: string): string[] {
  const prefixes = new Set<string>();
  for (const file of filesOf(dir, 'prefixes-'))
    for (const p of lines(join(dir, file))) prefixes.add(p);
  return [...prefixes];
}

export interface RunScan {
  secrets: number;
  /** Lines read per kind of record (logs, responses, redis). */
  lines: Record<string, number>;
  findings: Finding[];
}

/** Scans every record file of a run directory for its secrets. */
export function scanRunDir(dir: string, secrets: readonly Secret[] = readSecrets(dir)): RunScan {
  const counts: Record<string, number> = { logs: 0, responses: 0, redis: 0 };
  const findings: Finding[] = [];
  for (const kind of Object.keys(counts)) {
    for (const file of filesOf(dir, `${kind}-`)) {
      lines(join(dir, file)).forEach((line, i) => {
        counts[kind]!++;
        if (
          kind === 'redis' &&
          holdsCredentialsByDesign((JSON.parse(line) as { key: string }).key)
        ) {
          return;
        }
        findings.push(...scanText(line, secrets, `${file}:${i + 1}`));
      });
    }
  }
  return { secrets: secrets.length, lines: counts, findings };
}

/** A secret as a report may show it: what it is and its first characters. */
export function masked(finding: Finding): string {
  return `${finding.what} (${finding.form}) in ${finding.where}`;
}

function filesOf(dir: string, start: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(start))
    .sort();
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}
