import { describe, expect, it } from 'vitest';
import { createStreamIds, STREAM_ID_PATTERN } from '../../src/service/stream-ids.js';

const key = 'a-shared-key-of-at-least-32-characters';
const a = createStreamIds({ key, selfUrl: 'http://10.42.0.7:8080' });
const b = createStreamIds({ key, selfUrl: 'http://10.42.0.9:8080' });

describe('stream ids', () => {
  it('are 16 hex digits without routing, and name no owner', () => {
    const plain = createStreamIds(undefined);
    const id = plain.mint();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(plain.owner(id)).toBeUndefined();
    expect(plain.owner(a.mint())).toBeUndefined();
  });

  it('carry their replica, which the others find and the replica itself does not forward to', () => {
    const id = a.mint();
    expect(id).toMatch(STREAM_ID_PATTERN);
    expect(b.owner(id)).toBe('http://10.42.0.7:8080');
    expect(a.owner(id)).toBeUndefined();
    expect(a.mint()).not.toBe(id);
  });

  it('name no owner when altered, forged with another key, or not routed', () => {
    const id = a.mint();
    const [nonce, owner, tag] = id.split('.') as [string, string, string];
    const flipped = `${nonce}.${owner}.${tag.slice(0, -1)}${tag.endsWith('0') ? '1' : '0'}`;
    expect(b.owner(flipped)).toBeUndefined();
    const elsewhere = Buffer.from('http://169.254.169.254').toString('base64url');
    expect(b.owner(`${nonce}.${elsewhere}.${tag}`)).toBeUndefined();
    const forger = createStreamIds({ key: 'another-key-of-at-least-32-characters!', selfUrl: 'http://127.0.0.2:80' });
    expect(b.owner(forger.mint())).toBeUndefined();
    expect(b.owner(nonce)).toBeUndefined();
    expect(b.owner(`${id}.extra`)).toBeUndefined();
  });
});
