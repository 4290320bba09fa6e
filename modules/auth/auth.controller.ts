import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { MeDto } from './dto/me.dto.js';

@ApiTags('auth')
@ApiProblemResponses(401, 429, 500, 503)
@Controller('v1')
export class AuthController {
  @Access('viewer')
  @Get('me')
  @ApiOperation({ summary: 'Who the bearer token belongs to' })
  @ApiOkResponse({ type: MeDto })
  getMe(@CurrentCaller() caller: Caller): MeDto {
    return { id: caller.id, role: caller.role };
  }
}
