import type { AuditAction, AuditResult } from '#src/common/audit/audit-log.js';

/** The filters of an audit listing; they combine. */
export interface AuditFilter {
  actor?: string;
  action?: AuditAction;
  target?: string;
  host?: string;
  result?: AuditResult;
  requestId?: string;
  address?: string;
  /** ISO 8601: entries at or after. */
  since?: string;
  /** ISO 8601: entries at or before. */
  until?: string;
}
