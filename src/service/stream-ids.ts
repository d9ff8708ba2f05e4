/**
 * Pulled streams' ids, and which instance holds a stream. A pulled stream lives in the replica that
 * started it, but its id comes back through a load balancer that may pick any replica. With
 * routing on (STREAM_ROUTING_KEY and INSTANCE_URL, the same key on every replica), an id carries
 * its owner's address and a MAC over both made with the key: any replica can send a request for it
 * to the owner, and only to an address a replica wrote (a forged or altered id is an unknown id,
 * never a request to where it points).
 *
 *   routing off: 16 hex digits                     3f9c0a1b2c3d4e5f
 *   routing on:  16 hex . base64url(owner URL) . 24 hex of HMAC-SHA256(key, the first two)
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a path parameter may be; anything else is refused before a lookup. */
export const STREAM_ID_PATTERN = /^[0-9a-f]{16}(?:\.[A-Za-z0-9_-]{4,400}\.[0-9a-f]{24})?$/;

export interface StreamRouting {
  /** Shared by every replica; at least 32 characters. */
  key: string;
  /** How the other replicas reach this one (http://10.1.2.3:8080): the owner written into ids. */
  selfUrl: string;
}

export interface StreamIds {
  mint(): string;
  /** The instance that holds the stream when another replica wrote the id; undefined otherwise (ours, or not a valid routed id). */
  owner(id: string): string | undefined;
}

export function createStreamIds(routing: StreamRouting | undefined, random: () => string = () => randomBytes(8).toString('hex')): StreamIds {
  if (!routing) return { mint: random, owner: () => undefined };
  const mac = (body: string): string => createHmac('sha256', routing.key).update(body).digest('hex').slice(0, 24);
  const self = Buffer.from(routing.selfUrl).toString('base64url');
  return {
    mint() {
      const body = `${random()}.${self}`;
      return `${body}.${mac(body)}`;
    },
    owner(id) {
      const parts = id.split('.');
      if (parts.length !== 3 || !STREAM_ID_PATTERN.test(id)) return undefined;
      const [nonce, owner, tag] = parts as [string, string, string];
      const expected = Buffer.from(mac(`${nonce}.${owner}`));
      if (!timingSafeEqual(expected, Buffer.from(tag))) return undefined;
      return owner === self ? undefined : Buffer.from(owner, 'base64url').toString();
    },
  };
}
