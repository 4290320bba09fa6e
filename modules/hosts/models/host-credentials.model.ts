/**
 * What the host view shows of a host's credentials: kinds, where they come
 * from, certificate subjects and expiry, host key fingerprints. Never a key,
 * a passphrase or a PEM.
 */
import { Field, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import type { CredentialSource } from '#src/hosts/host-credentials.js';

export const CREDENTIAL_SOURCES: readonly CredentialSource[] = [
  'stored',
  'file',
  'uri',
  'default',
  'agent',
  'none',
];
const CredentialSourceEnum = Object.fromEntries(CREDENTIAL_SOURCES.map((s) => [s, s]));
registerEnumType(CredentialSourceEnum, {
  name: 'CredentialSource',
  description:
    "stored: registered inline, kept encrypted; file: a file the registration names; uri: a file the URI names (pkipath, keyfile, known_hosts); default: libvirt's default place; agent: an ssh-agent",
});
const CREDENTIAL_KINDS = ['none', 'tls', 'ssh'] as const;
const CredentialKindEnum = Object.fromEntries(CREDENTIAL_KINDS.map((s) => [s, s]));
registerEnumType(CredentialKindEnum, {
  name: 'CredentialKind',
  description: 'What the transport authenticates with: none (unix, tcp), tls (x509), ssh',
});

const sourceProperty = (): PropertyDecorator => {
  const decorators = [
    ApiProperty({ enum: CREDENTIAL_SOURCES, example: 'stored' }),
    Field(() => CredentialSourceEnum),
  ];
  return (target, key) => decorators.forEach((d) => d(target, key));
};
const pathProperty = (): PropertyDecorator => {
  const decorators = [
    ApiProperty({
      type: String,
      nullable: true,
      description: 'The file, when the material is read from one',
      example: null,
    }),
    Field(() => String, { nullable: true }),
  ];
  return (target, key) => decorators.forEach((d) => d(target, key));
};

@ApiSchema({ name: 'CertificateInfo' })
@ObjectType('CertificateInfo')
export class CertificateInfoModel {
  @sourceProperty()
  source!: CredentialSource;

  @pathProperty()
  path!: string | null;

  @ApiProperty({ example: 'O=virtgate test, CN=virtgate-client' })
  @Field()
  subject!: string;

  @ApiProperty({ example: 'O=virtgate test, CN=virtgate test CA' })
  @Field()
  issuer!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-01T00:00:00.000Z' })
  @Field()
  notBefore!: string;

  @ApiProperty({ format: 'date-time', example: '2027-11-01T00:00:00.000Z' })
  @Field()
  notAfter!: string;

  @ApiProperty({
    type: 'integer',
    description: 'Whole days until notAfter, negative once expired',
    example: 334,
  })
  @Field(() => Int)
  daysLeft!: number;
}

@ApiSchema({ name: 'KeyInfo' })
@ObjectType('KeyInfo')
export class KeyInfoModel {
  @sourceProperty()
  source!: CredentialSource;

  @pathProperty()
  path!: string | null;

  @ApiProperty({ description: 'Whether the key is kept encrypted with a passphrase' })
  @Field()
  encrypted!: boolean;
}

@ApiSchema({ name: 'TlsCredentialsInfo' })
@ObjectType('TlsCredentialsInfo')
export class TlsCredentialsInfoModel {
  @ApiProperty({
    description:
      "false only where an admin set no_verify=1 on the host's URI: the server's certificate and name are not checked",
    example: true,
  })
  @Field()
  verifyServer!: boolean;

  @ApiProperty({ type: CertificateInfoModel })
  @Field(() => CertificateInfoModel)
  ca!: CertificateInfoModel;

  @ApiProperty({ type: CertificateInfoModel })
  @Field(() => CertificateInfoModel)
  clientCertificate!: CertificateInfoModel;

  @ApiProperty({ type: KeyInfoModel })
  @Field(() => KeyInfoModel)
  clientKey!: KeyInfoModel;
}

@ApiSchema({ name: 'SshKeyInfo' })
@ObjectType('SshKeyInfo')
export class SshKeyInfoModel extends KeyInfoModel {
  @ApiProperty({ type: String, nullable: true, example: 'ssh-ed25519' })
  @Field(() => String, { nullable: true })
  type!: string | null;
}

@ApiSchema({ name: 'KnownHostsInfo' })
@ObjectType('KnownHostsInfo')
export class KnownHostsInfoModel {
  @sourceProperty()
  source!: CredentialSource;

  @pathProperty()
  path!: string | null;
}

@ApiSchema({ name: 'SshHostKeys' })
@ObjectType('SshHostKeys')
export class SshHostKeysModel {
  @ApiProperty({
    type: [String],
    description: 'Pinned host key fingerprints (public: as `ssh-keygen -lf` prints them)',
    example: ['SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8'],
  })
  @Field(() => [String])
  fingerprints!: string[];

  @ApiProperty({ type: KnownHostsInfoModel, nullable: true })
  @Field(() => KnownHostsInfoModel, { nullable: true })
  knownHosts!: KnownHostsInfoModel | null;

  @ApiProperty({ description: 'Waiting for its first connection to pin the key it meets' })
  @Field()
  trustOnFirstUse!: boolean;
}

@ApiSchema({ name: 'SshCredentialsInfo' })
@ObjectType('SshCredentialsInfo')
export class SshCredentialsInfoModel {
  @ApiProperty({ example: 'root' })
  @Field()
  user!: string;

  @ApiProperty({ type: SshKeyInfoModel, nullable: true })
  @Field(() => SshKeyInfoModel, { nullable: true })
  privateKey!: SshKeyInfoModel | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  @Field(() => String, { nullable: true })
  agentSocket!: string | null;

  @ApiProperty({ type: SshHostKeysModel })
  @Field(() => SshHostKeysModel)
  hostKeys!: SshHostKeysModel;
}

@ApiSchema({ name: 'HostCredentials' })
@ObjectType('HostCredentials')
export class HostCredentialsModel {
  @ApiProperty({ enum: CREDENTIAL_KINDS, example: 'tls' })
  @Field(() => CredentialKindEnum)
  kind!: (typeof CREDENTIAL_KINDS)[number];

  @ApiProperty({ description: 'Whether credentials were registered with the host (encrypted)' })
  @Field()
  stored!: boolean;

  @ApiProperty({ type: TlsCredentialsInfoModel, nullable: true })
  @Field(() => TlsCredentialsInfoModel, { nullable: true })
  tls!: TlsCredentialsInfoModel | null;

  @ApiProperty({ type: SshCredentialsInfoModel, nullable: true })
  @Field(() => SshCredentialsInfoModel, { nullable: true })
  ssh!: SshCredentialsInfoModel | null;

  @ApiProperty({
    type: [String],
    description: `A certificate within 30 days of expiry or past it, verification turned off, a key not pinned yet`,
    example: [],
  })
  @Field(() => [String])
  warnings!: string[];

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Why the credentials cannot be used as they are (a file gone, a key that does not open)',
    example: null,
  })
  @Field(() => String, { nullable: true })
  error!: string | null;
}
