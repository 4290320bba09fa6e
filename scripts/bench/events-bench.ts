/**
 * npm run bench:events — the event pipeline, measured in one run against a
 * real gateway process (ROLE=all, a Redis prefix of its own) and the system
 * libvirtd (qemu:///system) with a TCG domain:
 *
 * 1. Latency of a libvirt lifecycle event (the domain started and destroyed
 *    with `virsh`, one at a time) to an SSE client, a GraphQL subscriber and a
 *    webhook receiver on 127.0.0.1, on five clocks (printed with the figures),
 *    beside the bench's own libvirt event client and Redis's XADD → XREAD.
 * 2. The gateway process's memory idle and with 1,000 idle SSE clients
 *    (before 3, whose garbage would swell the idle figure).
 * 3. Sustained events per second with 100 SSE clients: a producer appends
 *    through EventStream.append (the gateway's Lua, its prefix) as fast as it
 *    can for BENCH_SECONDS (after 5 s paced at the 1,000 events/s target);
 *    what every client received, per client and in all.
 *
 * Figures are printed beside their targets; nothing is asserted. Everything
 * the bench made goes at the end: the domain, its image, the Redis keys, the
 * gateway. Environment: BENCH_EVENTS (40), BENCH_CLIENTS (100),
 * BENCH_SECONDS (10), BENCH_IDLE_CLIENTS (1000).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import WebSocket from 'ws';
import { CONFIG_DEFAULTS } from '#src/config/config.js';
import { newEvent } from '#src/events/event.js';
import { EventStream, type EventRetention } from '#src/events/event-stream.js';
import {
  DomainEventId,
  DomainEventLifecycle,
  LibvirtClient,
  type DomainEvent,
} from '#src/libvirt/index.js';
import { redisKeys } from '#src/redis/keys.js';
import { buildXml } from '#src/xml/xml.js';
import { freePort, startGateway, summary } from './bench-util.js';

const EVENTS = Math.max(2, Number(process.env.BENCH_EVENTS ?? 40));
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 1000);
/** How long the clients may take to receive the backlog after the producer stopped. */
const DRAIN_SECONDS = 60;
/** The paced run: the target rate, to see that it is sustained (no backlog) and at what latency. */
const PACED_RATE = 1000;
const PACED_SECONDS = 5;
const URI = 'qemu:///system';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKEN = `bench-${process.pid}-0123456789abcdef`;
const PREFIX = `vgbench:events:${process.pid}:`;
const DOMAIN = `vgbench-ev-${process.pid}`;
const LOAD_HOST = 'bench-load';
const IDLE_HOST = 'bench-idle';
const auth = { authorization: `Bearer ${TOKEN}` };
const run = promisify(execFile);
const virsh = (...args: string[]) => run('virsh', ['-c', URI, ...args]);
const retention: EventRetention = {
  maxLength: Number(CONFIG_DEFAULTS.EVENTS_RETENTION_MAX_EVENTS),
  maxAgeMs: Number(CONFIG_DEFAULTS.EVENTS_RETENTION_HOURS) * 3_600_000,
};

async function waitFor<T>(
  check: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The ms part of a stream id: when Redis appended it, on Redis's clock (this machine's). */
const idMs = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** Latencies in whole ms (0 … 60 s), counted; for figures over many deliveries. */
class Histogram {
  private readonly counts = new Uint32Array(60_001);
  total = 0;
  add(ms: number): void {
    this.counts[Math.max(0, Math.min(60_000, Math.round(ms)))]!++;
    this.total++;
  }
  quantile(q: number): number {
    const rank = Math.min(this.total - 1, Math.floor(this.total * q));
    let seen = 0;
    for (let ms = 0; ms < this.counts.length; ms++) {
      seen += this.counts[ms]!;
      if (seen > rank) return ms;
    }
    return NaN;
  }
}

interface Receipt {
  id: string;
  type: string;
  time: string;
  /** Date.now() when it came (to compare with clocks of other processes). */
  wall: number;
  /** performance.now() when it came (to compare with this process's other instants). */
  mono: number;
}

