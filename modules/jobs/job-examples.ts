import { ErrorCode } from '#src/common/errors/app-error.js';
import type { JobModel } from './models/job.model.js';

/** The parts every example job shares: a job on domain vm1 of host local. */
const base = {
  host: 'local',
  domain: 'vm1',
  domainUuid: '6695eb01-f6a4-8304-79aa-97f2502e193f',
  disk: null,
  progress: null,
  requestedBy: 'admin',
  requestId: '7c1e5a2b-3d4f-4e6a-8b9c-0d1e2f3a4b5c',
  createdAt: '2026-11-29T07:00:00.000Z',
  cancelRequested: false,
  adopted: false,
} satisfies Partial<JobModel>;

/**
 * Jobs as the gateway answers them, for the documented responses: one
 * accepted, one completed (a result, no error), one failed (an error, no
 * result). test/e2e/openapi-examples.test.ts checks each against the Job schema.
 */
export const JOB_EXAMPLES = {
  queued: {
    summary: 'Accepted, not started yet',
    value: {
      ...base,
      id: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
      type: 'domain.start',
      request: {},
      resolved: { paused: false, domainUuid: base.domainUuid },
      state: 'queued',
      result: null,
      error: null,
      startedAt: null,
      finishedAt: null,
      updatedAt: '2026-11-29T07:00:00.000Z',
      attempts: 0,
    },
  },
  completed: {
    summary: 'Completed: the result, no error',
    value: {
      ...base,
      id: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
      type: 'domain.start',
      request: {},
      resolved: { paused: false, domainUuid: base.domainUuid },
      state: 'completed',
      result: { state: 'running', changed: true },
      error: null,
      startedAt: '2026-11-29T07:00:00.120Z',
      finishedAt: '2026-11-29T07:00:01.870Z',
      updatedAt: '2026-11-29T07:00:01.870Z',
      attempts: 1,
    },
  },
  failed: {
    summary: 'Failed: the error, no result',
    value: {
      ...base,
      id: '5d0e8f1a-2b3c-4d5e-8f90-a1b2c3d4e5f6',
      type: 'domain.shutdown',
      request: { timeoutSeconds: 30 },
      resolved: { timeoutSeconds: 30, force: false, domainUuid: base.domainUuid },
      state: 'failed',
      result: null,
      error: {
        code: ErrorCode.TIMEOUT,
        message:
          "domain 'vm1' did not shut down within 30 s (the guest may ignore ACPI); retry with force: true to power it off",
        libvirtCode: null,
      },
      startedAt: '2026-11-29T07:00:00.120Z',
      finishedAt: '2026-11-29T07:00:30.240Z',
      updatedAt: '2026-11-29T07:00:30.240Z',
      attempts: 1,
    },
  },
} as const satisfies Record<string, { summary: string; value: JobModel }>;
