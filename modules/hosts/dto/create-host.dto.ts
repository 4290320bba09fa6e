import { Field, InputType } from '@nestjs/graphql';
import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches, MaxLength } from 'class-validator';

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
      'A libvirt URI: qemu:///system, qemu+unix:///system?socket=PATH, qemu+tcp://HOST[:PORT]/system, test+tcp://HOST/default',
    example: 'qemu+tcp://10.0.0.5/system',
  })
  @Field()
  @IsString()
  @MaxLength(2048)
  uri!: string;
}
