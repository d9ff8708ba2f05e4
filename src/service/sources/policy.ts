/**
 * Which live sources the service may pull: the operator's allow-list of schemes and of hosts,
 * addresses and ranges, checked against every address a host resolves to. Pulling is off until the
 * operator lists a scheme. Loopback, private, link-local (cloud metadata), CGNAT, multicast,
 * documentation, reserved and IPv6 local ranges, and the IPv6 forms that carry an IPv4 address
 * (mapped, compatible, NAT64, 6to4), are refused unless the address is inside a range the
 * operator listed: naming a host is not enough to reach an internal address through it, so a name
 * an attacker can point elsewhere (DNS rebinding) cannot reach one either.
 */
import { BlockList, isIP } from 'node:net';
import { EngineError } from '../../errors.js';

export const PULL_SCHEMES = ['rtsp', 'rtsps', 'srt', 'http', 'https'] as const;
export type PullScheme = (typeof PULL_SCHEMES)[number];

export interface SourcePolicyConfig {
  /** Schemes that may be pulled; none: pulling is off. */
  schemes: readonly PullScheme[];
  /** Host names (`cam.example.com`, `*.example.com`), addresses, CIDR ranges; `*`: any public address. */
  allow: readonly string[];
}

/** Resolves a host name to its addresses (dns.lookup with all: true); injected so tests can name hosts. */
export type Resolve = (host: string) => Promise<string[]>;

export interface SourcePolicy {
  /** SOURCE_NOT_ALLOWED unless the scheme may be pulled (checked before any name is resolved). */
  checkScheme(scheme: string): void;
  /** SOURCE_NOT_ALLOWED naming what is refused (scheme, host, address), else the addresses to connect to, every one checked. */
  check(scheme: string, host: string): Promise<string[]>;
}

const SPECIAL_V4 = [
  ['0.0.0.0', 8, 'this-network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
] as const;

const SPECIAL_V6 = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard'],
  ['2001::', 32, 'Teredo'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
] as const;

export function createSourcePolicy(config: SourcePolicyConfig, resolve: Resolve): SourcePolicy {
  const listed = new BlockList();
  const names: string[] = [];
  let anyPublic = false;
  for (const entry of config.allow) {
    if (entry === '*') anyPublic = true;
    else if (isAddressOrRange(entry)) {
      const [address, bits] = entry.split('/') as [string, string];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits) listed.addSubnet(address, Number(bits), family);
      else listed.addAddress(address, family);
    } else names.push(entry.toLowerCase());
  }
  const special = specialRanges();

  const nameListed = (host: string): boolean =>
    names.some((n) => (n.startsWith('*.') ? host.endsWith(n.slice(1)) && host.length > n.length - 1 : host === n));

  /** Why `address` is refused, or undefined when it may be reached. */
  const refusal = (address: string, byName: boolean): string | undefined => {
    const v4 = embeddedV4(address);
    const [plain, family] = v4 ? [v4, 'ipv4' as const] : [address, isIP(address) === 6 ? ('ipv6' as const) : ('ipv4' as const)];
    if (listed.check(plain, family)) return undefined;
    const kind = special.find((s) => s.list.check(plain, family))?.kind;
    if (kind) return `${kind} addresses are not allowed`;
    return anyPublic || byName ? undefined : 'the address is not on the allow-list';
  };

  const checkScheme = (scheme: string): void => {
    if ((config.schemes as readonly string[]).includes(scheme)) return;
    throw new EngineError('SOURCE_NOT_ALLOWED', config.schemes.length === 0 ? 'pulling sources is off on this service (PULL_SCHEMES is empty)' : `the scheme ${scheme}: is not allowed (allowed: ${config.schemes.join(', ')})`, { scheme });
  };

  return {
    checkScheme,
    async check(scheme, rawHost) {
      checkScheme(scheme);
      const host = rawHost.replace(/^\[|\]$/g, '').toLowerCase();
      const literal = isIP(host) !== 0;
      const byName = !literal && nameListed(host);
      let addresses: string[];
      if (literal) addresses = [host];
      else {
        try {
          addresses = await resolve(host);
        } catch {
          throw new EngineError('SOURCE_UNREACHABLE', `the source's host ${host} does not resolve`, { host });
        }
      }
      if (addresses.length === 0) throw new EngineError('SOURCE_UNREACHABLE', `the source's host ${host} does not resolve`, { host });
      // Every address must pass: a name that resolves to one public and one internal address is
      // refused, since the connection could take either.
      for (const address of addresses) {
        const why = refusal(address, byName);
        if (why) throw new EngineError('SOURCE_NOT_ALLOWED', literal || address === host ? `the source ${host} is refused: ${why}` : `the source's host ${host} resolves to ${address}: ${why}`, { host });
      }
      return addresses;
    },
  };
}

function specialRanges(): Array<{ kind: string; list: BlockList }> {
  const byKind = new Map<string, BlockList>();
  const add = (kind: string, address: string, bits: number, family: 'ipv4' | 'ipv6'): void => {
    const list = byKind.get(kind) ?? new BlockList();
    list.addSubnet(address, bits, family);
    byKind.set(kind, list);
  };
  for (const [address, bits, kind] of SPECIAL_V4) add(kind, address, bits, 'ipv4');
  for (const [address, bits, kind] of SPECIAL_V6) add(kind, address, bits, 'ipv6');
  return [...byKind].map(([kind, list]) => ({ kind, list }));
}

/** An address or CIDR range as PULL_ALLOW takes them. */
export function isAddressOrRange(entry: string): boolean {
  const [address, bits] = entry.split('/');
  return isIP(address ?? '') !== 0 && (bits === undefined || /^\d{1,3}$/.test(bits));
}

/**
 * The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
 */
export function embeddedV4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const words = expandV6(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number): boolean => words.slice(from, to).every((w) => w === 0);
  if (zero(0, 5) && words[5] === 0xffff) return v4(words[6] as number, words[7] as number);
  if (zero(0, 6) && (words[6] as number) !== 0) return v4(words[6] as number, words[7] as number);
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return v4(words[6] as number, words[7] as number);
  if (words[0] === 0x2002) return v4(words[1] as number, words[2] as number);
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (a trailing dotted IPv4 part allowed). */
function expandV6(address: string): number[] | undefined {
  let text = address.toLowerCase().split('%')[0] as string;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = (dotted[1] as string).split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -(dotted[1] as string).length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined): number[] => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const left = part(head);
  const right = part(tail);
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const words = [...left, ...new Array<number>(fill).fill(0), ...right];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

/** Query parameters whose values are secrets (SRT's passphrase, signed URLs' tokens). */
const SECRET_PARAM = /pass|secret|token|key|auth|sig|cred/i;

/**
 * The URL as logs, errors, events and status may show it: no user name or password, no secret
 * query values. `secrets` are the strings removed, to scrub them from anything else (libav's messages).
 */
export function redactSource(raw: string): { shown: string; secrets: string[] } {
  const secrets: string[] = [];
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { shown: '(an unparsable URL)', secrets: [raw] };
  }
  if (url.username) secrets.push(decodeURIComponent(url.username), url.username);
  if (url.password) secrets.push(decodeURIComponent(url.password), url.password);
  url.username = url.username ? 'redacted' : '';
  url.password = url.password ? 'redacted' : '';
  for (const [key, value] of [...url.searchParams]) {
    if (SECRET_PARAM.test(key) && value) {
      secrets.push(value);
      url.searchParams.set(key, 'redacted');
    }
  }
  return { shown: url.toString(), secrets: secrets.filter((s) => s.length > 0) };
}

/** `text` with every secret replaced. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('redacted');
  return out;
}
