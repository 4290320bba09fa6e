import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import {
  AUDIT_LOG,
  audited,
  type AuditAction,
  type AuditDetail,
  type AuditLog,
} from '#src/common/audit/audit-log.js';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { CreateWebhookDto, RedeliverRangeDto, UpdateWebhookDto } from './dto/webhook.dto.js';
import {
  CreatedWebhookModel,
  DeliveryAttemptListModel,
  RedeliveryModel,
  WebhookListModel,
  WebhookModel,
  WebhookSecretModel,
} from './models/webhook.model.js';
import type { WebhookRecord } from './webhook-store.js';
import { WebhooksService, type Redelivery } from './webhooks.service.js';

const ID = { name: 'id', description: 'The webhook id', example: 'wh_3kQ9xZ1bP0aR' };

/** What the API shows of a webhook: never its secrets, its owner's scopes aside. */
function viewOf(record: WebhookRecord): WebhookModel {
  const { filter } = record;
  return {
    id: record.id,
    url: record.url,
    filter: {
      hosts: filter.hosts ? [...filter.hosts] : null,
      domains: filter.domains ? [...filter.domains] : null,
      types: filter.types ? [...filter.types] : null,
      jobs: filter.jobs ? [...filter.jobs] : null,
    },
    active: record.active,
    description: record.description,
    createdBy: record.owner.id,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    disabledReason: record.disabledReason,
    disabledAt: record.disabledAt,
    consecutiveFailures: record.consecutiveFailures,
    secretRotatedAt: record.secretRotatedAt,
    previousSecretExpiresAt: record.previousSecretExpiresAt,
  };
}

/** Where a URL goes, for the audit trail (its path and query may hold a receiver's token). */
function originOf(url: string | undefined): string | null {
  return url !== undefined && URL.canParse(url) ? new URL(url).origin : null;
}

