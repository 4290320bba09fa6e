import { Field, ID, InputType } from '@nestjs/graphql';
import { IsArray, IsOptional, IsString } from 'class-validator';
import type { EventFilter } from '#src/events/event-filter.js';

/**
 * The filter of the events subscription: the same language as every other
 * channel (EventFilter), checked by checkEventFilter. Each list narrows the
 * events to those matching one of its entries; a list left out matches all.
 */
@InputType('EventFilterInput', {
  description:
    'Which events: each list given narrows them to those matching one of its entries; a list left out matches all',
})
export class EventFilterInput implements EventFilter {
  @Field(() => [String], { nullable: true, description: 'Host names' })
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  hosts?: string[];

  @Field(() => [String], { nullable: true, description: 'Domain names or UUIDs' })
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  domains?: string[];

  @Field(() => [String], {
    nullable: true,
    description: 'Event types, or wildcards: `*`, `domain.*`, `block-job.*`, `job.*`',
  })
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  types?: string[];

  @Field(() => [ID], {
    nullable: true,
    description: "Gateway job ids: a job's own events and the block-job events correlated to it",
  })
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  jobs?: string[];
}
