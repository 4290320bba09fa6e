/**
 * IP addresses and CIDR ranges as numbers, for the destination checks of
 * outgoing requests (webhooks, job callbacks). Node only: the configuration
 * parses its CIDR lists with it, and so does the destination policy.
 */
import { isIP } from 'node:net';

/** An address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

/** A range: the addresses whose first `bits` bits are those of `base`. */
export interface Cidr extends IpAddress {
  bits: number;
  /** As written in a configuration (`10.0.0.0/8`, `fd00::/8`). */
  text: string;
}

function ipv4Value(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6Value(text: string): bigint {
  let s = text;
  const dotted = s.lastIndexOf(':');
  const tail = s.slice(dotted + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Value(tail);
    s = `${s.slice(0, dotted + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = s.split('::');
  const first = head === '' ? [] : head.split(':');
  const last = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? first
      : [...first, ...new Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * An address (`127.0.0.1`, `::1`, `fe80::1%eth0`), or null when it is none.
 * An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it
 * maps: the connection goes there.
 */
export function parseIp(text: string): IpAddress | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = bare.indexOf('%');
  const address = zone >= 0 ? bare.slice(0, zone) : bare;
  const family = isIP(address);
  if (family === 4) return { family: 4, value: ipv4Value(address) };
  if (family !== 6) return null;
  const value = ipv6Value(address);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** A CIDR range (`10.0.0.0/8`; an address alone is a range of one), or null when it is none. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(address);
  // A mapped address stays IPv6 in a range: `::ffff:0:0/96` is written as such.
  const family = isIP(address) === 6 ? 6 : ip?.family;
  if (ip === null || family === undefined || address.includes('%')) return null;
  const width = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? String(width) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > width) return null;
  const bits = Number(prefix);
  const value = family === 6 && ip.family === 4 ? ip.value | (0xffffn << 32n) : ip.value;
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
  return { family, value: value & mask, bits, text: slash < 0 ? `${address}/${width}` : text };
}

/**
 * Whether `range` holds `ip`. An IPv4 address is also matched by the IPv6
 * ranges within `::ffff:0:0/96`, as the mapped address it is there (and
 * only by those: `::/0` is every IPv6 address, not every address).
 */
export function cidrContains(range: Cidr, ip: IpAddress): boolean {
  let value = ip.value;
  if (range.family !== ip.family) {
    if (range.family !== 6 || range.bits < 96 || range.value >> 32n !== 0xffffn) return false;
    value = ip.value | (0xffffn << 32n);
  }
  const width = range.family === 4 ? 32 : 128;
  const shift = BigInt(width - range.bits);
  return value >> shift === range.value >> shift;
}
