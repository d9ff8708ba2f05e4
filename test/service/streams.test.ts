/**
 * The stream policies under an inference that cannot keep up (each window held 400 ms), through the
 * service layer every transport uses: drop_oldest keeps only the newest waiting window, block holds
 * the source back and answers every window; and two streams share the inference worker in turn.
 */
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import type { EnginePort } from '../../src/service/index.js';
import { StreamEvent, StreamSettings } from '../../src/service/stream-events.js';
import { fixture } from '../helpers/media.js';
import { engineWith, makeApp, openTinyEngine, type TestApp } from '../http/helpers.js';
import { familyText } from '../helpers/metrics.js';

let engine: Engine;
const apps: TestApp[] = [];
beforeAll(async () => {
  engine = await openTinyEngine();
});
afterAll(async () => {
  for (const t of apps) await t.app.close();
  await engine?.close();
});

/** The real engine, each window's inference held `ms` first; `order` records whose windows ran. */
function slowEngine(ms: number): { port: EnginePort; order: string[] } {
  const order: string[] = [];
  const port = engineWith(engine, {
    classifyFrames: async (frames, knobs, options) => {
      order.push(frames.file);
      await new Promise((r) => setTimeout(r, ms));
      return engine.classifyFrames(frames, knobs, options);
    },
  });
  return { port, order };
}

/** A file read as fast as the service takes it; `read()` is how many bytes it has given so far. */
function source(file: string): { stream: Readable; read: () => number } {
  const stream = createReadStream(file, { highWaterMark: 16 * 1024 });
  let read = 0;
  stream.on('data', (chunk) => (read += chunk.length));
  return { stream, read: () => read };
}

async function runStream(t: TestApp, file: string, settings: Record<string, unknown>, onWindow?: (read: number) => void): Promise<StreamEvent[]> {
  const { stream, read } = source(file);
  const events: StreamEvent[] = [];
  const open = t.service.streams.open({
    settings: StreamSettings.parse(settings),
    knobs: t.service.engine().validateKnobs({}),
    source: stream,
    signal: new AbortController().signal,
    log: pino({ level: 'silent' }),
  });
  await open.run((event) => {
    events.push(StreamEvent.parse(event));
    if (event.event === 'window') onWindow?.(read());
  });
  return events;
}

const seqs = (events: StreamEvent[]) => events.flatMap((e) => (e.event === 'window' ? [e.seq] : []));

describe('when inference falls behind', () => {
  it('drop_oldest drops the waiting windows for newer ones and says so; lag stays bounded', async () => {
    const t = makeApp(slowEngine(400).port);
    apps.push(t);
    // 6 s of stream, a window every 0.5 s (11 windows), pushed far faster than 400 ms per window.
    const events = await runStream(t, fixture('live.mpegts'), { window_s: 1, stride_s: 0.5, policy: 'drop_oldest' });
    const answered = seqs(events);
    const dropped = events.flatMap((e) => (e.event === 'dropped' ? e.seq : []));
    expect(dropped.length).toBeGreaterThan(0);
    expect(events.filter((e) => e.event === 'dropped').every((e) => e.event === 'dropped' && e.reason === 'behind')).toBe(true);
    // Every window is either answered or dropped, once, and answers come in stream order.
    expect([...answered, ...dropped].sort((a, b) => a - b)).toEqual(Array.from({ length: 11 }, (_, k) => k));
    expect(answered).toEqual([...answered].sort((a, b) => a - b));
    // The newest window is never the one dropped.
    expect(answered[answered.length - 1]).toBe(10);
    // Lag counts from the bytes' arrival, and this source arrives all at once: a window waits for the
    // decoder to get through the backlog (under a second even on a loaded machine), then for at most
    // the run in progress and its own (2 × 400 ms). Answering all 11 in turn would take 4.4 s.
    for (const e of events) if (e.event === 'window') expect(e.lag_s).toBeLessThan(2);
    const ended = events[events.length - 1];
    expect(ended).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: answered.length, dropped: dropped.length } });
    expect(await familyText(t.registry, 'haltingvt_stream_windows_total')).toContain(`outcome="dropped"} ${dropped.length}`);
  }, 30_000);

  it('block answers every window and holds the source back meanwhile', async () => {
    const t = makeApp(slowEngine(400).port);
    apps.push(t);
    const file = fixture('live.mpegts');
    const size = statSync(file).size;
    const readAt: number[] = [];
    const events = await runStream(t, file, { window_s: 1, stride_s: 0.5, policy: 'block' }, (read) => readAt.push(read));
    expect(seqs(events)).toEqual(Array.from({ length: 11 }, (_, k) => k));
    expect(events.some((e) => e.event === 'dropped')).toBe(false);
    // When the first window was answered (after 400 ms), the source had not been read to its end:
    // reading waited for inference, as a sender held by flow control does.
    expect(readAt[0]).toBeLessThan(size);
    expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: 11, dropped: 0 } });
  }, 30_000);

  it('a sender held back by block, or one that has finished sending, is not idle', async () => {
    // Each window takes 400 ms: far longer than the 250 ms idle limit while the source is paused,
    // and the last windows are answered long after the last byte.
    const t = makeApp(slowEngine(400).port, { service: { streams: { max: 4, idleTimeoutMs: 250, maxDurationS: 600 } } });
    apps.push(t);
    const events = await runStream(t, fixture('live.mpegts'), { window_s: 1, stride_s: 0.5, policy: 'block' });
    expect(seqs(events)).toHaveLength(11);
    expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream' });
  }, 30_000);

  it('two streams share the inference worker in turn: neither waits for the other to end', async () => {
    // Inference (250 ms a window) is far slower than either decoder, so once both streams have
    // started, each always has a window waiting: the runs must alternate.
    const slow = slowEngine(250);
    const t = makeApp(slow.port);
    apps.push(t);
    const settings = { window_s: 1, stride_s: 0.5, policy: 'block' };
    const [a, b] = await Promise.all([runStream(t, fixture('live.mpegts'), settings), runStream(t, fixture('live.mpegts'), settings)]);
    expect(seqs(a)).toHaveLength(11);
    expect(seqs(b)).toHaveLength(11);
    // The runs' frames files are per stream folder: whose turn each run was.
    const folders = slow.order.map((file) => file.split('/').slice(-2, -1)[0] as string);
    const first = folders[0] as string;
    const firstOfOther = folders.findIndex((f) => f !== first);
    const other = folders[firstOfOther] as string;
    expect(firstOfOther).toBeGreaterThan(0);
    // From the other stream's first run until either stream's last, no stream runs twice in a row.
    const both = folders.slice(firstOfOther, Math.min(folders.lastIndexOf(first), folders.lastIndexOf(other)) + 1);
    expect(both.length).toBeGreaterThan(10);
    for (let i = 1; i < both.length; i++) expect(both[i], `run ${firstOfOther + i} of ${folders.join(' ')}`).not.toBe(both[i - 1]);
  }, 60_000);
});
