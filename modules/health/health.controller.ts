import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '#src/common/decorators/public.decorator.js';
import { LivenessDto, ReadinessDto } from './dto/health.dto.js';
import { HealthService } from './health.service.js';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('live')
  @ApiOperation({ summary: 'The process is running' })
  @ApiOkResponse({ type: LivenessDto })
  getLiveness(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'Redis and the default libvirt host answer (each check within 2 s)' })
  @ApiOkResponse({
    type: ReadinessDto,
    description:
      'Every dependency answers (`degraded`: and the gateway recovers from a loss of Redis data)',
  })
  @ApiServiceUnavailableResponse({
    type: ReadinessDto,
    description: 'A dependency does not answer; see checks',
  })
  async getReadiness(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessDto> {
    const readiness = await this.health.readiness();
    void reply.status(
      readiness.status === 'unavailable' ? HttpStatus.SERVICE_UNAVAILABLE : HttpStatus.OK,
    );
    return readiness;
  }
}
