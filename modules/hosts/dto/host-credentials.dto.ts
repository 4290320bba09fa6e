/**
 * Host credentials as a registration or rotation gives them, for both
 * transports. Inline values are PEM or key text; `…File` names a file on the
 * gateway's machine under HOST_CREDENTIAL_DIRS. None of it is ever returned.
 */
import { Field, InputType } from '@nestjs/graphql';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsOptional,
  IsString,
  MaxLength,
  ValidateNested,
} from 'class-validator';

/** PEM and key texts are bounded: a CA bundle or a long known_hosts fits, a flood does not. */
const MAX_TEXT = 256 * 1024;
const MAX_PATH = 4096;

const text = (description: string): PropertyDecorator => {
  const decorators = [
    ApiPropertyOptional({ description, writeOnly: true }),
    Field(() => String, { nullable: true, description }),
    IsOptional(),
    IsString(),
    MaxLength(MAX_TEXT),
  ];
  return (target, key) => decorators.forEach((d) => d(target, key));
};

const file = (description: string): PropertyDecorator => {
  const decorators = [
    ApiPropertyOptional({ description, example: '/etc/pki/libvirt/clientcert.pem' }),
    Field(() => String, { nullable: true, description }),
    IsOptional(),
    IsString(),
    MaxLength(MAX_PATH),
  ];
  return (target, key) => decorators.forEach((d) => d(target, key));
};

@InputType('TlsCredentialsInput')
export class TlsCredentialsDto {
  @text('PEM of the CA certificate(s) that sign the server certificate')
  caCert?: string;

  @file('File with the CA certificate(s), instead of caCert')
  caCertFile?: string;

  @text('PEM of the client certificate libvirtd checks (tls_allowed_dn_list)')
  clientCert?: string;

  @file('File with the client certificate, instead of clientCert')
  clientCertFile?: string;

  @text('PEM of the client certificate private key')
  clientKey?: string;

  @file('File with the client key, instead of clientKey')
  clientKeyFile?: string;

  @text('Passphrase of an encrypted client key')
  keyPassphrase?: string;
}

@InputType('SshCredentialsInput')
export class SshCredentialsDto {
  @text('An OpenSSH, PEM or PPK private key')
  privateKey?: string;

  @file('File with the private key, instead of privateKey')
  privateKeyFile?: string;

  @text('Passphrase of an encrypted private key')
  passphrase?: string;

  @file('An ssh-agent socket to authenticate through, instead of a key')
  agentSocket?: string;

  @ApiPropertyOptional({
    type: [String],
    description:
      "Accepted host key fingerprints, as OpenSSH prints them (`ssh-keygen -lf`): the host's key must be one of them",
    example: ['SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8'],
  })
  @Field(() => [String], { nullable: true })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(100, { each: true })
  hostKeyFingerprints?: string[];

  @text('known_hosts text listing the host key (plain or hashed names, [host]:port)')
  knownHosts?: string;

  @file('A known_hosts file, instead of knownHosts')
  knownHostsFile?: string;

  @ApiPropertyOptional({
    description:
      'Trust on first use (registration only): with no fingerprint and no known_hosts, the gateway connects once, pins the host key it meets, and refuses any other from then on',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  trustOnFirstUse?: boolean;
}

@InputType('HostCredentialsInput')
export class HostCredentialsDto {
  @ApiPropertyOptional({ type: TlsCredentialsDto, description: 'For a qemu+tls:// URI' })
  @Field(() => TlsCredentialsDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => TlsCredentialsDto)
  tls?: TlsCredentialsDto;

  @ApiPropertyOptional({ type: SshCredentialsDto, description: 'For a qemu+ssh:// URI' })
  @Field(() => SshCredentialsDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => SshCredentialsDto)
  ssh?: SshCredentialsDto;
}