/**
 * A server-sent events client over one HTTP connection. With `onEvent`, each
 * event is parsed and handed over; without, events are only counted (the id
 * lines read, no JSON parsed), each one's latency from its stream id noted in
 * `histogram`. Like EventSource, it reconnects with Last-Event-ID when the
 * server ends the stream (a slow reader is cut off); `reconnects` counts that.
 */
class SseClient {
  connected = false;
  count = 0;
  lastId: string | null = null;
  /** performance.now() of the last chunk that held an event. */
  lastAt = 0;
  reconnects = 0;
  /** Events whose id was not above the one before (a repeat, or out of order). */
  outOfOrder = 0;
  private previous = [0, -1];
  private buffer = '';
  private request: http.ClientRequest | null = null;
  private closing = false;

  constructor(
    private readonly url: string,
    private readonly onEvent: ((r: Receipt) => void) | null,
    /** Where a counting client notes each event's latency (swapped between runs). */
    public histogram: Histogram | null = null,
  ) {}

  /** Opens the stream; resolves once its head came (200 or not). */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'text/event-stream', ...auth };
      if (this.lastId !== null) headers['last-event-id'] = this.lastId;
      const req = http.get(this.url, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${this.url}: ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.data(chunk));
        res.on('close', () => this.ended());
        resolve();
      });
      req.on('error', (err) => (this.closing ? undefined : reject(err)));
      this.request = req;
    });
  }

  close(): void {
    this.closing = true;
    this.request?.destroy();
  }

  private ended(): void {
    if (this.closing) return;
    this.reconnects++;
    this.buffer = '';
    this.open().catch(() => undefined);
  }

  private data(chunk: string): void {
    const wall = Date.now();
    const mono = performance.now();
    this.buffer += chunk;
    const end = this.buffer.lastIndexOf('\n\n');
    if (end < 0) return;
    const frames = this.buffer.slice(0, end + 2);
    this.buffer = this.buffer.slice(end + 2);
    if (!this.connected && frames.includes(': connected\n')) this.connected = true;
    const before = this.count;
    if (this.onEvent) {
      for (const frame of frames.split('\n\n')) {
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        const e = JSON.parse(data.slice(6)) as { id: string; type: string; time: string };
        this.count++;
        this.lastId = e.id;
        this.onEvent({ id: e.id, type: e.type, time: e.time, wall, mono });
      }
    } else {
      // Each event's frame starts with its `id:` line; data is one JSON line, with no `\nid: `.
      for (let at = frames.indexOf('id: '); at >= 0; at = frames.indexOf('\nid: ', at + 1)) {
        const from = frames[at] === '\n' ? at + 5 : at + 4;
        const id = frames.slice(from, frames.indexOf('\n', from));
        const dash = id.indexOf('-');
        const ms = Number(id.slice(0, dash));
        const seq = Number(id.slice(dash + 1));
        const [pms, pseq] = this.previous as [number, number];
        if (ms < pms || (ms === pms && seq <= pseq)) this.outOfOrder++;
        this.previous = [ms, seq];
        this.count++;
        this.lastId = id;
        this.histogram?.add(wall - ms);
      }
    }
    if (this.count > before) this.lastAt = mono;
  }
}

/** Opens `n` counting clients of `url`, `batch` at a time, each until its stream said `connected`. */
async function openClients(n: number, url: string, histogram: Histogram | null) {
  const clients: SseClient[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from(
      { length: Math.min(100, n - i) },
      () => new SseClient(url, null, histogram),
    );
    await Promise.all(batch.map((c) => c.open()));
    clients.push(...batch);
  }
  await waitFor(() => clients.every((c) => c.connected), `${n} streams to open`, 30_000);
  return clients;
}

function vmRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

interface Memory {
  rssKiB: number;
  heapUsedKiB: number;
  fds: number;
}

/** The gateway's memory: VmRSS from /proc, heap used after a full GC from the preloaded probe. */
async function memory(gateway: ChildProcess): Promise<Memory> {
  const reply = once(gateway, 'message') as Promise<[{ heapUsed: number }]>;
  gateway.send('memory');
  const [{ heapUsed }] = await reply;
  return {
    rssKiB: vmRssKiB(gateway.pid!),
    heapUsedKiB: heapUsed / 1024,
    fds: readdirSync(`/proc/${gateway.pid}/fd`).length,
  };
}

