import { Field, InputType } from '@nestjs/graphql';
import { ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { DOMAIN_STATES, type DomainStateName } from '../domain-state.js';
import { DomainStateEnum } from '../models/domain.model.js';

/** Filters of a domain listing, shared by REST (query string) and GraphQL (input). */
@InputType('DomainFilter')
export class DomainFilterDto {
  @ApiPropertyOptional({ enum: DOMAIN_STATES, description: 'Only domains in this state' })
  @Field(() => DomainStateEnum, { nullable: true })
  @IsOptional()
  @IsIn(DOMAIN_STATES)
  state?: DomainStateName;

  @ApiPropertyOptional({ description: 'Only domains whose name starts with this', example: 'web-' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  namePrefix?: string;

  @ApiPropertyOptional({ description: 'true: persistent domains only; false: transient only' })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' ? true : value === 'false' ? false : value,
  )
  @IsBoolean()
  persistent?: boolean;
}

/** The query string of GET /v1/hosts/{host}/domains: the filter and the page. */
export class ListDomainsQueryDto extends IntersectionType(PageQueryDto, DomainFilterDto) {}

export class XmlQueryDto {
  @ApiPropertyOptional({ description: 'true: the persistent definition instead of the live XML' })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' ? true : value === 'false' ? false : value,
  )
  @IsBoolean()
  inactive?: boolean;
}
