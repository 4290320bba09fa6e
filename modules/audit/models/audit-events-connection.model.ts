import { ObjectType } from '@nestjs/graphql';
import { connectionTypes } from '#src/graphql/connection.js';
import { AuditEventModel } from './audit-event.model.js';

@ObjectType('AuditEventsConnection')
export class AuditEventsConnection extends connectionTypes(AuditEventModel, 'AuditEvent') {}
