/**
 * A typed GraphQL client, as an integrator builds one: @graphql-codegen
 * generates TypeScript types and TypedDocumentNodes from the committed
 * openapi/schema.graphql and the operations in test/graphql-client/*.graphql
 * (into a temporary copy of the client), `tsc --strict` compiles the flow
 * (test/graphql-client/flow.ts) with zero errors, and the compiled flow runs
 * the README's flow against a gateway this test started, its results checked
 * against libvirt and `qemu-img info --backing-chain`. A field the schema does
 * not have, or an enum value it does not name, fails the generation or the
 * compile, and so this test.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { generate } from '@graphql-codegen/cli';
import ts from 'typescript';
import { LibvirtClient } from '#src/libvirt/index.js';
import { backingChain, makeImageDir } from '../support/qemu-images.js';
import {
  as,
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const ADMIN = 'graphql-client-admin-token-0123456789';
const REPO = process.cwd();
const CLIENT_DIR = path.join(REPO, 'test', 'graphql-client');
const CLIENT_SOURCES = ['flow.ts', 'executor.ts'];

/** The code generation an integrator configures: operation types and typed documents. */
async function generateClientTypes(documents: string, out: string): Promise<void> {
  await generate(
    {
      schema: path.join(REPO, 'openapi', 'schema.graphql'),
      documents,
      generates: {
        [out]: {
          plugins: ['typescript-operations', 'typed-document-node'],
          config: { useTypeImports: true },
        },
      },
      silent: true,
      errorsOnly: true,
    },
    true,
  );
}