const fmt = (ms: number, width = 8) => ms.toFixed(1).padStart(width);

function row(what: string, ms: number[], target?: number): string {
  const s = summary(ms);
  const verdict =
    target === undefined
      ? ''
      : `   ${s.median < target ? 'PASS' : 'MISS'} (target median < ${target})`;
  return `  ${what.padEnd(60)} ${fmt(s.median)} ${fmt(s.p99)}${verdict}`;
}

/** A TCG guest with no OS and one qcow2 disk: starts and stops like any, in well under a second. */
function domainXml(disk: string): string {
  return buildXml({
    name: 'domain',
    attrs: { type: 'qemu' },
    children: [
      { name: 'name', text: DOMAIN },
      { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
      { name: 'vcpu', text: 1 },
      {
        name: 'os',
        children: [{ name: 'type', attrs: { arch: 'x86_64', machine: 'pc' }, text: 'hvm' }],
      },
      {
        name: 'devices',
        children: [
          {
            name: 'disk',
            attrs: { type: 'file', device: 'disk' },
            children: [
              { name: 'driver', attrs: { name: 'qemu', type: 'qcow2' } },
              { name: 'source', attrs: { file: disk } },
              { name: 'target', attrs: { dev: 'vda', bus: 'virtio' } },
            ],
          },
        ],
      },
    ],
  });
}

/** Redis alone: the gateway's append (its Lua, EVAL) → a blocked XREAD on another connection, and a plain XADD. */
async function redisFloor(n: number): Promise<{ lua: number[]; plain: number[] }> {
  const reader = new Redis(REDIS_URL);
  const writer = new Redis(REDIS_URL);
  const keys = redisKeys(`${PREFIX}floor:`);
  const stream = new EventStream(writer, keys, retention);
  const lua: number[] = [];
  const plain: number[] = [];
  try {
    let last = '0-0';
    for (let i = 0; i < 2 * n; i++) {
      const read = reader.xread('BLOCK', 5000, 'STREAMS', keys.events, last);
      // Let the XREAD reach Redis and block there before the append.
      await new Promise((r) => setTimeout(r, 1));
      const t0 = performance.now();
      if (i % 2 === 0) await stream.append(newEvent('domain.started', LOAD_HOST));
      else await writer.xadd(keys.events, '*', 'e', '{}');
      const rows = (await read) as [string, [string, string[]][]][] | null;
      const t = performance.now() - t0;
      last = rows?.[0]?.[1]?.at(-1)?.[0] ?? last;
      (i % 2 === 0 ? lua : plain).push(t);
    }
  } finally {
    reader.disconnect();
    writer.disconnect();
  }
  return { lua, plain };
}

interface Step {
  type: 'domain.started' | 'domain.stopped';
  /** performance.now() when virsh was spawned, and when it had exited. */
  spawned: number;
  returned: number;
  direct: { wall: number; mono: number };
  sse: Receipt;
  gql: Receipt;
  hook: Receipt;
}

async function latency(base: string): Promise<void> {
  const direct: { type: string; wall: number; mono: number }[] = [];
  const viaSse: Receipt[] = [];
  const viaGql = new Map<string, Receipt>();
  const viaHook = new Map<string, Receipt>();
  const hookBodies: { body: string; headers: http.IncomingHttpHeaders }[] = [];

  // The bench's own libvirt event client: where libvirt's event is first seen, on this process's clock.
  const libvirt = await LibvirtClient.connect(URI, { readOnly: true });
  libvirt.on('domainEvent', (e: DomainEvent) => {
    if (e.kind !== 'lifecycle' || e.dom.name !== DOMAIN) return;
    const type =
      e.event === DomainEventLifecycle.STARTED
        ? 'domain.started'
        : e.event === DomainEventLifecycle.STOPPED
          ? 'domain.stopped'
          : null;
    if (type) direct.push({ type, wall: Date.now(), mono: performance.now() });
  });
  await libvirt.domainEventRegisterAny(DomainEventId.LIFECYCLE);

  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const wall = Date.now();
      const mono = performance.now();
      const body = Buffer.concat(chunks).toString('utf8');
      res.writeHead(204).end();
      const e = JSON.parse(body) as { id: string; type: string; time: string };
      viaHook.set(e.id, { id: e.id, type: e.type, time: e.time, wall, mono });
      hookBodies.push({ body, headers: req.headers });
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const types = ['domain.started', 'domain.stopped'];
  const made = await fetch(`${base}/v1/webhooks`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      filter: { domains: [DOMAIN], types },
    }),
  });
  const hook = (await made.json()) as { id: string; secret: string };
  if (made.status !== 201) throw new Error(`POST /v1/webhooks: ${made.status}`);

  const sse = new SseClient(`${base}/v1/events?domain=${DOMAIN}&type=${types.join(',')}`, (r) =>
    viaSse.push(r),
  );
  await sse.open();
  const gql = createClient({
    url: `${base.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${TOKEN}` },
    retryAttempts: 0,
  });
  const unsubscribe = gql.subscribe<{ events: { id: string; type: string; time: string } }>(
    {
      query: `subscription { events(filter: { domains: ["${DOMAIN}"], types: ${JSON.stringify(types)} }) { id type time } }`,
    },
    {
      next: (r) => {
        const wall = Date.now();
        const mono = performance.now();
        if (r.data) viaGql.set(r.data.events.id, { ...r.data.events, wall, mono });
      },
      error: (err) => console.error(`the GraphQL subscription failed: ${JSON.stringify(err)}`),
      complete: () => undefined,
    },
  );

  const steps: Step[] = [];
  const step = async (cmd: 'start' | 'destroy'): Promise<Step> => {
    const type = cmd === 'start' ? 'domain.started' : 'domain.stopped';
    const [d0, s0] = [direct.length, viaSse.length];
    const spawned = performance.now();
    await virsh(cmd, DOMAIN);
    const returned = performance.now();
    const sseReceipt = await waitFor(
      () => direct.length > d0 && viaSse.slice(s0).find((r) => r.type === type),
      `${type} over SSE and at the bench's libvirt client`,
    );
    await waitFor(
      () => viaGql.has(sseReceipt.id) && viaHook.has(sseReceipt.id),
      `${type} ${sseReceipt.id} over GraphQL and as a webhook`,
    );
    return {
      type,
      spawned,
      returned,
      direct: direct[d0]!,
      sse: sseReceipt,
      gql: viaGql.get(sseReceipt.id)!,
      hook: viaHook.get(sseReceipt.id)!,
    };
  };

  try {
    // Warm up until every channel is live (the subscription and the webhook take effect a little
    // after they are made): a start and a destroy that all of them deliver.
    await waitFor(
      async () => {
        try {
          await step('start');
          await step('destroy');
          return true;
        } catch {
          await virsh('destroy', DOMAIN).catch(() => undefined);
          return false;
        }
      },
      'every channel to deliver a start and a destroy',
      90_000,
    );
    for (let i = 0; i < EVENTS; i++) steps.push(await step(i % 2 === 0 ? 'start' : 'destroy'));
  } finally {
    unsubscribe();
    await gql.dispose();
    sse.close();
    await fetch(`${base}/v1/webhooks/${hook.id}`, { method: 'DELETE', headers: auth });
    receiver.closeAllConnections();
    receiver.close();
    await libvirt.close();
  }
  let verified = 0;
  for (const { body, headers } of hookBodies) {
    try {
      new Webhook(hook.secret).verify(body, headers as Record<string, string>);
      verified++;
    } catch {
      // counted below
    }
  }

  const starts = steps.filter((s) => s.type === 'domain.started').length;
  console.log(
    `\n1. latency of a libvirt lifecycle event to each channel; ms; n = ${steps.length} ` +
      `(${starts} starts, ${steps.length - starts} destroys with virsh, one at a time; p99 of so few is their largest)`,
  );
  console.log(`  ${''.padEnd(60)}   median      p99`);
  const channels = [
    ['SSE client (GET /v1/events)', (s: Step) => s.sse],
    ['GraphQL subscriber (graphql-ws)', (s: Step) => s.gql],
    ['webhook receiver on 127.0.0.1 (whole request read)', (s: Step) => s.hook],
  ] as const;
  const clocks: [string, (s: Step, r: Receipt) => number, number?][] = [
    [
      "A. from the gateway publisher's receipt of libvirt's event (the event's `time`, the gateway's clock, 1 ms resolution) to the client's:",
      (_, r) => r.wall - Date.parse(r.time),
      50,
    ],
    [
      "B. from the bench's own libvirt event client's receipt of the same event (one process, one clock) to the client's:",
      (s, r) => r.mono - s.direct.mono,
      50,
    ],
    [
      "C. from the append to the stream (the id's ms, Redis's clock) to the client's: the pipeline's fan-out leg",
      (_, r) => r.wall - idMs(r.id),
    ],
    [
      'D. from virsh exiting to the client: negative when the event beat virsh out (it comes before virsh closes its connection)',
      (s, r) => r.mono - s.returned,
    ],
    [
      "E. from virsh being spawned to the client: an upper bound (virsh's start, its connection and the operation itself)",
      (s, r) => r.mono - s.spawned,
    ],
  ];
  for (const [clock, of, target] of clocks) {
    console.log(clock);
    for (const [what, pick] of channels) {
      console.log(
        row(
          what,
          steps.map((s) => of(s, pick(s))),
          target,
        ),
      );
    }
  }
  console.log('baselines, same run:');
  console.log(
    row(
      "libvirt's event: bench's own client → gateway publisher's `time`",
      steps.map((s) => Date.parse(s.sse.time) - s.direct.wall),
    ),
  );
  console.log(
    row(
      'virsh spawned → exited',
      steps.map((s) => s.returned - s.spawned),
    ),
  );
  console.log(
    row(
      "virsh spawned → the bench's own libvirt client got the event",
      steps.map((s) => s.direct.mono - s.spawned),
    ),
  );
  const floor = await redisFloor(200);
  console.log(
    row("Redis: the gateway's append (EVAL of its Lua) → blocked XREAD (n = 200)", floor.lua),
  );
  console.log(row('Redis: plain XADD → blocked XREAD (n = 200)', floor.plain));
  console.log(
    `webhook deliveries received ${hookBodies.length}, signature verified (standardwebhooks) ${verified}; ` +
      `GraphQL and webhook ids = SSE ids for every step`,
  );
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number, ticksPerSecond: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, utime 14 and stime 15 (proc(5)).
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

