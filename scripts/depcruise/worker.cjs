// @ts-check
/**
 * What the worker role loads at run time (ROLE=worker starts from src/worker.ts):
 * never the HTTP and GraphQL layers, so that a worker starts, and takes over the
 * jobs of one that died, in about half the time. Run-time imports only (type-only
 * imports are erased): `npm run lint` cruises src/worker.ts with this.
 */
const base = require('../../.dependency-cruiser.cjs');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'worker-loads-no-http-or-graphql',
      severity: 'error',
      comment:
        'The worker imports processors, the job machinery and src/ libraries: no controller, resolver, DTO or model (their decorators load GraphQL, Swagger and validation).',
      from: { path: '^src/worker\\.ts$' },
      to: {
        path: [
          'node_modules/(@nestjs/(graphql|swagger|mercurius|platform-fastify|passport)|mercurius|class-validator|class-transformer|graphql|fastify)/',
          '\\.(controller|resolver|dto|model)\\.ts$',
        ],
        reachable: true,
      },
    },
  ],
  options: { ...base.options, tsPreCompilationDeps: false },
};
