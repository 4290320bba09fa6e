/**
 * A pure-TypeScript client of libvirt's remote RPC protocol. It depends on
 * nothing but Node itself (and ssh2, pure JavaScript, for qemu+ssh://): no
 * NestJS, no native bindings.
 */
export { LibvirtClient, type ConnectOptions, type ClientFeatures } from './client.js';
export * from './errors.js';
export * from './protocol/constants.js';
export {
  ErrorNumber,
  errorNumberName,
  errorDomainName,
  type ErrorNumberName,
} from './protocol/error-codes.js';
export { EventProc, type DomainEvent, type DomainEventKind } from './protocol/events.js';
export {
  procedures,
  type ProcedureName,
  type ProcArgs,
  type ProcRet,
  type RpcCalls,
  type DomainInfo,
  type NodeInfo,
  type BlockJobInfo,
} from './protocol/procedures.js';
export {
  TypedParamType,
  int64ToJson,
  typedParamsToRecord,
  type TypedParamsRecord,
  type RemoteDomain,
  type RemoteStoragePool,
  type RemoteStorageVol,
  type RemoteDomainSnapshot,
  type TypedParam,
} from './protocol/types.js';
export { RpcConnection, type CallOptions } from './rpc/connection.js';
export { UnixTransport, TcpTransport, type Transport } from './transport/transport.js';
export { TlsTransport, tlsCredentialPaths, tlsCredentialsFromUri } from './transport/tls.js';
export {
  SshTransport,
  sshCredentialsFromUri,
  type SshDefaultsContext,
  type SshTarget,
  type SshTransportOptions,
} from './transport/ssh.js';
export { hostKeyFingerprint } from './transport/host-keys.js';
export type {
  SshCredentials,
  TlsCredentials,
  TransportCredentials,
} from './transport/credentials.js';
export { parseLibvirtUri, redactUri, type LibvirtUri } from './uri.js';
export * from './helpers.js';