interface Produced {
  count: number;
  started: number;
  ended: number;
  lastId: string;
}

async function throughput(base: string, gateway: ChildProcess, redis: Redis): Promise<void> {
  const ticks = Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
  const stream = new EventStream(redis, redisKeys(PREFIX), retention);
  const uuid = randomUUID();
  const event = () =>
    newEvent('domain.started', LOAD_HOST, {
      domain: { uuid, name: 'bench-load-domain' },
      detail: 'booted',
    });
  const size = JSON.stringify({ id: '1700000000000-0', ...event() }).length;
  /** Appends for `seconds`, one at a time as the gateway's publisher does: at `rate` a second, or as fast as it can. */
  const produce = async (seconds: number, rate: number | null): Promise<Produced> => {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let count = 0;
    let lastId = '0-0';
    while (performance.now() < deadline) {
      if (rate !== null && count >= (rate * (performance.now() - started)) / 1000) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      [lastId] = (await stream.append(event())) as [string];
      count++;
    }
    return { count, started, ended: performance.now(), lastId };
  };

  const alone = await produce(3, null);
  const clients = await openClients(
    CLIENTS,
    `${base}/v1/events?host=${LOAD_HOST}&after=${await stream.latest()}`,
    null,
  );
  console.log(
    `\n3. sustained events through the pipeline to ${CLIENTS} SSE clients (?host=${LOAD_HOST}&after=<cursor>); ` +
      `one producer appending through EventStream.append (the gateway's Lua and prefix; one event per call, ` +
      `one call at a time, as the publisher does); events of ${size} bytes of JSON`,
  );
  console.log(
    `  producer alone, no client attached: ${(alone.count / ((alone.ended - alone.started) / 1000)).toFixed(0)} events/s (baseline)`,
  );
  const phase = async (what: string, seconds: number, rate: number | null): Promise<void> => {
    const before = clients.map((c) => c.count);
    const histogram = new Histogram();
    for (const c of clients) c.histogram = histogram;
    const cpu0 = { gateway: cpuSeconds(gateway.pid!, ticks), bench: process.cpuUsage() };
    const p = await produce(seconds, rate);
    const got = (c: SseClient, i: number) => c.count - before[i]!;
    const all = await waitFor(
      () => clients.every((c, i) => got(c, i) >= p.count) || null,
      'every client to receive every event',
      DRAIN_SECONDS * 1000,
    ).catch(() => false);
    const gatewayCpu = cpuSeconds(gateway.pid!, ticks) - cpu0.gateway;
    const used = process.cpuUsage(cpu0.bench);
    const benchCpu = (used.user + used.system) / 1e6;
    const complete = clients.filter(
      (c, i) => got(c, i) === p.count && c.lastId === p.lastId && c.outOfOrder === 0,
    ).length;
    const rates = clients
      .map((c, i) => got(c, i) / ((c.lastAt - p.started) / 1000))
      .sort((a, b) => a - b);
    const delivered = clients.reduce((n, c, i) => n + got(c, i), 0);
    const lastAt = Math.max(...clients.map((c) => c.lastAt));
    const wall = (lastAt - p.started) / 1000;
    const reconnects = clients.reduce((n, c) => n + c.reconnects, 0);
    console.log(`  ${what}:`);
    console.log(
      `    producer ${(p.count / ((p.ended - p.started) / 1000)).toFixed(0)} events/s, ${p.count} events; ` +
        `every client received every one, in order, once: ${complete} of ${CLIENTS}` +
        `${all ? '' : ` (not all within ${DRAIN_SECONDS} s of the producer stopping)`}; cut off as slow readers and reconnected: ${reconnects}`,
    );
    console.log(
      `    per client, events / (its last receipt − producer start): min ${rates[0]!.toFixed(0)}, median ${rates[Math.floor(rates.length / 2)]!.toFixed(0)} events/s` +
        (rate === null
          ? `   ${rates[0]! >= 1000 ? 'PASS' : 'MISS'} (target >= 1,000 events/s with ${CLIENTS} clients)`
          : ' (the paced rate: what counts is that all came, with no backlog left)'),
    );
    console.log(
      `    aggregate ${(delivered / wall).toFixed(0)} deliveries/s (${delivered} in ${wall.toFixed(2)} s); ` +
        `the last came ${((lastAt - p.ended) / 1000).toFixed(3)} s after the producer stopped`,
    );
    console.log(
      `    latency, append (stream id's ms, Redis's clock) → receipt: median ${histogram.quantile(0.5)} ms, p99 ${histogram.quantile(0.99)} ms ` +
        `(1 ms resolution, n = ${histogram.total}${rate === null ? '; the backlog the producer ran up is in it' : ''})`,
    );
    console.log(
      `    CPU meanwhile: gateway ${gatewayCpu.toFixed(1)} s (${((100 * gatewayCpu) / wall).toFixed(0)} % of one CPU), ` +
        `this bench (producer and clients) ${benchCpu.toFixed(1)} s (${((100 * benchCpu) / wall).toFixed(0)} %)`,
    );
  };
  try {
    await phase(
      `paced at ${PACED_RATE} events/s for ${PACED_SECONDS} s`,
      PACED_SECONDS,
      PACED_RATE,
    );
    await phase(`as fast as the producer can, ${SECONDS} s`, SECONDS, null);
  } finally {
    for (const c of clients) c.close();
  }
}

