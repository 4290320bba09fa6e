/**
 * The shapes of names and paths clients give, shared by several features:
 * plain values, for the request-time rules and for the DTOs that declare them
 * (common/dto/input-fields.ts).
 */

/** An absolute path (no NUL): how a client names a file on a host. */
export const ABSOLUTE_PATH = /^\/[^\0]*$/;

/** The image formats the gateway creates and names. */
export const IMAGE_FORMATS = ['qcow2', 'raw'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Pool and volume names: a volume's name is its file name in a dir pool. */
export const STORAGE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
export const STORAGE_NAME_RULE =
  'must be 1-128 letters, digits, ".", "_", "+" or "-", starting with a letter or digit';
