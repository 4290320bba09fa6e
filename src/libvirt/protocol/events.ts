/**
 * Unsolicited event messages (type MESSAGE, serial 0) of the REMOTE program,
 * routed by procedure number. An event missing here is reported as unknown,
 * never silently dropped.
 */
import { int, struct, type Codec, type Infer } from '../xdr/codec.js';
import { domain, nonnullString } from './types.js';

export const domainEventLifecycleMsg = struct({
  callbackID: int,
  msg: struct({ dom: domain, event: int, detail: int }),
});

/** Legacy BLOCK_JOB (event 8): carries the disk's source path, only for local non-empty sources. */
export const domainEventBlockJobMsg = struct({
  callbackID: int,
  msg: struct({ dom: domain, path: nonnullString, type: int, status: int }),
});

/** BLOCK_JOB_2 (event 16): carries the disk's target (`vda`). A flat struct. */
export const domainEventBlockJob2Msg = struct({
  callbackID: int,
  dom: domain,
  dst: nonnullString,
  type: int,
  status: int,
});

export type RemoteDomain = Infer<typeof domain>;

/** The events this client decodes, normalised. */
export type DomainEvent =
  | {
      kind: 'lifecycle';
      callbackId: number;
      dom: RemoteDomain;
      event: number;
      detail: number;
    }
  | {
      kind: 'blockJob';
      callbackId: number;
      dom: RemoteDomain;
      /** The disk target, e.g. `vda`. */
      disk: string;
      type: number;
      status: number;
    }
  | {
      kind: 'blockJobLegacy';
      callbackId: number;
      dom: RemoteDomain;
      /** The source path the job ran on (the *old* path after a pivot). */
      path: string;
      type: number;
      status: number;
    };

interface EventDecoder {
  readonly codec: Codec<never>;
  toEvent(v: never): DomainEvent | null;
}

function decoder<T>(codec: Codec<T>, toEvent: (v: T) => DomainEvent | null): EventDecoder {
  return { codec: codec as Codec<never>, toEvent: toEvent as (v: never) => DomainEvent | null };
}

export const EventProc = {
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  DOMAIN_EVENT_CALLBACK_BLOCK_JOB: 326,
  DOMAIN_EVENT_BLOCK_JOB_2: 339,
} as const;

export const domainEventDecoders: ReadonlyMap<number, EventDecoder> = new Map([
  [
    EventProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE,
    decoder(domainEventLifecycleMsg, (v) => ({
      kind: 'lifecycle',
      callbackId: v.callbackID,
      dom: v.msg.dom,
      event: v.msg.event,
      detail: v.msg.detail,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_BLOCK_JOB,
    decoder(domainEventBlockJobMsg, (v) => ({
      kind: 'blockJobLegacy',
      callbackId: v.callbackID,
      dom: v.msg.dom,
      path: v.msg.path,
      type: v.msg.type,
      status: v.msg.status,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_BLOCK_JOB_2,
    decoder(domainEventBlockJob2Msg, (v) => ({
      kind: 'blockJob',
      callbackId: v.callbackID,
      dom: v.dom,
      disk: v.dst,
      type: v.type,
      status: v.status,
    })),
  ],
]);