async function idleMemory(base: string, gateway: ChildProcess, redis: Redis): Promise<void> {
  const stream = new EventStream(redis, redisKeys(PREFIX), retention);
  const idle = await memory(gateway);
  const clients = await openClients(IDLE_CLIENTS, `${base}/v1/events?host=${IDLE_HOST}`, null);
  // One event each proves every stream is subscribed and live before the reading.
  await stream.append(newEvent('host.reconnected', IDLE_HOST));
  await waitFor(
    () => clients.every((c) => c.count === 1),
    `the event at all ${IDLE_CLIENTS} clients`,
  );
  const attached = await memory(gateway);
  for (const c of clients) c.close();
  await waitFor(
    () => readdirSync(`/proc/${gateway.pid}/fd`).length <= idle.fds + 10,
    'the gateway to close the streams',
  ).catch(() => undefined);
  const left = await memory(gateway);

  console.log(
    `\n2. the gateway process's memory (ROLE=all: api and worker in one process); RSS from /proc/<pid>/status VmRSS, heap used after a full GC (a preloaded probe, --expose-gc)`,
  );
  const line = (what: string, m: Memory) =>
    `  ${what.padEnd(44)} RSS ${(m.rssKiB / 1024).toFixed(1).padStart(7)} MiB   heap used ${(m.heapUsedKiB / 1024).toFixed(1).padStart(6)} MiB   ${String(m.fds).padStart(5)} fds`;
  console.log(line('idle', idle));
  console.log(line(`${IDLE_CLIENTS} idle SSE clients attached`, attached));
  console.log(line('after they disconnected', left));
  console.log(
    `  per client ((attached − idle) / ${IDLE_CLIENTS}): RSS ${((attached.rssKiB - idle.rssKiB) / IDLE_CLIENTS).toFixed(1)} KiB, ` +
      `heap used ${((attached.heapUsedKiB - idle.heapUsedKiB) / IDLE_CLIENTS).toFixed(1)} KiB`,
  );
}

