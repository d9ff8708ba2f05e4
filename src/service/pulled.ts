/**
 * A pulled stream: the service opens the source itself and keeps it open. Each connection is a
 * decoder process reading the source's URL (engine.openStream); its windows go through the same
 * window flow as a pushed stream's (stream-windows.ts), and its events into the stream's event
 * log, which watchers read (SSE with Last-Event-ID, gRPC Watch).
 *
 * Kept alive: a connection that breaks, stalls (no packet for stall_s while nothing holds it back),
 * cannot be opened, or fails to decode is retried with exponential backoff and jitter, each attempt
 * a `reconnecting` event and each return a `resumed` one with the stream time lost; the stream
 * gives up after give_up_s without a live connection. A live source's end is a lost connection;
 * a finite one (a file, a finished playlist: it states a duration) is read whole, paced by the
 * service so that no window is dropped, and its end is the stream's.
 *
 * What is refused by the operator's policy (on connecting, or a URL the decoder opens through the
 * egress proxy) ends the stream: the policy will not change its mind on a retry.
 */
import type { Knobs, LiveProcess, LiveSummary, LiveWindow } from '../engine/index.js';
import { EngineError } from '../errors.js';
import { asServiceError, logFailure, type FailureLog } from './errors.js';
import { createEventLog, type EventLog } from './event-log.js';
import type { EnginePort } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import type { EgressProxy } from './sources/egress-proxy.js';
import { redactSource, scrub, type SourcePolicy } from './sources/policy.js';
import { prepareSource, type SourceSpec } from './sources/source.js';
import type { PulledStreamStatus, StreamEvent, StreamSettings } from './stream-events.js';
import { createWindowFlow, startedEvent } from './stream-windows.js';
import type { StreamTrace } from './tracing.js';
import type { TempFiles } from './uploads.js';

export interface PullSettings {
  stall_s: number;
  give_up_s: number;
}

export interface PullRequest {
  source: SourceSpec;
  settings: StreamSettings;
  pull: PullSettings;
  knobs: Knobs;
  log: FailureLog;
}

export type PulledState = PulledStreamStatus['state'];
type EndReason = Extract<StreamEvent, { event: 'ended' }>['reason'];

export type PulledStatus = PulledStreamStatus;

export interface PulledStream {
  readonly id: string;
  readonly events: EventLog;
  status(): PulledStatus;
  /** Ends the stream (an `ended` event with `reason`); resolves once it has. */
  stop(reason: 'deleted' | 'shutdown'): Promise<void>;
  readonly done: Promise<void>;
}

export interface PulledDeps {
  id: string;
  request: PullRequest;
  engine: EnginePort;
  policy: SourcePolicy;
  proxy: EgressProxy;
  metrics: Metrics;
  temps: TempFiles;
  wallClock: () => number;
  /** STREAM_MAX_DURATION_S, RECONNECT backoff bounds, the event log's size; the connect guard's path. */
  limits: { maxDurationS: number; backoffMinS: number; backoffMaxS: number; connectTimeoutS: number; events: number; guard: string };
  /** Called once the stream has ended and released its decoder (the registry frees its place). */
  ended: () => void;
  /** The stream's trace, when tracing is on. */
  trace?: StreamTrace | undefined;
}

/** libav's AVERROR(EACCES): what a connection the connect guard refuses fails with. */
const EACCES_AVERROR = -13;

