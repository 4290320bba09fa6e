import {
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '#src/common/auth/access.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { ApiJobReplies, ApiPreferHeader } from './api-job-responses.decorator.js';
import { JOB_EXAMPLES } from './job-examples.js';
import { ListJobsQueryDto } from './dto/list-jobs-query.dto.js';
import { preferredWait, respondWithJob } from './job-response.js';
import { JobsService } from './jobs.service.js';
import { JobListModel, JobModel } from './models/job.model.js';

const JOB_ID = {
  name: 'id',
  description: 'The job id (a UUID)',
  example: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
};

@ApiTags('jobs')
@ApiProblemResponses(401, 429, 500, 503)
@Controller('v1/jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Access('viewer')
  @Get()
  @ApiOperation({
    summary: 'List jobs, newest first',
    description:
      'Filters combine. Finished jobs are listed for JOB_RETENTION_HOURS (7 days by default) after they end.',
  })
  @ApiOkResponse({ type: JobListModel })
  @ApiProblemResponses(400)
  listJobs(
    @CurrentCaller() caller: Caller,
    @Query() query: ListJobsQueryDto,
  ): Promise<JobListModel> {
    const { limit, cursor, ...filter } = query;
    return this.jobs.list(caller, filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
  }

  @Access('viewer')
  @Get(':id')
  @ApiOperation({
    summary: 'A job: its state, progress, result or error',
    description:
      'A finished job stays readable for JOB_RETENTION_HOURS (7 days by default) after it ends; then 404.',
  })
  @ApiParam(JOB_ID)
  @ApiOkResponse({
    type: JobModel,
    examples: {
      queued: JOB_EXAMPLES.queued,
      completed: JOB_EXAMPLES.completed,
      failed: JOB_EXAMPLES.failed,
    },
  })
  @ApiProblemResponses(400, 404)
  getJob(
    @CurrentCaller() caller: Caller,
    @Param('id', new ParseUUIDPipe()) id: string,
  ): Promise<JobModel> {
    return this.jobs.get(caller, id);
  }

  @Access('operator')
  @Delete(':id')
  @ApiOperation({
    summary: 'Cancel a job',
    description:
      'A queued job never starts (200, canceled). A running block job is aborted in libvirt without pivot, ' +
      'so the chain stays as it was: 202 with `cancelRequested: true` until the worker has done it (`Prefer: wait=N` ' +
      'waits up to N seconds for that: 200 with the canceled job). A pivoting block job, or a short job that is ' +
      'already running, cannot be stopped half-way (409).',
  })
  @ApiParam(JOB_ID)
  @ApiPreferHeader('end')
  @ApiOkResponse({ type: JobModel, description: 'The canceled job' })
  @ApiAcceptedResponse({ type: JobModel, description: 'A block job being canceled' })
  @ApiProblemResponses(400, 403, 404, 409)
  async cancelJob(
    @CurrentCaller() caller: Caller,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    let record = await this.jobs.cancel(caller, id);
    const wait = preferredWait(prefer);
    if (wait > 0 && !TERMINAL_STATES.has(record.state)) record = await this.jobs.wait(id, wait);
    void reply.status(TERMINAL_STATES.has(record.state) ? 200 : 202);
    return record;
  }

  @Access('operator')
  @Post(':id/pivot')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Pivot a block job that waits in ready',
    description:
      'For an active commit or a copy started with `pivot: false`: the worker switches the disk to the new image ' +
      '(state `pivoting`, then `completed` with the chain libvirt reports). Before libvirt reported the job ready ' +
      'it is 409 NOT_READY and the job goes on unchanged; a job that has no pivot, or has ended, is 409 INVALID_STATE. ' +
      '202 with the job; `Prefer: wait=N` waits up to N seconds and answers 200 with the finished job if it finished.',
  })
  @ApiParam(JOB_ID)
  @ApiPreferHeader()
  @ApiJobReplies('The job, asked to pivot', 'With Prefer: wait, the finished job')
  @ApiProblemResponses(400, 403, 404, 409)
  async pivotBlockJob(
    @CurrentCaller() caller: Caller,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const record = await this.jobs.pivot(caller, id);
    return respondWithJob(this.jobs, reply, { record, replayed: false }, prefer);
  }
}
