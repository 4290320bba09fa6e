import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { ErrorCode } from '../errors/app-error.js';
import type { ProblemDetails } from '../errors/problem-details.js';

/** OpenAPI schema of every error body (RFC 9457 problem details). */
@ApiSchema({ name: 'FieldError' })
export class FieldErrorDto {
  @ApiProperty({ example: 'limit' })
  field!: string;

  @ApiProperty({ example: 'limit must not be greater than 500' })
  message!: string;
}

@ApiSchema({ name: 'ProblemDetails' })
export class ProblemDetailsDto implements ProblemDetails {
  @ApiProperty({ example: 'urn:virtgate:problem:not-found' })
  type!: string;

  @ApiProperty({ example: 'Not found' })
  title!: string;

  @ApiProperty({ type: 'integer', minimum: 400, maximum: 599, example: 404 })
  status!: number;

  @ApiProperty({
    example: "libvirt: Domain not found: no domain with matching name 'vm1' (VIR_ERR_NO_DOMAIN)",
  })
  detail!: string;

  @ApiProperty({ description: 'Path of the request', example: '/v1/me' })
  instance!: string;

  @ApiProperty({ enum: ErrorCode, enumName: 'ErrorCode', description: 'Stable error code' })
  code!: ErrorCode;

  @ApiProperty({
    description: 'The request id (X-Request-Id), also in every log line of the request',
  })
  requestId!: string;

  @ApiPropertyOptional({
    type: [FieldErrorDto],
    description: 'For INVALID_ARGUMENT: each invalid field and why',
  })
  errors?: FieldErrorDto[];

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description:
      'For CURSOR_EXPIRED: the oldest event id retained (null: none); list again, then resume from it',
    example: '1796204112225-0',
  })
  oldestEventId?: string | null;
}
