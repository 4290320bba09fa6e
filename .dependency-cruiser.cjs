// @ts-check
/**
 * The layers of the gateway, checked by `npm run lint` (README, "Layout"):
 *
 *   src/      libraries that know no feature (libvirt, hosts, xml, redis, common, config, graphql)
 *     ↑
 *   jobs/     the job machinery; imports src/ only
 *     ↑
 *   modules/  one feature per folder; imports src/, jobs/, and another feature only through
 *             its index.ts (plain functions and types) or its models/ (the shapes it shows)
 *
 * The composition root (src/main.ts, app.module.ts, worker.ts, create-app.ts, api-contract.ts)
 * is the one place in src/ that names the features. No cycles, between files or between folders.
 * scripts/depcruise/worker.cjs adds what the worker role may load at run time.
 */

/** The composition root: the files of src/ that put the features together. */
const COMPOSITION_ROOT = '^src/(main|app\\.module|worker|create-app|api-contract)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A file must not depend on itself through others.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment:
        'Two folders must not depend on each other (through any of their files): dependencies point one way.',
      scope: 'folder',
      from: { path: '^(src|jobs|modules)/' },
      to: { circular: true },
    },
    {
      name: 'src-knows-no-feature',
      severity: 'error',
      comment:
        'src/ holds libraries that know no feature and no job machinery; only the composition root puts features together.',
      from: { path: '^src/', pathNot: COMPOSITION_ROOT },
      to: { path: '^(jobs|modules)/' },
    },
    {
      name: 'jobs-imports-only-src',
      severity: 'error',
      comment:
        'jobs/ is the job machinery: it knows no feature (features register their processors).',
      from: { path: '^jobs/' },
      to: { path: '^modules/' },
    },
    {
      name: 'features-meet-through-their-public-surface',
      severity: 'error',
      comment:
        "A feature uses another only through that feature's index.ts or its models/, never its internals.",
      from: { path: '^modules/([^/]+)/' },
      to: {
        path: '^modules/',
        pathNot: ['^modules/$1/', '^modules/[^/]+/index\\.ts$', '^modules/[^/]+/models/'],
      },
    },
    {
      name: 'libvirt-client-stands-alone',
      severity: 'error',
      comment:
        "src/libvirt is a client of libvirt's protocol that could be published on its own: Node, itself, and ssh2 for qemu+ssh:// only.",
      from: { path: '^src/libvirt/' },
      to: { pathNot: ['^src/libvirt/', '(^|/)node_modules/ssh2/'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'no-tests-or-scripts-in-the-product',
      severity: 'error',
      from: { path: '^(src|jobs|modules)/' },
      to: { path: '^(test|scripts)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that resolves to nothing (or to the build output) hides a real dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dist',
      severity: 'error',
      from: {},
      to: { path: '^dist/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count too: a layer must not even know another's types.
    tsPreCompilationDeps: true,
    webpackConfig: { fileName: 'scripts/depcruise/resolve.cjs' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.cjs', '.mjs', '.json'],
    },
  },
};
