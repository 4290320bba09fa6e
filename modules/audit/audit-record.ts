import type { AuditEntry } from '#src/common/audit/audit-log.js';

/** An entry as kept on the stream: the entry with its address and time settled. */
export interface StoredAuditEntry extends AuditEntry {
  readonly address: string | null;
  readonly at: string;
}

/** The one field of a stream entry: the entry as JSON. */
export const ENTRY_FIELD = 'e';

/** A stream id (`<ms>-<seq>`), as the audit stream gives them. */
export const STREAM_ID = /^\d{1,15}-\d{1,20}$/;

/** The milliseconds part of a stream id: when the entry was written. */
export function streamIdTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}
