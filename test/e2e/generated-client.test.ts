/**
 * A client generated from the committed openapi/openapi.json, as an
 * integrator makes one: openapi-typescript writes the types, test/client/flow.ts
 * (openapi-fetch, no casts) must compile with `tsc --strict` against them and
 * then run the README's flow against a gateway started here: list hosts, a dir
 * pool, volumes, a TCG domain started, a snapshot, an active commit with
 * pivot, the chain read back, everything torn down. The chain it reports after
 * the commit is checked against qemu-img's, while the flow waits before its
 * teardown.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import ts from 'typescript';
import { LibvirtClient, LibvirtError } from '#src/libvirt/index.js';
import { OPENAPI_PATH } from '#src/openapi/openapi-document.js';
import { backingChain } from '../support/qemu-images.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const run = promisify(execFile);
const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'generated-client-test-admin-token-0123';
// dist/test/e2e/ → repository root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FLOW = path.join(ROOT, 'test/client/flow.ts');
const CLIENT_TSCONFIG = path.join(ROOT, 'test/client/tsconfig.json');

/**
 * The casts in a TypeScript source: `x as T`, `<T>x`, `x!` and every `any`.
 * (`as const` fixes a literal's type and casts nothing: not counted.)
 */
function castsIn(source: string, fileName = 'flow.ts'): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const where = (node: ts.Node): string => {
    const { line, character } = file.getLineAndCharacterOfPosition(node.getStart());
    return `${line + 1}:${character + 1} ${node.getText().slice(0, 60)}`;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isAsExpression(node) && !ts.isConstTypeReference(node.type)) {
      found.push(`as: ${where(node)}`);
    } else if (ts.isTypeAssertionExpression(node)) {
      found.push(`<T>: ${where(node)}`);
    } else if (ts.isNonNullExpression(node)) {
      found.push(`!: ${where(node)}`);
    } else if (node.kind === ts.SyntaxKind.AnyKeyword) {
      found.push(`any: ${where(node)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

// CommonJS modules: their classes are their default exports' `default`.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

/** A validator of one operation's JSON request body, from the committed spec. */
function requestBodyValidator(urlPath: string, method: string): (body: unknown) => string[] {
  const doc = JSON.parse(readFileSync(path.join(ROOT, OPENAPI_PATH), 'utf8')) as object;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ ...doc, $id: 'openapi.json' }, 'openapi.json', undefined, false);
  const seg = (k: string): string =>
    encodeURIComponent(k.replaceAll('~', '~0').replaceAll('/', '~1'));
  const validate = ajv.compile({
    $ref: `openapi.json#/paths/${seg(urlPath)}/${method}/requestBody/content/${seg('application/json')}/schema`,
  });
  return (body) =>
    validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

interface Report {
  hosts: string[];
  chainBeforeCommit: string[];
  chainAfterCommit: string[];
  snapshotOverlays: Array<string | null>;
  commitResultChain: string[];
  pivoted: boolean | null;
  volumesDeleted: string[];
  jobs: Array<{ type: string; state: string; id: string }>;
}