export function startPulledStream(deps: PulledDeps): PulledStream {
  const { id, request, engine, policy, proxy, metrics, temps, wallClock, limits } = deps;
  const { settings: asked, pull, knobs, log } = request;
  const { shown, secrets } = redactSource(request.source.url);
  const events = createEventLog(limits.events);
  const createdAt = wallClock();
  const abort = new AbortController();
  const settings = { ...asked }; // policy becomes `block` for a finite source
  let state: PulledState = 'connecting';
  let live: boolean | null = null;
  let video: PulledStatus['video'] = null;
  let reconnects = 0;
  let gapS = 0;
  let lastError: PulledStatus['last_error'] = null;
  let ended: PulledStatus['ended'] = null;
  let stopping: EndReason | undefined;
  let current: LiveProcess | undefined;
  let wake: (() => void) | undefined;
  const decoders: LiveSummary[] = [];

  const send = (event: StreamEvent): void => events.append(event);
  const fail = (error: EngineError): void => {
    lastError = { code: error.code, message: scrub(error.message, secrets), at: new Date(wallClock()).toISOString() };
  };
  let stallTimer: NodeJS.Timeout | undefined;
  let stallArmed: (() => void) | undefined;
  const windows = createWindowFlow({
    engine,
    settings,
    knobs,
    metrics,
    temps,
    log,
    signal: abort.signal,
    wallClock,
    send,
    // A source held back (a finite one, paced) sends nothing on purpose: no stall then.
    changed: () => (windows?.holding() ? clearTimeout(stallTimer) : stallArmed?.()),
    taken: () => {
      if (settings.policy === 'block') current?.ack();
    },
    trace: deps.trace,
  });

  proxy.watch(id, (target, why) => {
    metrics.sourceRefused('egress');
    const error = new EngineError('SOURCE_NOT_ALLOWED', `the decoder was refused ${target}: ${why}`, {});
    logFailure(log, error, { stream: id }, 'pulled stream source');
    stopping ??= 'error';
    fail(error);
    send({ event: 'error', code: error.code, status: 403, message: error.message });
    current?.stop(error);
  });

  /** One connection, to its end: 'finished' (a finite source read whole), or why it ended. */
  let lastPacketAt: number | undefined; // the worker's clock, from its progress messages
  let originAt: number | undefined; // when the first connection started: stream time 0
  const connectOnce = async (attempt: number): Promise<'finished' | { reason: 'lost' | 'stalled' | 'unreachable' | 'failed'; error: EngineError }> => {
    let prepared;
    try {
      prepared = await prepareSource(request.source, policy, proxy, id, { readS: pull.stall_s, guard: limits.guard });
    } catch (err) {
      const error = asServiceError(err);
      error.message = scrub(error.message, secrets);
      if (error.code === 'SOURCE_NOT_ALLOWED') metrics.sourceRefused('admission');
      return { reason: 'unreachable', error };
    }
    if (stopping) return { reason: 'lost', error: new EngineError('DRAINING', 'the stream was ended') };
    let offsetS = 0;
    let stalled = false;
    let startedHere = false;
    const decoder = engine.openStream(
      { name: shown, windowMs: Math.round(settings.window_s * 1000), strideMs: Math.round(settings.stride_s * 1000), source: prepared.source, paced: true, dir: temps.folder(), env: prepared.env },
      {
        started: (info) => {
          startedHere = true;
          const now = wallClock();
          originAt ??= now;
          offsetS = (now - originAt) / 1000;
          if (live === null) {
            live = info.durationS === undefined;
            if (!live) settings.policy = 'block';
            video = { codec: info.codec, width: info.width, height: info.height, fps: info.fps ?? null };
            send({ ...startedEvent(id, settings, info, now), source: shown, live });
          } else {
            const gap = lastPacketAt === undefined ? 0 : Math.max(0, (now - lastPacketAt) / 1000);
            gapS += gap;
            metrics.sourceGap(gap);
            send({ event: 'resumed', attempt, gap_s: Math.round(gap * 1000) / 1000, at: new Date(now).toISOString() });
          }
          state = 'live';
          armStall(pull.stall_s);
        },
        progress: (_packets, at) => {
          lastPacketAt = at;
          if (startedHere) stallArmed?.();
        },
        window: (w: LiveWindow) => {
          windows.ready(w, offsetS);
          if (settings.policy !== 'block') decoder.ack();
        },
      },
    );
    current = decoder;
    decoder.input.end(); // the decoder reads the URL, not its stdin

    function armStall(seconds: number): void {
      stallArmed = () => {
        clearTimeout(stallTimer);
        if (windows.holding()) return;
        stallTimer = setTimeout(() => {
          stalled = true;
          decoder.stop(new EngineError('SOURCE_STALLED', `the source sent nothing for ${seconds} s`, { stallS: seconds }));
        }, seconds * 1000);
      };
      stallArmed();
    }
    armStall(limits.connectTimeoutS); // until its first packets: the time to connect and probe

    try {
      const summary = await decoder.done;
      decoders.push(summary);
      if (live === false && summary.clean) return 'finished';
      return { reason: 'lost', error: new EngineError('SOURCE_UNREACHABLE', summary.clean ? 'the live source ended its stream' : 'the connection to the source broke', {}) };
    } catch (err) {
      let error = asServiceError(err);
      error.message = scrub(error.message, secrets); // libav's own words may quote the URL
      // EACCES from a connection: the connect guard refused an address libav was sent to (an RTSP
      // redirect, a peer the source named). The policy will not change on a retry.
      if (error.details?.libav === EACCES_AVERROR) {
        metrics.sourceRefused('egress');
        error = new EngineError('SOURCE_NOT_ALLOWED', `the decoder was refused an address the source sent it to (${error.message})`, {});
      }
      if (stalled) return { reason: startedHere ? 'stalled' : 'unreachable', error: startedHere ? error : new EngineError('SOURCE_UNREACHABLE', `the source did not answer within ${limits.connectTimeoutS} s`, {}) };
      return { reason: error.code === 'SOURCE_UNREACHABLE' ? 'unreachable' : 'failed', error };
    } finally {
      clearTimeout(stallTimer);
      stallArmed = undefined;
      current = undefined;
    }
  };

  const run = async (): Promise<void> => {
    let attempt = 0;
    let liveSince = createdAt; // when the source was last live (the give-up clock runs from there)
    let reason: EndReason = 'error';
    const longest = setTimeout(() => void stopWith('max_duration'), limits.maxDurationS * 1000);
    try {
      for (;;) {
        state = attempt === 0 && live === null ? 'connecting' : 'reconnecting';
        const outcome = await connectOnce(attempt);
        const wasLive = (state as PulledState) === 'live'; // set by the connection's `started`
        if (wasLive) liveSince = wallClock();
        if (stopping) {
          reason = stopping;
          break;
        }
        if (outcome === 'finished') {
          reason = 'end_of_stream';
          break;
        }
        fail(outcome.error);
        if (outcome.error.code === 'SOURCE_NOT_ALLOWED' || outcome.error.code === 'VIDEO_TOO_LARGE') {
          // The policy or the limits will not change on a retry.
          send({ event: 'error', code: outcome.error.code, status: outcome.error.status, message: scrub(outcome.error.message, secrets) });
          reason = 'error';
          break;
        }
        if (wasLive) attempt = 0;
        attempt++;
        if (wallClock() - liveSince > pull.give_up_s * 1000) {
          send({ event: 'error', code: outcome.error.code, status: outcome.error.status, message: `gave up after ${pull.give_up_s} s without the source: ${scrub(outcome.error.message, secrets)}` });
          reason = 'gave_up';
          break;
        }
        const delayS = Math.min(limits.backoffMaxS, limits.backoffMinS * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
        reconnects++;
        state = 'reconnecting';
        metrics.sourceReconnect(outcome.reason);
        logFailure(log, outcome.error, { stream: id, attempt }, 'pulled stream connection');
        deps.trace?.reconnecting(attempt, outcome.reason);
        send({ event: 'reconnecting', attempt, reason: outcome.reason, message: scrub(outcome.error.message, secrets), delay_s: Math.round(delayS * 1000) / 1000, at: new Date(wallClock()).toISOString() });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayS * 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        if (stopping) {
          reason = stopping;
          break;
        }
      }
    } finally {
      clearTimeout(longest);
      proxy.forget(id);
      // A source read to its end has its last windows answered; any other end stops what is in flight.
      if (reason === 'end_of_stream') await windows.settled();
      abort.abort();
      windows.stop();
      await windows.settled();
      await temps.removeAll();
    }
    state = 'ended';
    ended = { reason, at: new Date(wallClock()).toISOString() };
    metrics.streamEnded(reason, (wallClock() - createdAt) / 1000);
    deps.trace?.end(reason);
    send({ event: 'ended', reason, summary: windows.summary(createdAt, decoders) });
    events.close();
    deps.ended();
  };

  const stopWith = (reason: EndReason): void => {
    if (stopping || state === 'ended') return;
    stopping = reason;
    current?.stop(new EngineError('DRAINING', 'the stream was ended'));
    wake?.();
  };

  const done = run().catch((err: unknown) => log.error({ err, stream: id }, 'a pulled stream failed unexpectedly'));

  return {
    id,
    events,
    done,
    async stop(reason) {
      stopWith(reason);
      await done;
    },
    status: () => ({
      id,
      source: shown,
      state,
      created_at: new Date(createdAt).toISOString(),
      uptime_s: Math.round((wallClock() - createdAt) / 1000),
      live,
      video,
      settings: { ...settings, ...pull },
      ...windows.counts(),
      lag_s: windows.lastLagS() ?? null,
      reconnects,
      gap_s: Math.round(gapS * 1000) / 1000,
      last_event_id: events.lastId(),
      last_error: lastError,
      ended,
    }),
  };
}
