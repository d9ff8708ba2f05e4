/** Loopback servers for tests: listen on a port the system picks, or find one free for a publisher. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on `host` (127.0.0.1 by default), a port the system picks; resolves with it. */
export function listen(server: http.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

/** A free TCP port on 127.0.0.1 (for publishers that listen themselves). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}
