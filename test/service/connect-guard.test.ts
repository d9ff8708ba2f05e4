/**
 * The connect guard (src/native/connect-guard.c, built by `make build`) in a real process: Node's
 * sockets under LD_PRELOAD reach the allowed address and port and nothing else, IPv4-mapped IPv6
 * judged as the IPv4 address, UDP sends included; without the variable, nothing at all.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CONNECT_GUARD } from '../../src/paths.js';

/** What each attempt gave (`connected`, or the error code), run in a Node process with the guard. */
function attempts(allow: string | undefined, script: string): Record<string, string> {
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: CONNECT_GUARD };
  if (allow === undefined) delete env.HALTINGVT_CONNECT_ALLOW;
  else env.HALTINGVT_CONNECT_ALLOW = allow;
  const run = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Record<string, string>;
}

// A listener on 127.0.0.1 the children try, and tries at other addresses; each outcome by name.
const PROBE = `
const net = require('node:net'), dgram = require('node:dgram');
const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const tcp = (host, p) => new Promise((resolve) => {
    const s = net.connect({ host, port: p });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
  const udp = (host) => new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.send('x', 9, host, (e) => { s.close(); resolve(e ? e.code : 'sent'); });
  });
  const out = {
    allowed: await tcp('127.0.0.1', port),
    otherPort: await tcp('127.0.0.1', port === 1 ? 2 : port - 1),
    otherAddress: await tcp('127.0.0.2', port),
    mapped: await tcp('::ffff:127.0.0.1', port),
    udpOther: await udp('127.0.0.3'),
    port,
  };
  process.stdout.write(JSON.stringify(out));
  server.close();
});`;

describe('connect guard', () => {
  it('lets a process reach only what HALTINGVT_CONNECT_ALLOW lists', () => {
    // The listener's port is not known beforehand: allow the address with any port, then one port.
    const any = attempts('127.0.0.1', PROBE);
    expect(any).toMatchObject({ allowed: 'connected', otherAddress: 'EACCES', mapped: 'connected', udpOther: 'EACCES' });
    expect(any.otherPort).not.toBe('EACCES'); // any port of the address: refused by nobody but the kernel
    const onePort = attempts('127.0.0.1/1', PROBE);
    expect(onePort).toMatchObject({ allowed: 'EACCES', otherAddress: 'EACCES', mapped: 'EACCES' });
  });

  it('refuses everything without the variable (fails closed)', () => {
    expect(attempts(undefined, PROBE)).toMatchObject({ allowed: 'EACCES', otherAddress: 'EACCES', mapped: 'EACCES', udpOther: 'EACCES' });
  });
});