/** Deletes every key under the bench's prefix; how many. */
async function deleteKeys(redis: Redis): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

function openFileLimit(): number {
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !line || line[1] === 'unlimited' ? Infinity : Number(line[1]);
}

async function main(): Promise<void> {
  const fdLimit = openFileLimit();
  const maxConnections = Math.min(10_000, fdLimit - 512);
  if (maxConnections < IDLE_CLIENTS + CLIENTS + 100) {
    throw new Error(
      `ulimit -n is ${fdLimit}: too low for ${IDLE_CLIENTS} clients (scripts/bench-events.sh raises it)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vgbench-ev-'));
  const redis = new Redis(REDIS_URL);
  let gateway: ChildProcess | null = null;
  let defined = false;
  try {
    const disk = path.join(dir, 'disk.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
    const port = await freePort();
    gateway = await startGateway(
      port,
      {
        VIRTGATE_REDIS_PREFIX: PREFIX,
        VIRTGATE_ADMIN_TOKEN: TOKEN,
        VIRTGATE_SECRETS_KEY: randomBytes(32).toString('base64'),
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
        LIBVIRT_DEFAULT_URI: URI,
        HTTP_MAX_CONNECTIONS: String(maxConnections),
      },
      {
        nodeArgs: [
          '--expose-gc',
          '--import',
          pathToFileURL(path.resolve('dist/scripts/bench/memory-probe.js')).href,
        ],
        ipc: true,
      },
    );
    const base = `http://127.0.0.1:${port}`;
    // The gateway registers qemu:///system as `local` and its worker takes the host's events.
    await waitFor(
      async () => (await redis.get(redisKeys(PREFIX).eventsHostLink('local'))) === 'up',
      "the gateway's publisher to hold the local host",
      30_000,
    );
    const xml = path.join(dir, 'domain.xml');
    await writeFile(xml, domainXml(disk));
    await virsh('define', xml);
    defined = true;
    console.log(
      `gateway pid ${gateway.pid} (ROLE=all, Redis prefix ${PREFIX}), ${URI}, TCG domain ${DOMAIN}`,
    );

    await latency(base);
    // Memory before the throughput run, whose garbage would swell the idle figure.
    await idleMemory(base, gateway, redis);
    await throughput(base, gateway, redis);
  } finally {
    if (gateway && gateway.exitCode === null) {
      gateway.kill('SIGTERM');
      await once(gateway, 'exit');
    }
    if (defined) {
      await virsh('destroy', DOMAIN).catch(() => undefined);
      await virsh('undefine', DOMAIN).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
    const keys = await deleteKeys(redis);
    await redis.quit();
    console.log(
      `\ncleanup: gateway stopped, domain ${defined ? 'destroyed and undefined' : 'never defined'}, image removed, ${keys} Redis keys deleted`,
    );
  }
}

await main();
