import { ObjectType } from '@nestjs/graphql';
import { connectionTypes } from '#src/graphql/connection.js';
import { JobModel } from './job.model.js';

@ObjectType('JobsConnection')
export class JobsConnection extends connectionTypes(JobModel, 'Job') {}