@ApiTags('webhooks')
@ApiProblemResponses(401, 429, 403, 500, 503)
@Access('admin')
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(
    private readonly webhooks: WebhooksService,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  /** Webhook changes go to the audit trail, refusals too (never a secret, only the URL's origin). */
  private audited<T>(
    caller: Caller,
    action: Extract<AuditAction, `webhook.${string}`>,
    target: (result: T | null) => string | null,
    detail: AuditDetail,
    run: () => Promise<T>,
  ): Promise<T> {
    return audited(this.audit, caller, action, target, detail, run);
  }

  @Post()
  @ApiOperation({
    summary: 'Make a webhook (admin): its signing secret is shown once',
    description:
      'Deliveries of the events its filter matches (of those the caller may see) are POSTed to `url`, signed as the ' +
      'Standard Webhooks specification defines (webhook-id, webhook-timestamp, webhook-signature). The URL must be ' +
      'http(s) without credentials, and its name must resolve only to allowed addresses (400 naming the address ' +
      'otherwise). Needs VIRTGATE_SECRETS_KEY on the gateway (409 otherwise). Only events after its creation are sent.',
  })
  @ApiCreatedResponse({ type: CreatedWebhookModel })
  @ApiProblemResponses(400, 409)
  async createWebhook(
    @CurrentCaller() caller: Caller,
    @Body() body: CreateWebhookDto,
  ): Promise<CreatedWebhookModel> {
    const { record, secret } = await this.audited(
      caller,
      'webhook.create',
      (r) => (r ? `webhook:${r.record.id}` : null),
      { destination: originOf(body.url), active: body.active ?? true },
      () => this.webhooks.create(caller, body),
    );
    return { ...viewOf(record), secret };
  }

  @Get()
  @ApiOperation({ summary: 'List webhooks (admin), never their secrets' })
  @ApiOkResponse({ type: WebhookListModel })
  @ApiProblemResponses(400)
  async listWebhooks(
    @CurrentCaller() caller: Caller,
    @Query() query: PageQueryDto,
  ): Promise<WebhookListModel> {
    const page = await this.webhooks.list(caller, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
    return { items: page.items.map(viewOf), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'A webhook (admin), never its secret' })
  @ApiParam(ID)
  @ApiOkResponse({ type: WebhookModel })
  @ApiProblemResponses(404)
  async getWebhook(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
  ): Promise<WebhookModel> {
    return viewOf(await this.webhooks.get(caller, id));
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change a webhook (admin): URL, filter, active, description',
    description:
      'A new URL is checked as at creation. `active: true` enables a disabled webhook again (its failure count ' +
      'starts over; events from while it was disabled are not sent: redeliver them by time range).',
  })
  @ApiParam(ID)
  @ApiOkResponse({ type: WebhookModel })
  @ApiProblemResponses(400, 404)
  async updateWebhook(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
    @Body() body: UpdateWebhookDto,
  ): Promise<WebhookModel> {
    const detail: Record<string, string | boolean | null> = {
      fields: Object.keys(body)
        .filter((k) => body[k as keyof UpdateWebhookDto] !== undefined)
        .join(','),
    };
    if (body.url !== undefined) detail.destination = originOf(body.url);
    if (body.active !== undefined) detail.active = body.active;
    const record = await this.audited(
      caller,
      'webhook.update',
      () => `webhook:${id}`,
      detail,
      () => this.webhooks.update(caller, id, body),
    );
    return viewOf(record);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete a webhook (admin), with its delivery log; queued deliveries are dropped',
  })
  @ApiParam(ID)
  @ApiNoContentResponse()
  @ApiProblemResponses(404)
  async deleteWebhook(@CurrentCaller() caller: Caller, @Param('id') id: string): Promise<void> {
    await this.audited(
      caller,
      'webhook.delete',
      () => `webhook:${id}`,
      {},
      () => this.webhooks.delete(caller, id),
    );
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiOperation({
    summary: "Rotate a webhook's signing secret (admin): the new one is shown once",
    description:
      'Until `previousSecretExpiresAt` (WEBHOOK_ROTATION_GRACE_SECONDS) deliveries carry two signatures, space-separated: ' +
      'with the new secret, then the old one, so a receiver can switch without missing a delivery.',
  })
  @ApiParam(ID)
  @ApiOkResponse({ type: WebhookSecretModel })
  @ApiProblemResponses(404, 409)
  rotateWebhookSecret(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
  ): Promise<WebhookSecretModel> {
    return this.audited(
      caller,
      'webhook.update',
      () => `webhook:${id}`,
      { fields: 'secret' },
      () => this.webhooks.rotate(caller, id),
    );
  }

  @Get(':id/deliveries')
  @ApiOperation({
    summary: "A webhook's delivery log (admin): every attempt, newest first",
    description:
      'Time, response status, latency, error and the first 1 KiB of the answer of each attempt, with its event and ' +
      'delivery id. The last WEBHOOK_DELIVERY_LOG_SIZE attempts are kept.',
  })
  @ApiParam(ID)
  @ApiOkResponse({ type: DeliveryAttemptListModel })
  @ApiProblemResponses(400, 404)
  listWebhookDeliveries(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
    @Query() query: PageQueryDto,
  ): Promise<DeliveryAttemptListModel> {
    return this.webhooks.deliveries(caller, id, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Post(':id/deliveries/:deliveryId/redeliver')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Deliver one delivery of the log again (admin)',
    description:
      'Its event, with the same webhook-id (a receiver that deduplicates keeps one), in a new run of attempts. ' +
      '410 CURSOR_EXPIRED when the event is no longer retained; 409 when the webhook is disabled.',
  })
  @ApiParam(ID)
  @ApiParam({ name: 'deliveryId', example: 'dlv_q3M0c2V4ZmFzZGZhc2Rm' })
  @ApiAcceptedResponse({ type: RedeliveryModel })
  @ApiProblemResponses(404, 409, 410)
  redeliverWebhookDelivery(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
    @Param('deliveryId') deliveryId: string,
  ): Promise<Redelivery> {
    return this.audited(
      caller,
      'webhook.update',
      () => `webhook:${id}`,
      { redeliver: deliveryId.slice(0, 64) },
      () => this.webhooks.redeliverOne(caller, id, deliveryId),
    );
  }

  @Post(':id/redeliver')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Deliver again every retained event of a time range that the webhook gets (admin)',
    description:
      'The events at or after `since` and at or before `until` (default now) that its filter matches, each in a ' +
      'new run of attempts, at most 10,000 per request (`truncated`: ask again from after `lastEventId`).',
  })
  @ApiParam(ID)
  @ApiAcceptedResponse({ type: RedeliveryModel })
  @ApiProblemResponses(400, 404, 409)
  redeliverWebhookRange(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
    @Body() body: RedeliverRangeDto,
  ): Promise<Redelivery> {
    return this.audited(
      caller,
      'webhook.update',
      () => `webhook:${id}`,
      { redeliverSince: body.since, redeliverUntil: body.until ?? null },
      () => this.webhooks.redeliverRange(caller, id, body.since, body.until),
    );
  }
}
