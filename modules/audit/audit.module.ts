import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller.js';
import { AuditResolver } from './audit.resolver.js';
import { AuditService } from './audit.service.js';

/**
 * The audit trail over REST and GraphQL, for admins (the api role). What
 * writes it is AuditLogModule, in both roles.
 */
@Module({
  controllers: [AuditController],
  providers: [AuditService, AuditResolver],
})
export class AuditModule {}
