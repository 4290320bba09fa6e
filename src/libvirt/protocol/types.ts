/**
 * The data types of libvirt's REMOTE program (src/remote/remote_protocol.x,
 * "Data types"), declared once as codecs; their TypeScript shapes are inferred.
 */
import {
  array,
  double,
  fixedOpaque,
  hyper,
  int,
  optional,
  string,
  struct,
  uhyper,
  uint,
  union,
  type Codec,
  type Infer,
} from '../xdr/codec.js';

export const REMOTE_STRING_MAX = 4_194_304;
export const REMOTE_DOMAIN_LIST_MAX = 16_384;
export const REMOTE_DOMAIN_SNAPSHOT_LIST_MAX = 16_384;
export const REMOTE_STORAGE_POOL_LIST_MAX = 16_384;
export const REMOTE_STORAGE_VOL_LIST_MAX = 16_384;
export const REMOTE_AUTH_TYPE_LIST_MAX = 20;
export const REMOTE_NETWORK_LIST_MAX = 16_384;
export const REMOTE_INTERFACE_LIST_MAX = 16_384;
export const REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX = 16;
export const REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX = 262_144;
export const REMOTE_DOMAIN_STATS_PARAMS_MAX = 262_144;
export const VIR_UUID_BUFLEN = 16;

export const nonnullString = string(REMOTE_STRING_MAX);
/** `remote_string`: a string that may be NULL. */
export const optString = optional(nonnullString);
export const uuid = fixedOpaque(VIR_UUID_BUFLEN);

/** `remote_nonnull_domain`. `id` is -1 for an inactive domain. Send it back exactly as received. */
export const domain = struct({ name: nonnullString, uuid, id: int });
export type RemoteDomain = Infer<typeof domain>;

export const network = struct({ name: nonnullString, uuid });
export type RemoteNetwork = Infer<typeof network>;

/** `remote_nonnull_interface`: a host network interface. */
export const iface = struct({ name: nonnullString, mac: nonnullString });
export type RemoteInterface = Infer<typeof iface>;

export const storagePool = struct({ name: nonnullString, uuid });
export type RemoteStoragePool = Infer<typeof storagePool>;

/** `remote_nonnull_storage_vol`: `pool` is the pool's name. */
export const storageVol = struct({ pool: nonnullString, name: nonnullString, key: nonnullString });
export type RemoteStorageVol = Infer<typeof storageVol>;

export const domainSnapshot = struct({ name: nonnullString, dom: domain });
export type RemoteDomainSnapshot = Infer<typeof domainSnapshot>;

/** `remote_error`: the payload of a REPLY with status ERROR. All eleven fields, in wire order. */
export const remoteError = struct({
  code: int,
  domain: int,
  message: optString,
  level: int,
  dom: optional(domain),
  str1: optString,
  str2: optString,
  str3: optString,
  int1: int,
  int2: int,
  net: optional(network),
});
export type RemoteError = Infer<typeof remoteError>;

/** virTypedParameterType values, the discriminant of `remote_typed_param_value`. */
export const TypedParamType = {
  int: 1,
  uint: 2,
  llong: 3,
  ullong: 4,
  double: 5,
  boolean: 6,
  string: 7,
} as const;

/** `int b` in the .x file: any non-zero value is true. */
const intBool: Codec<boolean> = {
  encode: (w, v) => w.writeInt(v ? 1 : 0),
  decode: (r) => r.readInt() !== 0,
};

export const typedParamValue = union({
  [TypedParamType.int]: int,
  [TypedParamType.uint]: uint,
  [TypedParamType.llong]: hyper,
  [TypedParamType.ullong]: uhyper,
  [TypedParamType.double]: double,
  [TypedParamType.boolean]: intBool,
  [TypedParamType.string]: nonnullString,
});

export const typedParam = struct({ field: nonnullString, value: typedParamValue });
export type TypedParam = Infer<typeof typedParam>;

export function typedParams(max: number): Codec<TypedParam[]> {
  return array(typedParam, max);
}

/** A 64-bit integer as JSON can carry it: a number when exact, else its decimal string. */
export function int64ToJson(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v.toString();
}

export type TypedParamsRecord = Record<string, number | string | boolean>;

/**
 * Typed parameters as one plain, JSON-friendly object keyed by field name:
 * 64-bit values as numbers where exact (else decimal strings, see
 * `int64ToJson`), booleans as booleans. A repeated field keeps its last value.
 */
export function typedParamsToRecord(params: readonly TypedParam[]): TypedParamsRecord {
  return Object.fromEntries(
    params.map(({ field, value }) => [
      field,
      typeof value.value === 'bigint' ? int64ToJson(value.value) : value.value,
    ]),
  );
}
