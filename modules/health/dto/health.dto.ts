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

@ApiSchema({ name: 'RecoveryCheck' })
export class RecoveryCheckDto {
  @ApiProperty({
    enum: ['ok', 'recovering'],
    description:
      "`recovering` while the gateway restores what Redis lost (its marker key was gone): the admin token and the default host registered again, running jobs re-recorded, the hosts' block jobs reconciled",
  })
  status!: 'ok' | 'recovering';

  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    description:
      'When this process last noticed a loss of Redis data (null: never since it started)',
  })
  lastLossAt!: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    description: "When this process's part of that recovery was done",
  })
  recoveredAt!: string | null;
}

@ApiSchema({ name: 'CredentialWarning' })
export class CredentialWarningDto {
  @ApiProperty({ example: 'edge1' })
  host!: string;

  @ApiProperty({
    example:
      'the client certificate (O=example, CN=gateway) expires in 12 days, on 2026-12-14T00:00:00.000Z',
  })
  message!: string;
}

@ApiSchema({ name: 'CredentialsCheck' })
export class CredentialsCheckDto {
  @ApiProperty({
    enum: ['ok', 'warning'],
    description:
      "`warning` when a host's certificate is within 30 days of expiry or past it, or its credentials cannot be read; readiness itself is not changed by it",
  })
  status!: 'ok' | 'warning';

  @ApiProperty({ type: [CredentialWarningDto] })
  warnings!: CredentialWarningDto[];
}

@ApiSchema({ name: 'ReadinessChecks' })
export class ReadinessChecksDto {
  @ApiProperty({ type: RedisCheckDto })
  redis!: RedisCheckDto;

  @ApiProperty({ type: LibvirtCheckDto })
  libvirt!: LibvirtCheckDto;

  @ApiProperty({ type: RecoveryCheckDto })
  recovery!: RecoveryCheckDto;

  @ApiProperty({ type: CredentialsCheckDto })
  credentials!: CredentialsCheckDto;
}

@ApiSchema({ name: 'Readiness' })
export class ReadinessDto {
  @ApiProperty({
    enum: ['ok', 'degraded', 'unavailable'],
    description:
      '`degraded` (still 200): everything answers, and the gateway is restoring what Redis lost; `unavailable` (503): a dependency does not answer',
  })
  status!: 'ok' | 'degraded' | 'unavailable';

  @ApiProperty({ type: ReadinessChecksDto })
  checks!: ReadinessChecksDto;
}
