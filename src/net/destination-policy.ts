/**
 * Where the gateway may send requests of its own (webhook deliveries, job
 * callbacks): the defence against server-side request forgery. A URL must be
 * http or https without credentials; its name is resolved and every address
 * it resolves to is checked against the configured allow and deny lists and
 * the ranges denied by default (loopback, link-local, cloud metadata,
 * private, unspecified, multicast, reserved). The request then connects to
 * the checked address (`pinnedLookup`), so a second resolution cannot swap
 * it (DNS rebinding). Node only: callers turn a refusal into their errors.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { cidrContains, parseCidr, parseIp, type Cidr, type IpAddress } from './cidr.js';

/** Why an address range is denied by default. */
interface DefaultDenied {
  range: Cidr;
  what: string;
}

function denied(text: string, what: string): DefaultDenied {
  const range = parseCidr(text);
  if (!range) throw new Error(`bad built-in range ${text}`);
  return { range, what };
}

/**
 * The ranges denied unless the allow list names them. The most specific
 * first, so a refusal names the narrowest reason (metadata before link-local).
 */
const DEFAULT_DENIED: readonly DefaultDenied[] = [
  denied('169.254.169.254/32', 'a cloud metadata address'),
  denied('fd00:ec2::254/128', 'a cloud metadata address'),
  denied('0.0.0.0/8', 'an unspecified ("this network") address'),
  denied('::/128', 'the unspecified address'),
  denied('127.0.0.0/8', 'a loopback address'),
  denied('::1/128', 'the loopback address'),
  denied('169.254.0.0/16', 'a link-local address'),
  denied('fe80::/10', 'a link-local address'),
  denied('10.0.0.0/8', 'a private address'),
  denied('172.16.0.0/12', 'a private address'),
  denied('192.168.0.0/16', 'a private address'),
  denied('fc00::/7', 'a unique local (private) address'),
  denied('100.64.0.0/10', 'a shared (carrier-grade NAT) address'),
  denied('192.0.0.0/24', 'an IETF protocol assignment address'),
  denied('198.18.0.0/15', 'a benchmarking address'),
  denied('224.0.0.0/4', 'a multicast address'),
  denied('ff00::/8', 'a multicast address'),
  denied('240.0.0.0/4', 'a reserved or broadcast address'),
  denied('::/96', 'an IPv4-compatible (deprecated) address'),
  // NAT64 prefixes reach IPv4 addresses through a translator, unchecked.
  denied('64:ff9b::/96', 'a NAT64 address'),
  denied('64:ff9b:1::/48', 'a NAT64 address'),
];

/** The configured lists (CIDR texts, as the configuration checked them). */
export interface DestinationRules {
  /** WEBHOOK_ALLOWED_CIDRS: allowed even where denied by default. */
  allowed: readonly string[];
  /** WEBHOOK_DENIED_CIDRS: denied besides the defaults. */
  denied: readonly string[];
}

