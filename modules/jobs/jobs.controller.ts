import { Controller, Delete, Get, Param, ParseUUIDPipe, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { ListJobsQueryDto } from './dto/list-jobs-query.dto.js';
import { JobsService } from './jobs.service.js';
import { JobListModel, JobModel } from './models/job.model.js';

const JOB_ID = {
  name: 'id',
  description: 'The job id (a UUID)',
  example: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
};

@ApiTags('jobs')
@ApiProblemResponses(401, 500)
@Controller('v1/jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Get()
  @ApiOperation({ summary: 'List jobs, newest first', description: 'Filters combine.' })
  @ApiOkResponse({ type: JobListModel })
  @ApiProblemResponses(400)
  listJobs(@Query() query: ListJobsQueryDto): Promise<JobListModel> {
    const { limit, cursor, ...filter } = query;
    return this.jobs.list(filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A job: its state, progress, result or error' })
  @ApiParam(JOB_ID)
  @ApiOkResponse({ type: JobModel })
  @ApiProblemResponses(400, 404)
  getJob(@Param('id', new ParseUUIDPipe()) id: string): Promise<JobModel> {
    return this.jobs.get(id);
  }

  @Delete(':id')
  @ApiOperation({
    summary: 'Cancel a job',
    description:
      'A queued job never starts. A short job that is already running cannot be stopped half-way (409).',
  })
  @ApiParam(JOB_ID)
  @ApiOkResponse({ type: JobModel, description: 'The canceled job' })
  @ApiProblemResponses(400, 404, 409)
  cancelJob(
    @CurrentCaller() caller: Caller,
    @Param('id', new ParseUUIDPipe()) id: string,
  ): Promise<JobModel> {
    return this.jobs.cancel(caller, id);
  }
}
