/**
 * The layer rules `npm run lint` applies (.dependency-cruiser.cjs and
 * scripts/depcruise/worker.cjs) catch what they are meant to: each case is a
 * small tree of files laid out as the project is, with one forbidden import,
 * cruised with the project's own rules.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';

// dist/test/unit/ → repository root
const require = createRequire(new URL('../../../package.json', import.meta.url));
const layers = require('./.dependency-cruiser.cjs') as IConfiguration;
const worker = require('./scripts/depcruise/worker.cjs') as IConfiguration;

const trees: string[] = [];

/** Writes `files` (path → the paths it imports) as .ts files under a new directory. */
async function tree(files: Record<string, string[]>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'vg-layers-'));
  trees.push(root);
  for (const [file, imports] of Object.entries(files)) {
    const full = path.join(root, file);
    await mkdir(path.dirname(full), { recursive: true });
    const lines = imports.map((target, i) => {
      let rel = path.relative(path.dirname(full), path.join(root, target)).replace(/\.ts$/, '');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return `import { x as x${i} } from '${rel}';\nexport const y${i} = x${i};`;
    });
    await writeFile(full, `${lines.join('\n')}\nexport const x = 1;\n`);
  }
  return root;
}

/** The names of the rules the tree breaks, with `config`'s rules. */
async function broken(root: string, config: IConfiguration, entry?: string): Promise<string[]> {
  const cwd = process.cwd();
  process.chdir(root);
  let result: ICruiseResult;
  try {
    const reported = await cruise(
      entry ? [entry] : ['src', 'jobs', 'modules'].filter((d) => existsSync(path.join(root, d))),
      {
        ruleSet: { forbidden: config.forbidden ?? [] },
        validate: true,
        tsPreCompilationDeps: config.options?.tsPreCompilationDeps ?? true,
      },
      { extensions: ['.ts'] },
    );
    result = reported.output as ICruiseResult;
  } finally {
    process.chdir(cwd);
  }
  return [...new Set(result.summary.violations.map((v) => v.rule.name))].sort();
}

describe('layer rules (dependency-cruiser)', () => {
  after(async () => {
    for (const root of trees) await rm(root, { recursive: true, force: true });
  });

  it('allow what the layout allows', async () => {
    const root = await tree({
      'src/app.module.ts': ['modules/a/a.module.ts', 'jobs/runner.ts'],
      'src/common/errors.ts': ['src/libvirt/client.ts'],
      'src/libvirt/client.ts': [],
      'jobs/runner.ts': ['src/common/errors.ts'],
      'modules/a/a.module.ts': ['modules/a/a.service.ts'],
      'modules/a/a.service.ts': [
        'jobs/runner.ts',
        'modules/b/index.ts',
        'modules/b/models/b.model.ts',
      ],
      'modules/b/index.ts': ['modules/b/b.views.ts'],
      'modules/b/b.views.ts': ['src/common/errors.ts'],
      'modules/b/models/b.model.ts': [],
    });
    assert.deepEqual(await broken(root, layers), []);
  });

  it('refuse a library of src/ that names a feature', async () => {
    const root = await tree({
      'src/common/errors.ts': ['modules/a/a.service.ts'],
      'modules/a/a.service.ts': [],
    });
    assert.deepEqual(await broken(root, layers), ['src-knows-no-feature']);
  });

  it('refuse jobs/ importing a feature', async () => {
    const root = await tree({
      'jobs/runner.ts': ['modules/a/a.processor.ts'],
      'modules/a/a.processor.ts': [],
    });
    assert.deepEqual(await broken(root, layers), ['jobs-imports-only-src']);
  });

  it("refuse a feature reaching into another's files", async () => {
    const root = await tree({
      'modules/a/a.service.ts': ['modules/b/b.service.ts'],
      'modules/b/b.service.ts': [],
    });
    assert.deepEqual(await broken(root, layers), ['features-meet-through-their-public-surface']);
  });

  it('refuse cycles between files and between folders', async () => {
    const files = await tree({
      'modules/a/one.ts': ['modules/a/two.ts'],
      'modules/a/two.ts': ['modules/a/one.ts'],
    });
    assert.deepEqual(await broken(files, layers), ['no-circular']);
    const folders = await tree({
      'modules/a/index.ts': ['modules/a/a.views.ts'],
      'modules/a/a.views.ts': ['modules/b/index.ts'],
      'modules/b/index.ts': ['modules/b/b.views.ts'],
      'modules/b/b.views.ts': ['modules/a/index.ts'],
    });
    assert.ok((await broken(folders, layers)).includes('no-folder-cycles'));
  });

  it('refuse the libvirt client depending on the rest of src/', async () => {
    const root = await tree({
      'src/libvirt/client.ts': ['src/common/errors.ts'],
      'src/common/errors.ts': [],
    });
    assert.deepEqual(await broken(root, layers), ['libvirt-client-stands-alone']);
  });

  it('refuse a worker that would load a model, a DTO, a resolver or a controller', async () => {
    const spec = {
      'src/worker.ts': ['modules/a/a-worker.module.ts'],
      'modules/a/a-worker.module.ts': ['modules/a/a.processor.ts'],
      'modules/a/a.processor.ts': ['modules/a/a.views.ts'],
      'modules/a/a.views.ts': [] as string[],
    };
    assert.deepEqual(await broken(await tree(spec), worker, 'src/worker.ts'), []);
    const heavy = await tree({
      ...spec,
      'modules/a/a.views.ts': ['modules/a/models/a.model.ts'],
      'modules/a/models/a.model.ts': [],
    });
    assert.deepEqual(await broken(heavy, worker, 'src/worker.ts'), [
      'worker-loads-no-http-or-graphql',
    ]);
  });
});
