/**
 * A worker whose event lease on a host vanished (Redis came back empty) while a
 * step of the host's was under way: the step's publish fails with LEASE_LOST at
 * the same time as the lease round stops the host. Both must end: the worker
 * takes the lease again and follows the host anew, and its shutdown ends. (The
 * failed step used to wait for the very chain it ran in, so the round waited
 * forever, the host was never followed again, and a shutdown never ended: seen
 * as a redis-outage e2e file whose `after` hook hung.)
 *
 * Real Redis; the host side (registry, event link, libvirt) is stubbed, to hold
 * the step at the point where the lease goes.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { BlockJobLedger } from '#jobs/block-job-ledger.js';
import type { BlockJobReconciler } from '#modules/block-jobs/index.js';
import { HostEventPublisher } from '#modules/events/host-event-publisher.js';
import type { AppConfig } from '#src/config/config.js';
import type { EventStream } from '#src/events/event-stream.js';
import type { HostConnections } from '#src/hosts/host-connections.js';
import type { HostEvents, HostEventSubscription } from '#src/hosts/host-events.js';
import type { HostRecord, HostRegistry } from '#src/hosts/host-registry.js';
import { redisKeys } from '#src/redis/keys.js';
import { waitFor } from '../support/wait.js';
import { deleteKeys, REDIS_URL, uniquePrefix } from '../e2e/helpers.js';

describe('HostEventPublisher, lease lost during a step', () => {
  const prefix = uniquePrefix(import.meta.url);
  const redis = new Redis(REDIS_URL);
  after(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('takes the lease again and shuts down, though the step failed with LEASE_LOST while the round stopped the host', async () => {
    const keys = redisKeys(prefix);
    const host = { name: 'h1', uri: 'test:///default' } as HostRecord;
    const subscriptions: { closed: boolean }[] = [];
    const hostEvents = {
      subscribe: () => {
        const sub = {
          connected: true,
          ended: false,
          closed: false,
          close: () => (sub.closed = true),
        };
        subscriptions.push(sub);
        return sub as unknown as HostEventSubscription;
      },
      ready: () => Promise.resolve(),
    } as unknown as HostEvents;
    // The first reconciliation's libvirt read waits until the test lets it go.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    const connections = {
      withClient: async () => {
        if (reads++ === 0) await gate;
        return new Map();
      },
    } as unknown as HostConnections;
    const publisher = new HostEventPublisher(
      { eventsLeaseMs: 1000 } as AppConfig,
      redis,
      keys,
      { retention: { maxLength: 1000 } } as EventStream,
      { list: () => Promise.resolve([host]) } as unknown as HostRegistry,
      hostEvents,
      connections,
      {} as BlockJobLedger,
      { reconcileHost: () => Promise.resolve() } as unknown as BlockJobReconciler,
    );
    publisher.onApplicationBootstrap();
    let shutDown = false;
    try {
      await waitFor(() => reads === 1, 'the first reconciliation to read the host');
      assert.deepEqual(publisher.hosts, ['h1']);
      // The lease goes (Redis lost it) while the step is under way...
      assert.equal(await redis.del(keys.eventsLease('h1')), 1);
      // ...and the lease round notices, stopping the host (it then waits for the step).
      await waitFor(() => subscriptions[0]!.closed, 'the lease round to stop the host');
      // The step goes on: its publish finds the lease gone (LEASE_LOST).
      release();
      // The round ended, and the next one took the lease again and follows the host anew.
      await waitFor(
        async () =>
          subscriptions.length === 2 && (await redis.exists(keys.eventsLease('h1'))) === 1,
        'the worker to hold the host again (a new subscription and its lease)',
      );
      assert.equal(subscriptions[1]!.closed, false);
      assert.deepEqual(publisher.hosts, ['h1']);
    } finally {
      release();
      void publisher.onApplicationShutdown().then(() => (shutDown = true));
      await waitFor(() => shutDown, "the publisher's shutdown to end");
    }
    // Its shutdown let the host go.
    assert.equal(subscriptions[1]?.closed ?? true, true);
    assert.equal(await redis.exists(keys.eventsLease('h1')), 0);
  });
});
