/**
 * A source URL → what a pulled stream's decoder is started with: the URL (RTSP and SRT with their
 * host replaced by the address the policy checked, so the decoder resolves nothing), libav's
 * options (what protocols it may open, timeouts, transport, the proxy), and the worker's
 * environment: the connect guard (src/native/connect-guard.c), which lets the decoder's sockets
 * reach that checked address or the egress proxy and nothing else, whatever libav is told by the
 * source (an RTSP redirect, which no proxy sees). Called at every (re)connection: a name is
 * checked again each time.
 */
import { isIP } from 'node:net';
import { EngineError } from '../../errors.js';
import type { LiveSource } from '../../engine/index.js';
import type { EgressProxy } from './egress-proxy.js';
import type { SourcePolicy } from './policy.js';

export interface SourceSpec {
  url: string;
  /** RTSP's lower transport: interleaved in the TCP connection (default), or UDP (loses packets on a busy network). */
  rtsp_transport: 'tcp' | 'udp';
}

export interface PreparedSource {
  source: LiveSource;
  env: Record<string, string>;
}

/** Protocols libav may open per scheme: never file, pipe, concat, subfile, data or another host's scheme. */
const WHITELIST: Record<string, string> = {
  http: 'http,https,tls,tcp,httpproxy,crypto',
  https: 'http,https,tls,tcp,httpproxy,crypto',
  rtsp: 'rtsp,rtp,udp,tcp',
  rtsps: 'rtsps,rtsp,rtp,udp,tcp,tls',
  srt: 'srt',
};

/** Parses the URL and checks its scheme, before any name is resolved (SOURCE_NOT_ALLOWED, BAD_REQUEST). */
export function parseSource(raw: string, policy: SourcePolicy): { url: URL; scheme: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EngineError('BAD_REQUEST', 'source.url is not a URL', {});
  }
  const scheme = url.protocol.replace(/:$/, '');
  policy.checkScheme(scheme);
  if (!url.hostname) throw new EngineError('BAD_REQUEST', 'source.url names no host', {});
  return { url, scheme };
}

export async function prepareSource(spec: SourceSpec, policy: SourcePolicy, proxy: EgressProxy, streamId: string, options: { readS: number; guard: string }): Promise<PreparedSource> {
  const guarded = (allow: string): Record<string, string> => ({
    LD_PRELOAD: [options.guard, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    HALTINGVT_CONNECT_ALLOW: allow,
  });
  const { url, scheme } = parseSource(spec.url, policy);
  const addresses = await policy.check(scheme, url.hostname);
  const micros = String(Math.round(options.readS * 1e6));
  const base = { protocol_whitelist: WHITELIST[scheme] as string };
  if (scheme === 'http' || scheme === 'https') {
    // The host is checked again, per request, by the proxy (it pins what it checked); so are the
    // playlist's segments and keys and any redirect's target.
    const proxyUrl = proxy.urlFor(streamId);
    return {
      source: { kind: 'url', url: spec.url, format: undefined, options: { ...base, http_proxy: proxyUrl, rw_timeout: micros, reconnect: '0', live_start_index: '-1' } },
      env: { http_proxy: proxyUrl, no_proxy: '', NO_PROXY: '', ...guarded(`${proxy.address.host}/${proxy.address.port}`) },
    };
  }
  const pinned = new URL(url.href);
  const address = addresses[0] as string;
  pinned.hostname = isIP(address) === 6 ? `[${address}]` : address;
  if (scheme === 'srt') {
    pinned.searchParams.delete('mode'); // a caller only: a source is not a port the service opens
    return { source: { kind: 'url', url: pinned.href, format: undefined, options: { ...base, mode: 'caller', timeout: micros, connect_timeout: String(Math.round(options.readS * 1000)) } }, env: guarded(address) };
  }
  // Any port of the checked address: RTP and RTCP over UDP use ports the server names.
  return { source: { kind: 'url', url: pinned.href, format: undefined, options: { ...base, rtsp_transport: spec.rtsp_transport, timeout: micros } }, env: guarded(address) };
}
