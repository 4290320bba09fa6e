import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  normaliseDomainEvent,
  stateAfter,
  transitions,
} from '#modules/events/domain-event-normaliser.js';
import { DomainEventLifecycle, type DomainEvent } from '#src/libvirt/index.js';
import { eventSchemaErrors } from '../support/json-schema.js';

const dom = { name: 'vm1', uuid: Buffer.from('0123456789abcdef0123456789abcdef', 'hex'), id: 1 };
const base = { callbackId: 1, dom };
const lifecycle = (event: number, detail: number): DomainEvent => ({
  ...base,
  kind: 'lifecycle',
  event,
  detail,
});

describe('domain event normaliser', () => {
  it("names libvirt's lifecycle events and details as the vocabulary does", () => {
    const cases: [DomainEvent, string, string | null][] = [
      [lifecycle(DomainEventLifecycle.STARTED, 0), 'domain.started', 'booted'],
      [lifecycle(DomainEventLifecycle.STOPPED, 1), 'domain.stopped', 'destroyed'],
      [lifecycle(DomainEventLifecycle.SUSPENDED, 6), 'domain.suspended', 'api-error'],
      [lifecycle(DomainEventLifecycle.SHUTDOWN, 2), 'domain.shutdown', 'host'],
      [lifecycle(DomainEventLifecycle.CRASHED, 0), 'domain.crashed', 'panicked'],
      [lifecycle(DomainEventLifecycle.DEFINED, 2), 'domain.defined', 'renamed'],
      // A detail newer than the vocabulary: none by name, its number in data.
      [lifecycle(DomainEventLifecycle.STARTED, 99), 'domain.started', null],
    ];
    for (const [e, type, detail] of cases) {
      const out = normaliseDomainEvent('h', e, null)!;
      assert.equal(out.type, type);
      assert.equal(out.detail, detail);
      assert.deepEqual(out.domain, { uuid: '01234567-89ab-cdef-0123-456789abcdef', name: 'vm1' });
      assert.deepEqual(eventSchemaErrors({ id: '1-0', ...out }), [], type);
    }
    assert.deepEqual(
      normaliseDomainEvent('h', lifecycle(DomainEventLifecycle.STARTED, 99), null)!.data,
      {
        detailCode: 99,
      },
    );
    assert.equal(normaliseDomainEvent('h', lifecycle(42, 0), null), null, 'an unknown event');
  });

  it('names block jobs by type and status, with the gateway job', () => {
    const e: DomainEvent = { ...base, kind: 'blockJob', disk: 'vda', type: 4, status: 3 };
    const out = normaliseDomainEvent('h', e, 'job-1')!;
    assert.equal(out.type, 'block-job.ready');
    assert.deepEqual(out.blockJob, {
      disk: 'vda',
      type: 'active-commit',
      status: 'ready',
      jobId: 'job-1',
    });
    assert.equal(normaliseDomainEvent('h', { ...e, status: 9 }, null), null);
  });

  it('carries what the other events say, by name', () => {
    const cases: [DomainEvent, string, Record<string, unknown> | null][] = [
      [{ ...base, kind: 'reboot' }, 'domain.rebooted', null],
      [
        { ...base, kind: 'deviceAdded', devAlias: 'usb-disk1' },
        'domain.device-added',
        { device: 'usb-disk1' },
      ],
      [
        { ...base, kind: 'trayChange', devAlias: 'sata0-0-0', reason: 0 },
        'domain.tray-changed',
        { device: 'sata0-0-0', tray: 'open' },
      ],
      [
        {
          ...base,
          kind: 'diskChange',
          devAlias: 'sata0-0-0',
          oldSrcPath: '/a.iso',
          newSrcPath: null,
          reason: 0,
        },
        'domain.disk-changed',
        { device: 'sata0-0-0', oldPath: '/a.iso', newPath: null, reason: 'missing-on-start' },
      ],
      [
        { ...base, kind: 'metadataChange', type: 2, nsuri: 'urn:x' },
        'domain.metadata-changed',
        { part: 'element', namespace: 'urn:x' },
      ],
      [{ ...base, kind: 'watchdog', action: 2 }, 'domain.watchdog', { action: 'reset' }],
      [
        {
          ...base,
          kind: 'ioError',
          srcPath: '',
          devAlias: 'virtio-disk0',
          action: 1,
          reason: 'enospc',
        },
        'domain.io-error',
        { device: 'virtio-disk0', path: null, action: 'pause', reason: 'enospc' },
      ],
      [
        { ...base, kind: 'agentLifecycle', state: 1, reason: 2 },
        'domain.agent-lifecycle',
        { state: 'connected', reason: 'channel' },
      ],
      [
        { ...base, kind: 'jobCompleted', params: { operation: 2, time_elapsed: 120 } },
        'domain.job-completed',
        { operation: 'save', statistics: { operation: 2, time_elapsed: 120 } },
      ],
      [
        { ...base, kind: 'memoryFailure', recipient: 1, action: 1, flags: 1 },
        'domain.memory-failure',
        { recipient: 'guest', action: 'inject', actionRequired: true, recursive: false },
      ],
    ];
    for (const [e, type, data] of cases) {
      const out = normaliseDomainEvent('h', e, null)!;
      assert.equal(out.type, type);
      assert.deepEqual(out.data, data, type);
      assert.equal(out.detail, null);
      assert.deepEqual(eventSchemaErrors({ id: '1-0', ...out }), [], type);
    }
    // PMSUSPEND's own event repeats the lifecycle's PMSUSPENDED: not streamed twice.
    assert.equal(normaliseDomainEvent('h', { ...base, kind: 'pmSuspend', reason: 0 }, null), null);
  });

  it("tells what each lifecycle event does to a domain's announced state", () => {
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.STARTED, 0), 'shutoff'), 'running');
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.RESUMED, 0), 'paused'), 'running');
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.SUSPENDED, 0), 'running'), 'paused');
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.STOPPED, 1), 'running'), 'shutoff');
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.SHUTDOWN, 0), 'running'), undefined);
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.DEFINED, 0), null), 'shutoff');
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.DEFINED, 1), 'running'), undefined);
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.UNDEFINED, 0), 'shutoff'), null);
    // Undefined while running: it goes on, transient, until it stops.
    assert.equal(stateAfter(lifecycle(DomainEventLifecycle.UNDEFINED, 0), 'running'), undefined);
    assert.equal(stateAfter({ ...base, kind: 'reboot' }, 'running'), undefined);
  });

  it('announces a state found by reconciliation as the events that lead to it', () => {
    assert.deepEqual(transitions('shutoff', 'running'), ['domain.started']);
    assert.deepEqual(transitions('shutoff', 'paused'), ['domain.started', 'domain.suspended']);
    assert.deepEqual(transitions('running', 'paused'), ['domain.suspended']);
    assert.deepEqual(transitions('paused', 'running'), ['domain.resumed']);
    assert.deepEqual(transitions('paused', 'shutoff'), ['domain.stopped']);
    assert.deepEqual(transitions('running', 'pmsuspended'), ['domain.pmsuspended']);
    assert.deepEqual(transitions('pmsuspended', 'running'), ['domain.started']);
    assert.deepEqual(transitions('running', 'crashed'), ['domain.crashed']);
    assert.deepEqual(transitions('running', 'running'), []);
  });
});
