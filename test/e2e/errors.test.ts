import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException, NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { httpProblemFor, problemType } from '#src/common/errors/problem-details.js';
import { ConnectError, LibvirtClient, LibvirtError } from '#src/libvirt/index.js';

const STATUS: Record<ErrorCode, number> = {
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.ALREADY_EXISTS]: 409,
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.INVALID_STATE]: 409,
  [ErrorCode.HOST_UNREACHABLE]: 503,
  [ErrorCode.UNAVAILABLE]: 503,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.NOT_READY]: 409,
  [ErrorCode.IDEMPOTENCY_MISMATCH]: 422,
  [ErrorCode.UNSUPPORTED]: 501,
  [ErrorCode.TIMEOUT]: 504,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.PATH_NOT_ALLOWED]: 403,
  [ErrorCode.QUOTA_EXCEEDED]: 429,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.CURSOR_EXPIRED]: 410,
  [ErrorCode.INTERNAL]: 500,
};

/** The error a real call to libvirtd's test driver rejects with. */
async function libvirtErrorOf(call: (client: LibvirtClient) => Promise<unknown>): Promise<unknown> {
  const client = await LibvirtClient.connect('test+tcp://127.0.0.1/default', { readOnly: true });
  try {
    await call(client);
  } catch (err) {
    return err;
  } finally {
    await client.close();
  }
  assert.fail('the call succeeded');
}

describe('error vocabulary over HTTP', () => {
  it('gives every AppError code its status, title, type and message', () => {
    for (const code of Object.values(ErrorCode)) {
      const problem = httpProblemFor(new AppError(code, `message for ${code}`));
      assert.equal(problem.status, STATUS[code], code);
      assert.equal(problem.code, code);
      assert.equal(problem.detail, `message for ${code}`);
      assert.ok(problem.title.length > 0);
      assert.equal(problem.logAsError, code === ErrorCode.INTERNAL, code);
    }
    assert.equal(problemType(ErrorCode.HOST_UNREACHABLE), 'urn:virtgate:problem:host-unreachable');
  });

  it('adds Retry-After to HOST_UNREACHABLE and WWW-Authenticate to UNAUTHENTICATED', () => {
    assert.deepEqual(httpProblemFor(new AppError(ErrorCode.HOST_UNREACHABLE, 'x')).headers, {
      'retry-after': '5',
    });
    assert.deepEqual(
      httpProblemFor(new AppError(ErrorCode.TIMEOUT, 'x', { retryAfterSeconds: 2 })).headers,
      { 'retry-after': '2' },
    );
    assert.deepEqual(httpProblemFor(new AppError(ErrorCode.UNAUTHENTICATED, 'x')).headers, {
      'www-authenticate': 'Bearer realm="virtgate"',
    });
  });

  it('maps a real VIR_ERR_NO_DOMAIN from libvirtd to 404 NOT_FOUND', async () => {
    const err = await libvirtErrorOf((c) =>
      c.rpc.domainLookupByName({ name: 'no-such-domain-vg' }),
    );
    assert.ok(err instanceof LibvirtError);
    assert.equal(err.codeName, 'VIR_ERR_NO_DOMAIN');
    const problem = httpProblemFor(err);
    assert.equal(problem.status, 404);
    assert.equal(problem.code, ErrorCode.NOT_FOUND);
    assert.equal(problem.detail, `libvirt: ${err.message} (VIR_ERR_NO_DOMAIN)`);
    assert.equal(problem.logAsError, false);
  });

  it('maps a real VIR_ERR_OPERATION_DENIED (write on a read-only connection) to 403', async () => {
    const err = await libvirtErrorOf((c) =>
      c.rpc.domainDefineXml({ xml: '<domain type="test"><name>vg-ro</name></domain>' }),
    );
    assert.ok(err instanceof LibvirtError, String(err));
    assert.equal(err.codeName, 'VIR_ERR_OPERATION_DENIED');
    assert.equal(httpProblemFor(err).status, 403);
    assert.equal(httpProblemFor(err).code, ErrorCode.FORBIDDEN);
  });

  it('maps an unreachable host to 503 HOST_UNREACHABLE with Retry-After', async () => {
    const err = await LibvirtClient.connect('qemu+tcp://127.0.0.1:1/system', {
      readOnly: true,
    }).then(
      () => assert.fail('connected to port 1'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConnectError);
    const problem = httpProblemFor(err);
    assert.equal(problem.status, 503);
    assert.equal(problem.code, ErrorCode.HOST_UNREACHABLE);
    assert.equal(problem.headers['retry-after'], '5');
    assert.match(problem.detail, /ECONNREFUSED/);
  });

  it("maps Nest's HTTP exceptions by status", () => {
    const notFound = httpProblemFor(new NotFoundException('Cannot GET /x'));
    assert.deepEqual(
      [notFound.status, notFound.code, notFound.detail],
      [404, 'NOT_FOUND', 'Cannot GET /x'],
    );
    const bad = httpProblemFor(
      new BadRequestException(['name must be a string', 'size is required']),
    );
    assert.deepEqual([bad.status, bad.code], [400, 'INVALID_ARGUMENT']);
    assert.equal(bad.detail, 'name must be a string; size is required');
    const tooLarge = httpProblemFor(new PayloadTooLargeException());
    assert.deepEqual([tooLarge.status, tooLarge.code], [413, 'PAYLOAD_TOO_LARGE']);
  });

  it('answers anything else with 500 INTERNAL, no internals, flagged for logging', () => {
    const problem = httpProblemFor(
      new TypeError("Cannot read properties of undefined (reading 'secret')"),
    );
    assert.equal(problem.status, 500);
    assert.equal(problem.code, ErrorCode.INTERNAL);
    assert.equal(problem.logAsError, true);
    assert.doesNotMatch(problem.detail, /secret|undefined/);
    assert.equal(httpProblemFor('a string').status, 500);
    assert.equal(httpProblemFor(undefined).status, 500);
  });
});