/** A destination refused; the message names the URL's problem or the address and why. */
export class DestinationRefused extends Error {
  override readonly name = 'DestinationRefused';
  constructor(
    message: string,
    /** The address refused, when the URL was refused for one. */
    readonly address: string | null = null,
  ) {
    super(message);
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** A checked destination: its URL and every address its name resolved to, all allowed. */
export interface Destination {
  url: URL;
  /** The host name or address, without the brackets of an IPv6 literal. */
  hostname: string;
  addresses: readonly ResolvedAddress[];
}

export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system's resolver (getaddrinfo: /etc/hosts, then DNS), every address. */
const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/** The longest URL accepted (characters). */
export const MAX_URL_LENGTH = 2048;

interface Rule {
  range: Cidr;
  allow: boolean;
}

export class DestinationPolicy {
  private readonly rules: readonly Rule[];

  constructor(
    rules: DestinationRules,
    private readonly resolver: Resolver = systemResolver,
  ) {
    const parse = (text: string, allow: boolean): Rule => {
      const range = parseCidr(text);
      if (!range) throw new Error(`not a CIDR range: ${text}`);
      return { range, allow };
    };
    this.rules = [
      ...rules.allowed.map((t) => parse(t, true)),
      ...rules.denied.map((t) => parse(t, false)),
    ];
  }

  /**
   * Checks a URL's form without resolving it: http or https, a host, no
   * user name or password, at most MAX_URL_LENGTH characters.
   */
  checkUrl(raw: string): URL {
    if (raw.length > MAX_URL_LENGTH) {
      throw new DestinationRefused(`must be at most ${MAX_URL_LENGTH} characters`);
    }
    if (!URL.canParse(raw)) throw new DestinationRefused('must be an absolute http(s) URL');
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DestinationRefused(
        `must be an http:// or https:// URL (not ${url.protocol.slice(0, 16)})`,
      );
    }
    if (url.username !== '' || url.password !== '') {
      throw new DestinationRefused(
        'must not carry a user name or password (the deliveries are signed instead)',
      );
    }
    if (url.hostname === '') throw new DestinationRefused('must name a host');
    return url;
  }

  /**
   * Checks a URL and resolves its name; refuses it when any address it
   * resolves to is denied (naming that address), or when it resolves to none.
   */
  async resolve(raw: string): Promise<Destination> {
    const url = this.checkUrl(raw);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let addresses: ResolvedAddress[];
    const literal = parseIp(hostname);
    if (literal) {
      addresses = [
        { address: hostname, family: literal.family === 4 && !hostname.includes(':') ? 4 : 6 },
      ];
    } else {
      try {
        addresses = await this.resolver(hostname);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new DestinationRefused(`its host name '${hostname}' does not resolve (${code})`);
      }
      if (addresses.length === 0) {
        throw new DestinationRefused(`its host name '${hostname}' resolves to no address`);
      }
    }
    for (const { address } of addresses) {
      const refusal = this.refusalOf(address);
      if (refusal !== null) {
        const via = literal ? '' : ` ('${hostname}' resolves to it)`;
        throw new DestinationRefused(`${address}${via} ${refusal}`, address);
      }
    }
    return { url, hostname, addresses };
  }

  /**
   * Why an address is refused, or null when it is allowed. The configured
   * range that matches most specifically decides (a deny on a tie); with none
   * matching, the default ranges do.
   */
  refusalOf(address: string): string | null {
    const ip: IpAddress | null = parseIp(address);
    if (ip === null) return 'is not an IP address';
    let best: Rule | null = null;
    for (const rule of this.rules) {
      if (!cidrContains(rule.range, ip)) continue;
      if (
        best === null ||
        rule.range.bits > best.range.bits ||
        (rule.range.bits === best.range.bits && !rule.allow)
      ) {
        best = rule;
      }
    }
    if (best !== null) {
      return best.allow ? null : `is denied by WEBHOOK_DENIED_CIDRS (${best.range.text})`;
    }
    const builtIn = DEFAULT_DENIED.find((d) => cidrContains(d.range, ip));
    if (builtIn) {
      return `is ${builtIn.what} (${builtIn.range.text}), denied unless WEBHOOK_ALLOWED_CIDRS allows it`;
    }
    return null;
  }
}

/**
 * A `lookup` for http.request that answers with the checked addresses and
 * never asks the resolver again: the connection goes where the check looked.
 * (The TLS server name and the Host header stay the URL's name.)
 */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (
    _hostname: string,
    options: LookupOptions,
    callback: (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    const wanted = addresses.filter((a) => !options.family || a.family === options.family);
    const usable = wanted.length > 0 ? wanted : addresses;
    if (options.all) {
      callback(
        null,
        usable.map((a) => ({ address: a.address, family: a.family })),
      );
      return;
    }
    callback(null, usable[0]!.address, usable[0]!.family);
  };
}
