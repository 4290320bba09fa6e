/**
 * The "Secrets in logs" check run after the whole suite
 * (scripts/check-secrets.ts over test/support/secret-scan.ts) can fail: fed a
 * run directory whose log, response or Redis record holds a registered
 * secret, in any of the forms it takes once written, it reports it and exits
 * non-zero; a clean run passes; a run that recorded nothing fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { scanRunDir, scanText } from '../support/secret-scan.js';

const run = promisify(execFile);
const CHECKER = new URL('../../scripts/check-secrets.js', import.meta.url).pathname;
const SECRET = 'vg_s3cr3t+/=&"<value>';
const dirs: string[] = [];

function runDir(files: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vg-secrets-check-'));
  dirs.push(dir);
  for (const [name, lines] of Object.entries(files)) {
    writeFileSync(join(dir, name), lines.map((l) => `${l}\n`).join(''));
  }
  return dir;
}

const secrets = [JSON.stringify({ what: 'a test token', value: SECRET })];
const cleanLog = JSON.stringify({ level: 'info', msg: 'incoming request', url: '/v1/me' });
const cleanResponse = JSON.stringify({ status: 200, headers: {}, body: '{"id":"admin"}' });

async function checker(dir: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CHECKER, dir]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('the secrets check', () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('finds a secret as is, JSON-escaped, percent-encoded, XML-escaped and in base64', () => {
    const forms = [
      `token ${SECRET} rejected`,
      JSON.stringify({ msg: `token ${SECRET}` }),
      `/v1/x?token=${encodeURIComponent(SECRET)}`,
      `<graphics passwd="${SECRET.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}"/>`,
      `Basic ${Buffer.from(SECRET).toString('base64')}`,
    ];
    for (const text of forms) {
      const found = scanText(text, [{ what: 'a test token', value: SECRET }], 'x');
      assert.ok(found.length > 0, text);
    }
    assert.deepEqual(scanText(cleanLog, [{ what: 'a test token', value: SECRET }], 'x'), []);
  });

  it('reports where a leak is, in logs, responses and Redis records', () => {
    const dir = runDir({
      'secrets-1.jsonl': secrets,
      'logs-1.jsonl': [cleanLog, JSON.stringify({ msg: `token ${SECRET}` })],
      'responses-2.jsonl': [cleanResponse],
      'redis-3.jsonl': [JSON.stringify({ key: 'vgtest:x:job:1', value: { request: SECRET } })],
    });
    const scan = scanRunDir(dir);
    assert.equal(scan.secrets, 1);
    assert.deepEqual(scan.lines, { logs: 2, responses: 1, redis: 1 });
    assert.deepEqual(
      scan.findings.map((f) => f.where),
      ['logs-1.jsonl:2', 'redis-3.jsonl:1'],
    );
  });

  it('fails the run on a leak, without printing the secret', async () => {
    const dir = runDir({
      'secrets-1.jsonl': secrets,
      'logs-1.jsonl': [cleanLog, JSON.stringify({ msg: `cannot connect: password=${SECRET}` })],
      'responses-1.jsonl': [cleanResponse],
    });
    const { code, out } = await checker(dir);
    assert.equal(code, 1, out);
    assert.match(out, /FAILED, 1 leaks/);
    assert.match(out, /a test token \(JSON\) in logs-1\.jsonl:2/);
    assert.ok(!out.includes(SECRET), 'the report does not show the secret');
  });

  it('passes a clean run, and fails one that recorded nothing', async () => {
    const clean = runDir({
      'secrets-1.jsonl': secrets,
      'logs-1.jsonl': [cleanLog],
      'responses-1.jsonl': [cleanResponse],
    });
    const ok = await checker(clean);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /no secret found/);
    const empty = await checker(runDir({}));
    assert.equal(empty.code, 1, empty.out);
    assert.match(empty.out, /recorded no secrets/);
  });
});
