/**
 * The source policy's decisions, address by address: every special range refused unless listed,
 * the IPv6 forms that carry an IPv4 address judged by that address, names and wildcards, every
 * address of a name checked; and credentials kept out of what is shown.
 */
import { describe, expect, it } from 'vitest';
import { createSourcePolicy, embeddedV4, redactSource, scrub } from '../../src/service/sources/policy.js';

const names: Record<string, string[]> = {
  'cam.example.com': ['93.184.216.34'],
  'mixed.example.com': ['93.184.216.34', '10.0.0.7'],
  'a.cams.example.org': ['198.51.99.1'],
  'lan-cam.example.com': ['10.20.1.5'],
};
const resolve = async (host: string): Promise<string[]> => names[host] ?? [];

async function verdict(allow: string[], host: string, scheme = 'rtsp'): Promise<string> {
  const policy = createSourcePolicy({ schemes: ['rtsp', 'http'], allow }, resolve);
  try {
    await policy.check(scheme, host);
    return 'allowed';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

describe('source policy', () => {
  it('refuses every special range even with `*`, unless an address or range covering it is listed', async () => {
    const special = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', '::127.0.0.1'];
    for (const address of special) expect(await verdict(['*'], address), address).toBe('SOURCE_NOT_ALLOWED');
    expect(await verdict(['*'], '93.184.216.34')).toBe('allowed');
    expect(await verdict(['*'], '2606:2800:220:1:248:1893:25c8:1946')).toBe('allowed');
    expect(await verdict(['127.0.0.1/32'], '127.0.0.1')).toBe('allowed');
    expect(await verdict(['127.0.0.1/32'], '::ffff:127.0.0.1')).toBe('allowed');
    expect(await verdict(['127.0.0.1/32'], '127.0.0.2')).toBe('SOURCE_NOT_ALLOWED');
    expect(await verdict(['10.20.0.0/16'], 'lan-cam.example.com')).toBe('allowed');
  });

  it('allows names as listed, checks every address they resolve to, and refuses what is not listed', async () => {
    expect(await verdict(['cam.example.com'], 'cam.example.com')).toBe('allowed');
    expect(await verdict(['cam.example.com'], 'CAM.example.com')).toBe('allowed');
    expect(await verdict(['cam.example.com'], 'other.example.com')).toBe('SOURCE_UNREACHABLE');
    expect(await verdict(['*.cams.example.org'], 'a.cams.example.org')).toBe('allowed');
    expect(await verdict(['*.cams.example.org'], 'cams.example.org')).toBe('SOURCE_UNREACHABLE');
    expect(await verdict(['cam.example.com'], '93.184.216.34')).toBe('SOURCE_NOT_ALLOWED');
    // A listed name does not open an internal address: one internal answer refuses the name.
    expect(await verdict(['mixed.example.com'], 'mixed.example.com')).toBe('SOURCE_NOT_ALLOWED');
    expect(await verdict(['lan-cam.example.com'], 'lan-cam.example.com')).toBe('SOURCE_NOT_ALLOWED');
    expect(await verdict(['*'], 'cam.example.com', 'srt')).toBe('SOURCE_NOT_ALLOWED');
    expect(await verdict([], 'cam.example.com')).toBe('SOURCE_NOT_ALLOWED');
  });

  it('reads the IPv4 address inside mapped, compatible, NAT64 and 6to4 IPv6 addresses', () => {
    expect(embeddedV4('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(embeddedV4('::ffff:a00:1')).toBe('10.0.0.1');
    expect(embeddedV4('64:ff9b::c0a8:101')).toBe('192.168.1.1');
    expect(embeddedV4('2002:a9fe:a9fe::1')).toBe('169.254.169.254');
    expect(embeddedV4('2606:2800:220:1::1')).toBeUndefined();
    expect(embeddedV4('10.0.0.1')).toBeUndefined();
  });

  it('shows a source without its credentials, and scrubs them from any text', () => {
    const { shown, secrets } = redactSource('rtsp://admin:p%40ss@cam.example.com:554/live?passphrase=s3cret&channel=1');
    expect(shown).toBe('rtsp://redacted:redacted@cam.example.com:554/live?passphrase=redacted&channel=1');
    expect(secrets).toEqual(expect.arrayContaining(['admin', 'p@ss', 's3cret']));
    expect(scrub('DESCRIBE rtsp://admin:p@ss@cam failed, key s3cret', secrets)).not.toMatch(/admin|p@ss|s3cret/);
  });
});
