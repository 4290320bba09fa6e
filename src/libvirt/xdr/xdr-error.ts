/** Data that does not decode (or a value that cannot be encoded) as the XDR schema says. */
export class XdrError extends Error {
  override readonly name = 'XdrError';
}
