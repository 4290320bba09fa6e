/**
 * Input pieces several features' DTOs share, declared once for validation,
 * OpenAPI and GraphQL alike.
 */
import { applyDecorators } from '@nestjs/common';
import { Field, registerEnumType } from '@nestjs/graphql';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { ABSOLUTE_PATH, IMAGE_FORMATS, type ImageFormat } from '../input-rules.js';

export const ImageFormatEnum = Object.fromEntries(IMAGE_FORMATS.map((f) => [f, f])) as Record<
  ImageFormat,
  ImageFormat
>;
registerEnumType(ImageFormatEnum, { name: 'ImageFormat' });

/** An optional absolute path on the host, the same in REST (OpenAPI, validation) and GraphQL. */
export function OptionalHostPath(doc: { description: string; example: string }): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional(doc),
    Field(() => String, { nullable: true }),
    IsOptional(),
    IsString(),
    MaxLength(4096),
    Matches(ABSOLUTE_PATH, { message: 'path must be an absolute path' }),
  );
}

/** An optional image format (qcow2, raw), the same in REST and GraphQL. */
export function OptionalImageFormat(doc: {
  description?: string;
  default?: string;
}): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ enum: IMAGE_FORMATS, ...doc }),
    Field(() => ImageFormatEnum, { nullable: true }),
    IsOptional(),
    IsIn(IMAGE_FORMATS),
  );
}

/**
 * The body of an operation that takes no options: none, or an empty object
 * (the handler still validates with its DTO, and refuses any field).
 */
export const NO_OPTIONS_BODY = {
  required: false,
  description: 'No options: no body, or an empty object',
  schema: {
    title: 'NoOptions',
    type: 'object',
    additionalProperties: false,
    maxProperties: 0,
  },
} as const;