describe('a client generated from the committed spec', () => {
  let t: TestApp;
  let libvirt: LibvirtClient;
  let url: string;
  let work: string; // under dist/: the compiled flow finds openapi-fetch in the repository's node_modules
  let images: string;
  const name = `vg-gc-${randomUUID().slice(0, 6)}`;

  before(async () => {
    libvirt = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
    work = await mkdtemp(path.join(ROOT, 'dist', 'generated-client-'));
    images = await mkdtemp(path.join(os.tmpdir(), `${name}-`));
  });

  after(async () => {
    await closeAllApps();
    // Whatever a failed flow left behind.
    try {
      const { dom } = await libvirt.rpc.domainLookupByName({ name: `${name}-vm` });
      await libvirt.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await libvirt.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    } catch (err) {
      if (!(err instanceof LibvirtError)) throw err;
    }
    try {
      const { pool } = await libvirt.rpc.storagePoolLookupByName({ name: `${name}-pool` });
      await libvirt.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await libvirt.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
    } catch (err) {
      if (!(err instanceof LibvirtError)) throw err;
    }
    await libvirt.close();
    await rm(work, { recursive: true, force: true });
    await rm(images, { recursive: true, force: true });
    await deleteKeys(prefix);
  });

  it('counts casts: the counter finds each kind, and the flow has none', async () => {
    assert.deepEqual(
      castsIn(
        'const a = b as string; const c = <number>d; const e = f!.g; let h: any; const i = [1] as const;',
      ).map((c) => c.split(':')[0]),
      ['as', '<T>', '!', 'any'],
    );
    assert.deepEqual(castsIn(await readFile(FLOW, 'utf8')), [], 'casts in test/client/flow.ts');
  });

  it("accepts the README's request bodies as written, and refuses what the server refuses", async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const curlBody = (pattern: RegExp): unknown => {
      const found = pattern.exec(readme);
      assert.ok(found?.[1], `the README still has ${pattern}`);
      return JSON.parse(found[1]);
    };
    const hosts = requestBodyValidator('/v1/hosts', 'post');
    assert.deepEqual(hosts(curlBody(/-d '(\{\n {2}"name": "hv01"[^']*)'/)), []);
    assert.deepEqual(hosts(curlBody(/-d '(\{ "name": "hv02"[^']*)'/)), []);
    const blockJobs = requestBodyValidator(
      '/v1/hosts/{host}/domains/{domain}/disks/{target}/block-jobs',
      'post',
    );
    assert.deepEqual(blockJobs(curlBody(/-d '(\{"type":"commit"[^']*)'/)), []);
    assert.notDeepEqual(blockJobs({ type: 'commit', reuseExisting: true }), []);
    assert.notDeepEqual(blockJobs({ type: 'copy' }), [], 'a copy needs its destination');
    // What the prose says each action takes.
    const action = (name: string) =>
      requestBodyValidator(`/v1/hosts/{host}/domains/{domain}/actions/${name}`, 'post');
    assert.deepEqual(action('start')({ paused: true }), []);
    assert.deepEqual(action('shutdown')({ timeoutSeconds: 30, force: true }), []);
    assert.deepEqual(action('destroy')({ graceful: true }), []);
    assert.deepEqual(action('autostart')({ enabled: true }), []);
    assert.deepEqual(action('reboot')({}), []);
    assert.notDeepEqual(action('start')({ timeoutSeconds: 5 }), []);
    assert.notDeepEqual(action('autostart')({}), [], 'autostart needs enabled');
    assert.notDeepEqual(action('shutdown')({ timeoutSeconds: 1.5 }), [], 'an integer');
    const pools = requestBodyValidator('/v1/hosts/{host}/pools/{pool}/actions/start', 'post');
    assert.deepEqual(pools({ build: true }), []);
    const define = requestBodyValidator('/v1/hosts/{host}/domains', 'post');
    assert.notDeepEqual(define({}), [], 'a definition needs a spec or xml');
    assert.deepEqual(define({ xml: '<domain/>' }), []);
    assert.deepEqual(define({ name: 'vm1', memoryMiB: 512, vcpus: 1 }), []);
  });

  it('generates the types, compiles the flow with tsc --strict, and runs it against the gateway', async () => {
    // 1. openapi-typescript on the committed spec, with its default settings.
    const types = path.join(work, 'openapi.d.ts');
    await run(process.execPath, [
      path.join(ROOT, 'node_modules/openapi-typescript/bin/cli.js'),
      path.join(ROOT, OPENAPI_PATH),
      '--output',
      types,
    ]);
    assert.match(await readFile(types, 'utf8'), /export interface paths/);

    // 2. The flow, compiled against them: not one error.
    const out = path.join(work, 'out');
    const tsconfig = path.join(work, 'tsconfig.json');
    await writeFile(
      tsconfig,
      JSON.stringify({
        extends: CLIENT_TSCONFIG,
        compilerOptions: {
          outDir: out,
          rootDir: path.dirname(FLOW),
          paths: { 'virtgate-openapi': [types] },
        },
        files: [FLOW],
      }),
    );
    const tsc = await run(process.execPath, [
      path.join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      tsconfig,
      '--strict',
      '--pretty',
      'false',
    ]).then(
      (r) => ({ code: 0, output: r.stdout + r.stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({
        code: err.code,
        output: err.stdout + err.stderr,
      }),
    );
    const errors = tsc.output.split('\n').filter((l) => / error TS\d+:/.test(l));
    assert.deepEqual(errors, [], 'tsc --strict errors in the flow');
    assert.equal(tsc.code, 0, tsc.output);

    // 3. The flow against the gateway, paused after the commit for qemu-img's word.
    const poolDir = path.join(images, 'pool'); // made by the pool's build
    const child = spawn(process.execPath, [path.join(out, 'flow.js')], {
      cwd: ROOT,
      env: {
        ...process.env,
        VIRTGATE_URL: url,
        VIRTGATE_TOKEN: ADMIN,
        VIRTGATE_HOST: 'local',
        VIRTGATE_POOL_DIR: poolDir,
        VIRTGATE_NAME: name,
        VIRTGATE_PAUSE_AFTER_COMMIT: '1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    // A flow that hangs fails the test instead of holding the suite.
    // eslint-disable-next-line no-restricted-syntax -- a watchdog that kills a hung child after 2 minutes: it ends the test, it synchronises nothing
    const limit = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const lines: string[] = [];
    let checkpoint: { chainAfterCommit: string[] } | null = null;
    let qemuChain: string[] | null = null;
    const reading = (async () => {
      for await (const line of createInterface({ input: child.stdout })) {
        lines.push(line);
        if (line.startsWith('checkpoint ')) {
          checkpoint = JSON.parse(line.slice('checkpoint '.length)) as {
            chainAfterCommit: string[];
          };
          const top = checkpoint.chainAfterCommit[0];
          qemuChain = top === undefined ? [] : (await backingChain(top)).map((i) => i.filename);
          child.stdin.end('go on\n');
        }
      }
    })();
    const code = await exited;
    clearTimeout(limit);
    await reading;
    assert.equal(code, 0, `the flow failed:\n${stderr}\n${lines.join('\n')}`);
    assert.ok(checkpoint, 'the flow paused after the commit');

    const report = JSON.parse(lines.at(-1) ?? '') as Report;
    const vm = path.join(poolDir, 'vm.qcow2');
    const base = path.join(poolDir, 'base.qcow2');
    assert.ok(report.hosts.includes('local'), `hosts: ${report.hosts.join(', ')}`);
    // The snapshot put an overlay on vm.qcow2; the active commit merged it back and pivoted.
    assert.equal(report.chainBeforeCommit.length, 3, report.chainBeforeCommit.join(' <- '));
    assert.deepEqual(report.chainBeforeCommit.slice(1), [vm, base]);
    assert.equal(path.dirname(report.chainBeforeCommit[0] ?? ''), poolDir);
    assert.deepEqual(report.chainAfterCommit, [vm, base], 'the chain after the commit');
    assert.deepEqual(qemuChain, [vm, base], 'qemu-img info --backing-chain agrees');
    // What the jobs' typed results say: the snapshot's overlay, the chain the commit left.
    assert.deepEqual(report.snapshotOverlays, [report.chainBeforeCommit[0]], 'the overlay');
    assert.deepEqual(report.commitResultChain, [vm, base], "the commit job's result chain");
    assert.equal(report.pivoted, true, 'the active commit pivoted');
    const kinds = report.jobs.map((j) => j.type);
    for (const kind of [
      'pool.define',
      'pool.start',
      'volume.create',
      'domain.define',
      'domain.start',
      'domain.snapshot',
      'block.commit',
      'domain.destroy',
      'domain.undefine',
      'pool.refresh',
      'volume.delete',
      'pool.stop',
      'pool.undefine',
    ]) {
      assert.ok(kinds.includes(kind), `a ${kind} job: ${kinds.join(', ')}`);
    }
    assert.ok(report.jobs.every((j) => j.state === 'completed'));
    // Torn down: the three images deleted, the domain and the pool gone.
    assert.deepEqual(
      [...report.volumesDeleted].sort(),
      [path.basename(report.chainBeforeCommit[0] ?? ''), 'base.qcow2', 'vm.qcow2'].sort(),
    );
    assert.deepEqual(await readdir(poolDir), []);
    await assert.rejects(
      libvirt.rpc.domainLookupByName({ name: `${name}-vm` }),
      (err: unknown) => err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN',
    );
    await assert.rejects(
      libvirt.rpc.storagePoolLookupByName({ name: `${name}-pool` }),
      (err: unknown) => err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_POOL',
    );
  });
});
