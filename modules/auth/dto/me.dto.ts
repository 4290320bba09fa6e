import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { CALLER_ROLES, type CallerRole } from '#src/common/auth/caller.js';

@ApiSchema({ name: 'Me' })
export class MeDto {
  @ApiProperty({ description: "The token owner's id", example: 'admin' })
  id!: string;

  @ApiProperty({ enum: CALLER_ROLES })
  role!: CallerRole;
}