/** Casts (`as T`, `<T>x`, `x!`) and `any` in a TypeScript source. */
function castsAndAnys(file: string, text: string): { casts: string[]; anys: string[] } {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const casts: string[] = [];
  const anys: string[] = [];
  const visit = (node: ts.Node): void => {
    const where = () => `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    if (
      (ts.isAsExpression(node) && node.type.getText(source) !== 'const') ||
      ts.isTypeAssertionExpression(node) ||
      ts.isNonNullExpression(node)
    ) {
      casts.push(`${where()}: ${node.getText(source)}`);
    }
    if (node.kind === ts.SyntaxKind.AnyKeyword) anys.push(where());
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { casts, anys };
}

interface Step {
  step: string;
  [fact: string]: unknown;
}

describe('a typed GraphQL client (graphql-codegen, typed-document-node)', () => {
  const prefix = uniquePrefix(import.meta.url);
  const tag = `vggqlc-${randomUUID().slice(0, 6)}`;
  let t: TestApp;
  let url: string;
  let qemu: LibvirtClient;
  let images: { dir: string; remove(): Promise<void> };
  let build: string;
  let poolPath: string;

  before(async () => {
    images = await makeImageDir(tag);
    poolPath = path.join(images.dir, 'pool');
    build = await mkdtemp(path.join(tmpdir(), `${tag}-client-`));
    qemu = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}/graphql`;
  });

  after(async () => {
    await closeAllApps();
    if (qemu) {
      const { domains } = await qemu.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
      for (const dom of domains.filter((d) => d.name.startsWith(tag))) {
        await qemu.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await qemu.rpc.domainUndefineFlags({ dom, flags: 2 }).catch(() => undefined);
      }
      const { pools } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
      for (const pool of pools.filter((p) => p.name.startsWith(tag))) {
        await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
        await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
      }
      await qemu.close();
    }
    await images?.remove();
    if (build) await rm(build, { recursive: true, force: true });
    await deleteKeys(prefix);
  });

  it('generates the types from the committed schema and compiles the flow with tsc --strict: 0 errors, 0 casts, 0 any', async () => {
    for (const file of CLIENT_SOURCES) {
      const text = await readFile(path.join(CLIENT_DIR, file), 'utf8');
      const { casts, anys } = castsAndAnys(file, text);
      assert.deepEqual(casts, [], 'the client casts nothing');
      assert.deepEqual(anys, [], 'the client uses no any');
      await copyFile(path.join(CLIENT_DIR, file), path.join(build, file));
    }
    await generateClientTypes(
      path.join(CLIENT_DIR, '*.graphql'),
      path.join(build, 'generated', 'graphql.ts'),
    );
    await writeFile(
      path.join(build, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(CLIENT_DIR, 'tsconfig.json'),
        compilerOptions: { rootDir: '.', outDir: 'out' },
        include: ['*.ts', 'generated/*.ts'],
      }),
    );
    await writeFile(
      path.join(build, 'package.json'),
      JSON.stringify({ type: 'module', private: true }),
    );
    await symlink(path.join(REPO, 'node_modules'), path.join(build, 'node_modules'), 'dir');
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const compiled = await promisify(execFile)(
      process.execPath,
      [tsc, '-p', path.join(build, 'tsconfig.json'), '--strict', '--pretty', 'false'],
      { cwd: build },
    ).then(
      (r) => ({ code: 0, output: r.stdout + r.stderr }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({
        code: err.code ?? 1,
        output: `${err.stdout ?? ''}${err.stderr ?? ''}`,
      }),
    );
    const errors = compiled.output.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.deepEqual(errors, [], 'tsc --strict reports no error');
    assert.equal(compiled.code, 0, compiled.output);
    assert.ok(existsSync(path.join(build, 'out', 'flow.js')), 'the flow compiled');
  });

  it('refuses an operation the schema does not describe: the generation fails', async () => {
    const wrong = path.join(build, 'wrong');
    await mkdir(wrong, { recursive: true });
    const cases: Array<[string, string, RegExp]> = [
      [
        'a field',
        'query Wrong { hosts { edges { node { name hostnameTypo } } } }',
        /Cannot query field "hostnameTypo" on type "Host"/,
      ],
      [
        'a job type spelt as REST spells it',
        'query Wrong { jobs(filter: { type: domain.start }) { edges { node { id } } } }',
        /Syntax Error: Unexpected character: "\."/,
      ],
      [
        'an enum value',
        'query Wrong { jobs(filter: { type: domain_started }) { edges { node { id } } } }',
        /Value "domain_started" does not exist in "JobType" enum/,
      ],
      [
        'an action',
        'mutation Wrong { domainAction(host: "local", domain: "x", action: started) { id } }',
        /Value "started" does not exist in "DomainAction" enum/,
      ],
    ];
    for (const [what, operation, message] of cases) {
      const file = path.join(wrong, 'wrong.graphql');
      await writeFile(file, operation);
      await assert.rejects(
        generateClientTypes(file, path.join(wrong, 'graphql.ts')),
        (err: Error) => {
          assert.match(err.message, message, what);
          return true;
        },
        `${what} the schema lacks fails the generation`,
      );
    }
  });

  it('runs the flow through GraphQL: pool, volume, TCG domain, snapshot, commit with pivot, chain, teardown', async () => {
    assert.ok(existsSync(path.join(build, 'out', 'flow.js')), 'the flow compiled (previous test)');
    const name = `${tag}-vm`;
    const base = path.join(poolPath, `${name}.qcow2`);
    const overlay = path.join(poolPath, `${name}.s1.qcow2`);
    const child = spawn(process.execPath, [path.join(build, 'out', 'flow.js')], {
      env: {
        ...process.env,
        VG_URL: url,
        VG_TOKEN: ADMIN,
        VG_HOST: 'local',
        VG_NAME: name,
        VG_POOL_PATH: poolPath,
        VG_PAUSE: '1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const steps = new Map<string, Step>();
    let witnessed: string[] | null = null;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    for await (const line of createInterface({ input: child.stdout })) {
      const step = JSON.parse(line) as Step;
      steps.set(step.step, step);
      if (step.step === 'committed') {
        // The images as qemu-img sees them, before the teardown deletes them.
        const chain = step.chain as Array<{ path: string }>;
        witnessed = (await backingChain(chain[0]!.path)).map((i) => i.filename);
        assert.ok(existsSync(overlay), 'the committed overlay is kept (no deleteCommittedImages)');
        child.stdin.write('\n');
      }
    }
    const code = await exited;
    assert.equal(code, 0, `the flow failed: ${JSON.stringify(steps.get('failed'))} ${stderr}`);
    assert.ok(steps.has('done'), JSON.stringify([...steps.values()]));

    const hosts = steps.get('hosts')!.hosts as Array<{ name: string; state: string }>;
    assert.ok(
      hosts.some((h) => h.name === 'local'),
      JSON.stringify(hosts),
    );
    assert.deepEqual(steps.get('volume'), {
      step: 'volume',
      name: `${name}.qcow2`,
      path: base,
      format: 'qcow2',
    });
    assert.deepEqual(steps.get('started'), {
      step: 'started',
      state: 'running',
      bus: 'virtio',
      device: 'disk',
      chain: [base],
    });
    assert.deepEqual(steps.get('snapshot'), {
      step: 'snapshot',
      snapshots: [
        {
          name: 's1',
          state: 'disk_snapshot', // libvirt's disk-snapshot, as GraphQL names it
          disks: [{ target: 'vda', snapshot: 'external', path: overlay }],
        },
      ],
      chain: [overlay, base],
      overlays: [{ target: 'vda', path: overlay }],
    });
    const committed = steps.get('committed')!;
    // The commit job's typed result (JobResult's CommitResult) says what the live chain says.
    const liveRef = (committed.chain as Array<{ ref: string }>)[0]!.ref;
    assert.deepEqual(committed.result, {
      outcome: 'applied',
      pivoted: true,
      chainBefore: [overlay, base],
      chain: [{ path: base, ref: liveRef }],
    });
    const job = committed.job as { id: string; type: string; state: string; disk: string };
    assert.deepEqual(
      { type: job.type, state: job.state, disk: job.disk },
      { type: 'block_commit', state: 'completed', disk: 'vda' },
    );
    assert.deepEqual(committed.chain, [
      {
        depth: 0,
        ref: (committed.chain as Array<{ ref: string }>)[0]!.ref,
        type: 'file',
        path: base,
        format: 'qcow2',
      },
    ]);
    assert.match((committed.chain as Array<{ ref: string }>)[0]!.ref, /^vda\[\d+\]$/);
    assert.equal(committed.blockJob, null, 'no block job left on the disk');
    assert.equal(committed.mirror, null);
    assert.deepEqual(witnessed, [base], 'qemu-img info --backing-chain: the base alone');

    // REST names the same job with its own vocabulary.
    const rest = await as(t, ADMIN).get(`/v1/jobs/${job.id}`);
    assert.equal(rest.status, 200);
    assert.equal(rest.body.type, 'block.commit');
    assert.equal(rest.body.result.pivoted, true);

    assert.deepEqual(steps.get('torn-down'), {
      step: 'torn-down',
      volumesDeleted: [`${name}.s1.qcow2`, `${name}.qcow2`],
    });
    await assert.rejects(qemu.rpc.domainLookupByName({ name }), 'libvirt has no such domain left');
    await assert.rejects(qemu.rpc.storagePoolLookupByName({ name }), 'nor such a pool');
    assert.ok(!existsSync(base) && !existsSync(overlay), 'the images are deleted');
  });
});
