import { Field, InputType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { HostCredentialsDto } from './host-credentials.dto.js';

export const HOST_NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

@InputType('CreateHostInput')
export class CreateHostDto {
  @ApiProperty({
    description:
      'Lower-case letters, digits, ".", "_" and "-", 1-63 characters, starting and ending with a letter or digit',
    example: 'hv01',
  })
  @Field()
  @IsString()
  @Matches(HOST_NAME_PATTERN, {
    message:
      'name must be 1-63 lower-case letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
  })
  name!: string;

  @ApiProperty({
    description:
      'A libvirt URI: qemu:///system, qemu+unix:///system?socket=PATH, qemu+tls://HOST[:PORT]/system[?pkipath=DIR&no_verify=1], qemu+ssh://USER@HOST[:PORT]/system[?keyfile=PATH&known_hosts=PATH&proxy=auto|netcat|native&socket=PATH], qemu+tcp://HOST[:PORT]/system, test+tcp://HOST/default',
    example: 'qemu+tls://hv01.example.net/system',
  })
  @Field()
  @IsString()
  @MaxLength(2048)
  uri!: string;

  @ApiPropertyOptional({
    type: HostCredentialsDto,
    description:
      "What the TLS or SSH transport authenticates with, inline or as files under HOST_CREDENTIAL_DIRS; kept encrypted (needs VIRTGATE_SECRETS_KEY), never returned. Absent: the files the URI names (pkipath, keyfile, known_hosts) or libvirt's default places",
  })
  @Field(() => HostCredentialsDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => HostCredentialsDto)
  credentials?: HostCredentialsDto;
}

@InputType('UpdateHostInput')
export class UpdateHostDto {
  @ApiPropertyOptional({
    description:
      'A new libvirt URI: the connections to the old one are dropped at once (calls in flight fail)',
    example: 'qemu+tls://hv01.example.net/system',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  uri?: string;

  @ApiPropertyOptional({
    type: HostCredentialsDto,
    description:
      'Replaces the registered credentials as a whole: connections opened from now on, in every process, use them; the open ones go on',
  })
  @Field(() => HostCredentialsDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => HostCredentialsDto)
  credentials?: HostCredentialsDto;

  @ApiPropertyOptional({
    description:
      "true removes the registered credentials: new connections use what the URI names or libvirt's default places",
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  removeCredentials?: boolean;
}
