/**
 * The only way a pulled stream's decoder reaches HTTP(S): libav is told to use this proxy (its
 * `http_proxy`, for the source and every URL it opens from there: playlist segments, keys,
 * redirects), and the proxy checks each request's host against the source policy, resolves it
 * once and connects to the very address it checked (no second lookup for DNS rebinding to answer
 * differently). Plain HTTP is forwarded request by request; HTTPS is tunnelled (CONNECT), its
 * TLS spoken end to end by libav.
 *
 * It listens on 127.0.0.1 only, and answers only a stream's own credentials (user: the stream's
 * id, password: a secret of this process), so no other local process can use it, and each refusal
 * is told to the stream it came from.
 *
 * Why a proxy: node-av gives no hook on the URLs libav opens, and a network namespace per decoder
 * needs privileges a restricted pod does not have. libav honours `http_proxy` for every nested
 * HTTP(S) open. RTSP and SRT do not go through it: their addresses are checked and pinned before
 * the decoder starts (source.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { isEngineError } from '../../errors.js';
import { redactSource, type SourcePolicy } from './policy.js';

export interface EgressProxy {
  /** The proxy URL a stream's decoder is given (its credentials in it). */
  urlFor(streamId: string): string;
  /** Where it listens: the one address an HTTP(S) source's decoder may connect to. */
  readonly address: { host: string; port: number };
  /** Calls `refused` for every request of this stream that the policy refuses, until `forget`. */
  watch(streamId: string, refused: (target: string, why: string) => void): void;
  forget(streamId: string): void;
  close(): Promise<void>;
}

/** How long an upstream connection may take to open (the decoder's own timeouts bound the rest). */
const CONNECT_TIMEOUT_MS = 10_000;

export async function startEgressProxy(policy: SourcePolicy): Promise<EgressProxy> {
  const secret = randomBytes(18).toString('base64url');
  const watchers = new Map<string, (target: string, why: string) => void>();
  const sockets = new Set<Duplex>();

  /** The stream whose credentials the request carries, or undefined. */
  const streamOf = (header: string | undefined): string | undefined => {
    const [kind, value] = (header ?? '').split(' ');
    if (kind?.toLowerCase() !== 'basic' || !value) return undefined;
    const [user, pass] = Buffer.from(value, 'base64').toString('utf8').split(':');
    if (!user || pass === undefined || pass.length !== secret.length) return undefined;
    return timingSafeEqual(Buffer.from(pass), Buffer.from(secret)) && watchers.has(user) ? user : undefined;
  };

  /** The checked address to connect to, or the refusal's reason. */
  const vet = async (scheme: 'http' | 'https', host: string): Promise<{ address: string } | { why: string }> => {
    try {
      const [address] = await policy.check(scheme, host);
      return { address: address as string };
    } catch (err) {
      return { why: isEngineError(err) ? err.message : 'the host cannot be checked' };
    }
  };

  const server = http.createServer((req, res) => {
    const stream = streamOf(req.headers['proxy-authorization']);
    if (!stream) return void res.writeHead(407, { 'proxy-authenticate': 'Basic realm="haltingvt"', connection: 'close' }).end();
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return void res.writeHead(400, { connection: 'close' }).end();
    }
    if (target.protocol !== 'http:') return void res.writeHead(400, { connection: 'close' }).end();
    void vet('http', target.hostname).then((verdict) => {
      if ('why' in verdict) {
        watchers.get(stream)?.(redactSource(target.href).shown, verdict.why);
        return void res.writeHead(403, { 'content-type': 'text/plain', connection: 'close' }).end('refused by the source policy\n');
      }
      const headers = { ...req.headers };
      delete headers['proxy-authorization'];
      delete headers['proxy-connection'];
      const upstream = http.request({
        host: verdict.address,
        port: target.port || 80,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
        setHost: false,
        timeout: CONNECT_TIMEOUT_MS,
      });
      upstream.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')));
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502, { connection: 'close' }).end();
        else res.destroy();
      });
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    });
  });

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => client.destroy()); // tracked in `sockets` since its 'connection'
    const stream = streamOf(req.headers['proxy-authorization']);
    const [host, port] = splitHostPort(req.url ?? '');
    if (!stream) return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="haltingvt"\r\n\r\n');
    if (!host || !port) return void client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    void vet('https', host).then((verdict) => {
      if ('why' in verdict) {
        watchers.get(stream)?.(`https://${host}:${port}`, verdict.why);
        return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      }
      const upstream = net.connect({ host: verdict.address, port, timeout: CONNECT_TIMEOUT_MS });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.once('connect', () => {
        upstream.setTimeout(0);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('timeout', () => upstream.destroy());
      upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
      client.on('close', () => upstream.destroy());
    });
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    urlFor: (streamId) => `http://${streamId}:${secret}@127.0.0.1:${port}`,
    address: { host: '127.0.0.1', port },
    watch: (streamId, refused) => void watchers.set(streamId, refused),
    forget: (streamId) => void watchers.delete(streamId),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitHostPort(authority: string): [string | undefined, number | undefined] {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(authority);
  if (!match) return [undefined, undefined];
  const port = Number(match[2]);
  return [match[1], port > 0 && port < 65536 ? port : undefined];
}
