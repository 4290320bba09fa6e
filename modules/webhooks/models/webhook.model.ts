import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { EVENT_TYPE_NAMES } from '#src/events/event-types.js';

@ApiSchema({ name: 'WebhookFilterView' })
export class WebhookFilterModel {
  @ApiProperty({ type: [String], nullable: true, description: 'null: every host' })
  hosts!: string[] | null;
  @ApiProperty({ type: [String], nullable: true, description: 'null: every domain' })
  domains!: string[] | null;
  @ApiProperty({ type: [String], nullable: true, description: 'null: every type' })
  types!: string[] | null;
  @ApiProperty({ type: [String], nullable: true, description: 'null: every job' })
  jobs!: string[] | null;
}

@ApiSchema({ name: 'Webhook' })
export class WebhookModel {
  @ApiProperty({ example: 'wh_3kQ9xZ1bP0aR' })
  id!: string;
  @ApiProperty({ example: 'https://hooks.example.com/virtgate' })
  url!: string;
  @ApiProperty({ type: WebhookFilterModel })
  filter!: WebhookFilterModel;
  @ApiProperty()
  active!: boolean;
  @ApiProperty({ example: 'CMDB sync' })
  description!: string;
  @ApiProperty({ description: 'The id of the token that made it', example: 'admin' })
  createdBy!: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T23:00:00.000Z' })
  createdAt!: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T23:00:00.000Z' })
  updatedAt!: string;
  @ApiProperty({
    type: String,
    enum: ['manual', 'gone', 'failures'],
    nullable: true,
    description:
      'Why it is inactive: turned off (manual), its receiver answered 410 (gone), or WEBHOOK_DISABLE_AFTER_FAILURES deliveries failed in a row (failures)',
  })
  disabledReason!: 'manual' | 'gone' | 'failures' | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  disabledAt!: string | null;
  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'Deliveries failed in a row (retries exhausted); a success resets it',
  })
  consecutiveFailures!: number;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the secret was last rotated',
  })
  secretRotatedAt!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Until when deliveries also carry a signature with the secret before the rotation',
  })
  previousSecretExpiresAt!: string | null;
}

@ApiSchema({ name: 'CreatedWebhook' })
export class CreatedWebhookModel extends WebhookModel {
  @ApiProperty({
    description:
      'The signing secret (Standard Webhooks: whsec_ + base64): shown only in this answer, stored only encrypted',
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  })
  secret!: string;
}

@ApiSchema({ name: 'WebhookList' })
export class WebhookListModel {
  @ApiProperty({ type: [WebhookModel] })
  items!: WebhookModel[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'WebhookSecret' })
export class WebhookSecretModel {
  @ApiProperty({ description: 'The new signing secret: shown only in this answer' })
  secret!: string;
  @ApiProperty({
    format: 'date-time',
    description:
      'Until then (WEBHOOK_ROTATION_GRACE_SECONDS) deliveries carry two signatures: with the new secret and the old one',
  })
  previousSecretExpiresAt!: string;
}

@ApiSchema({ name: 'WebhookDelivery' })
export class DeliveryAttemptModel {
  @ApiProperty({ description: 'The log entry (one attempt)', example: '1796204112225-0' })
  id!: string;
  @ApiProperty({
    description:
      'The delivery (one event to this webhook): its webhook-id header, the same across retries',
    example: 'dlv_q3M0c2V4ZmFzZGZhc2Rm',
  })
  deliveryId!: string;
  @ApiProperty({ example: '1796204112225-0' })
  eventId!: string;
  @ApiProperty({ enum: EVENT_TYPE_NAMES, enumName: 'EventType', example: 'domain.started' })
  eventType!: string;
  @ApiProperty({
    type: 'integer',
    minimum: 1,
    description: '1 for the first attempt of a delivery (or redelivery)',
  })
  attempt!: number;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T23:00:00.000Z' })
  at!: string;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null: no answer came' })
  statusCode!: number | null;
  @ApiProperty({ type: 'integer', minimum: 0 })
  latencyMs!: number;
  @ApiProperty({ type: String, nullable: true })
  error!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The first 1 KiB of the answer, as text',
  })
  responseBody!: string | null;
  @ApiProperty()
  success!: boolean;
  @ApiProperty({ description: 'Whether another attempt follows, by WEBHOOK_RETRY_SCHEDULE' })
  willRetry!: boolean;
  @ApiProperty({ description: 'Whether it is an attempt of a redelivery asked for' })
  redelivery!: boolean;
}

@ApiSchema({ name: 'WebhookDeliveryList' })
export class DeliveryAttemptListModel {
  @ApiProperty({ type: [DeliveryAttemptModel], description: 'Newest first' })
  items!: DeliveryAttemptModel[];
  @ApiProperty({ type: String, nullable: true })
  nextCursor!: string | null;
}

@ApiSchema({ name: 'WebhookRedelivery' })
export class RedeliveryModel {
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Deliveries queued' })
  queued!: number;
  @ApiProperty({ type: [String], description: 'Their delivery ids (at most the first 100)' })
  deliveryIds!: string[];
  @ApiProperty({
    description:
      'True when the range held more matching events than one request queues (10,000): ask again from after the last',
  })
  truncated!: boolean;
  @ApiProperty({ type: String, nullable: true, description: 'The id of the last event queued' })
  lastEventId!: string | null;
}
