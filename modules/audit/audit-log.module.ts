import { Global, Module } from '@nestjs/common';
import { AUDIT_LOG } from '#src/common/audit/audit-log.js';
import { RedisAuditLog } from './audit-log.service.js';

/**
 * The AuditLog (AUDIT_LOG), for every part of a process that records: the
 * job submitter, the features, the global guard and filter. Global, in both
 * roles; it holds no controller, resolver or model (the worker loads it).
 */
@Global()
@Module({
  providers: [RedisAuditLog, { provide: AUDIT_LOG, useExisting: RedisAuditLog }],
  exports: [AUDIT_LOG],
})
export class AuditLogModule {}
