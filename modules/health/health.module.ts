import { Module } from '@nestjs/common';
import { HealthController } from './health.controller.js';
import { HealthService } from './health.service.js';
import { LibvirtProbe } from './libvirt-probe.js';

/** GET /health/live and /health/ready, public. */
@Module({
  controllers: [HealthController],
  providers: [HealthService, LibvirtProbe],
})
export class HealthModule {}
