import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'Liveness' })
export class LivenessDto {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';
}

@ApiSchema({ name: 'RedisCheck' })
export class RedisCheckDto {
  @ApiProperty({ enum: ['up', 'down'] })
  status!: 'up' | 'down';

  @ApiProperty({ description: 'Time the check took, in milliseconds' })
  latencyMs!: number;

  @ApiPropertyOptional({ description: 'Why the check failed' })
  error?: string;
}

@ApiSchema({ name: 'LibvirtCheck' })
export class LibvirtCheckDto {
  @ApiProperty({ enum: ['up', 'down'] })
  status!: 'up' | 'down';

  @ApiProperty({
    description: 'The default libvirt host (LIBVIRT_DEFAULT_URI), password removed',
    example: 'qemu:///system',
  })
  uri!: string;

  @ApiPropertyOptional({ description: "libvirt's version on that host", example: '9.0.0' })
  libvirtVersion?: string;

  @ApiProperty({ description: 'Time the check took, in milliseconds' })
  latencyMs!: number;

  @ApiPropertyOptional({ description: 'Why the check failed' })
  error?: string;
}

@ApiSchema({ name: 'ReadinessChecks' })
export class ReadinessChecksDto {
  @ApiProperty({ type: RedisCheckDto })
  redis!: RedisCheckDto;

  @ApiProperty({ type: LibvirtCheckDto })
  libvirt!: LibvirtCheckDto;
}

@ApiSchema({ name: 'Readiness' })
export class ReadinessDto {
  @ApiProperty({ enum: ['ok', 'unavailable'] })
  status!: 'ok' | 'unavailable';

  @ApiProperty({ type: ReadinessChecksDto })
  checks!: ReadinessChecksDto;
}
