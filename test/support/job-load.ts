/**
 * A stream of cheap jobs for the Redis durability and topology tests:
 * autostart toggles on domains of the libvirt test driver (each a real job
 * through BullMQ and a worker), and how many times a worker ran each. A job
 * ran once when its worker logged exactly one `job <id> (…): running` line
 * (the runner logs it only when it calls the handler, never for a job whose
 * record is already final).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import request from 'supertest';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from './domain-xml.js';
import { waitFor } from './wait.js';

export const TEST_DRIVER_URI = 'test+tcp://127.0.0.1/default';
const TERMINAL = ['completed', 'failed', 'canceled'];

export interface JobView {
  id: string;
  state: string;
  attempts: number;
  error: { code: string; message: string } | null;
}

export class JobLoad {
  /** The ids of every job answered 202, in order. */
  readonly accepted: string[] = [];
  /** Answers other than 202 (status and code), e.g. 503 while Redis is away. */
  readonly refused: Array<{ status: number; code: string | undefined; detail: string }> = [];
  private readonly domains: RemoteDomain[] = [];
  private turn = 0;

  private constructor(
    private readonly client: LibvirtClient,
    readonly names: string[],
  ) {}

  /** Defines `count` domains on the test driver (removed by `close`). */
  static async create(label: string, count = 4): Promise<JobLoad> {
    const client = await LibvirtClient.connect(TEST_DRIVER_URI);
    const run = randomUUID().slice(0, 6);
    const load = new JobLoad(
      client,
      Array.from({ length: count }, (_, i) => `vg-${label}-${run}-${i}`),
    );
    for (const name of load.names) {
      const { dom } = await client.rpc.domainDefineXmlFlags({
        xml: testDriverDomainXml(name, 64),
        flags: 0,
      });
      load.domains.push(dom);
    }
    return load;
  }

  /** POSTs one autostart job (round robin over the domains); the id when accepted. */
  async submit(server: Server, token: string): Promise<string | null> {
    const i = this.turn++;
    const name = this.names[i % this.names.length]!;
    let res: request.Response;
    try {
      res = await request(server)
        .post(`/v1/hosts/test/domains/${name}/actions/autostart`)
        .set('authorization', `Bearer ${token}`)
        .send({ enabled: Math.floor(i / this.names.length) % 2 === 0 });
    } catch (err) {
      this.refused.push({ status: 0, code: undefined, detail: (err as Error).message });
      return null;
    }
    if (res.status === 202) {
      this.accepted.push(res.body.id as string);
      return res.body.id as string;
    }
    const body = res.body as { code?: string; detail?: string };
    this.refused.push({ status: res.status, code: body.code, detail: body.detail ?? '' });
    return null;
  }

  /**
   * Submits one job every `everyMs` until `stop()` is called; returns `stop`.
   * The pace is the shape of the load (jobs keep arriving while Redis fails
   * over), not a wait for anything: what the tests assert is read afterwards
   * from the jobs' final records and the workers' logs.
   */
  keepSubmitting(server: Server, token: string, everyMs = 50): () => Promise<void> {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await this.submit(server, token).catch(() => undefined);
        // eslint-disable-next-line no-restricted-syntax -- the load's pace (one job per everyMs), not synchronisation: nothing waits on it
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
    const stop = async (): Promise<void> => {
      stopped = true;
      await loop;
    };
    this.running.add(stop);
    return stop;
  }

  private readonly running = new Set<() => Promise<void>>();

  /** Stops every submitting loop still running (a test that failed before stopping its own). */
  async stopSubmitting(): Promise<void> {
    for (const stop of this.running) await stop();
    this.running.clear();
  }

  /** Waits until every accepted job is final; returns them. */
  async allEnded(server: Server, token: string, ms = 60_000): Promise<JobView[]> {
    const done = new Map<string, JobView>();
    const open = (): string[] => this.accepted.filter((id) => !done.has(id));
    return waitFor(
      async () => {
        for (const id of open()) {
          const res = await request(server)
            .get(`/v1/jobs/${id}`)
            .set('authorization', `Bearer ${token}`);
          if (res.status === 200 && TERMINAL.includes((res.body as JobView).state)) {
            done.set(id, res.body as JobView);
          }
        }
        return open().length === 0 ? this.accepted.map((id) => done.get(id)!) : null;
      },
      `every one of the ${this.accepted.length} accepted jobs to end`,
      ms,
      200,
    ).catch((err: Error) => {
      const left = open();
      assert.fail(
        `${err.message}: ${left.length} of ${this.accepted.length} not ended: ${left.slice(0, 5).join(', ')}`,
      );
    });
  }

  /** Closes the libvirt connection after undefining the domains. */
  async close(): Promise<void> {
    await this.stopSubmitting();
    for (const dom of this.domains) {
      await this.client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await this.client.close().catch(() => undefined);
  }
}

/** How many times the worker whose log lines (raw JSON) are `lines` started job `id`'s handler. */
export function runsOf(lines: readonly string[], id: string): number {
  return lines.filter((l) => l.includes(`job ${id} (`) && l.includes(': running')).length;
}

/** Asserts that every job in `jobs` completed and was run exactly once, per `lines`. */
export function assertEachRanOnce(jobs: readonly JobView[], lines: readonly string[]): void {
  for (const job of jobs) {
    assert.equal(job.state, 'completed', `job ${job.id}: ${JSON.stringify(job)}`);
    assert.equal(runsOf(lines, job.id), 1, `job ${job.id} ran ${runsOf(lines, job.id)} times`);
  }
}
